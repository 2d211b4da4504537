/**
 * A TCP fault proxy (node:net) between the service and Redis. Modes:
 * - `pass`: bytes flow untouched;
 * - `delay`: each chunk, either way, is held `ms` milliseconds (order kept);
 * - `drop`: Redis→service bytes are swallowed while the mode lasts; the connection stays open,
 *   so the service sees replies that never come (and, after, replies to later commands);
 * - `reset`: every open connection is destroyed with a TCP RST, and new ones too while it lasts.
 */
import { createServer, type Server, Socket } from 'node:net';

export type ProxyMode =
  | { kind: 'pass' }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  | { kind: 'reset' };

export interface ProxyStats {
  connections: number;
  droppedBytes: number;
  resets: number;
}

interface Pair {
  client: Socket;
  upstream: Socket;
}

/** A TCP server listening on a free loopback port (a proxy's front door). */
export async function listenOnLoopback(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('proxy has no port');
  return { server, port: address.port };
}

/** Releases chunks in arrival order, each no earlier than its own due time. */
export class OrderedSender {
  private readonly queue: Array<{ chunk: Buffer; due: number }> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly to: Socket) {}

  send(chunk: Buffer, delayMs: number): void {
    if (delayMs <= 0 && this.queue.length === 0) {
      if (!this.to.destroyed) this.to.write(chunk);
      return;
    }
    const last = this.queue[this.queue.length - 1];
    this.queue.push({ chunk, due: Math.max(Date.now() + delayMs, last?.due ?? 0) });
    this.schedule();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (this.timer !== undefined || head === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.queue[0] !== undefined && this.queue[0].due <= Date.now()) {
        const { chunk } = this.queue.shift() as { chunk: Buffer };
        if (!this.to.destroyed) this.to.write(chunk);
      }
      this.schedule();
    }, Math.max(0, head.due - Date.now()));
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

export class FaultProxy {
  readonly stats: ProxyStats = { connections: 0, droppedBytes: 0, resets: 0 };
  private mode: ProxyMode = { kind: 'pass' };
  private readonly pairs = new Set<Pair>();

  private constructor(private readonly server: Server, readonly port: number,
    private readonly upstreamPort: number) {}

  static async start(upstreamPort: number): Promise<FaultProxy> {
    const { server, port } = await listenOnLoopback();
    const proxy = new FaultProxy(server, port, upstreamPort);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    if (mode.kind === 'reset') this.resetAll();
  }

  /** Destroys every open connection with a TCP RST; returns how many. */
  resetAll(): number {
    const n = this.pairs.size;
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    }
    this.pairs.clear();
    this.stats.resets += n;
    return n;
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private accept(client: Socket): void {
    this.stats.connections += 1;
    if (this.mode.kind === 'reset') {
      this.stats.resets += 1;
      client.resetAndDestroy();
      return;
    }
    const upstream = new Socket();
    const pair = { client, upstream };
    this.pairs.add(pair);
    const up = new OrderedSender(upstream);
    const down = new OrderedSender(client);
    const delay = () => (this.mode.kind === 'delay' ? this.mode.ms : 0);
    client.on('data', (chunk: Buffer) => up.send(chunk, delay()));
    upstream.on('data', (chunk: Buffer) => {
      if (this.mode.kind === 'drop') {
        this.stats.droppedBytes += chunk.length;
        return;
      }
      down.send(chunk, delay());
    });
    const teardown = () => {
      this.pairs.delete(pair);
      up.clear();
      down.clear();
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', () => {}); // 'close' follows; the peer sees the connection go
      socket.on('close', teardown);
    }
    upstream.connect(this.upstreamPort, '127.0.0.1');
  }
}
