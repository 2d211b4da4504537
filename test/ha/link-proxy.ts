/**
 * The "network" in front of one Redis node of the HA topology: a TCP proxy (node:net) that
 * everybody reaches the node through (its replicas, the Sentinels, the service), each node
 * announcing the proxy's port. Unlike test/faults/bank/proxy.ts it tells replication links
 * (the peer sent REPLCONF, PSYNC or SYNC: a replica of this node) from every other connection,
 * so a fault can hit the link between a primary and its replicas while Sentinels and the
 * service still reach the primary. Modes, per kind of connection:
 * - `pass`: bytes flow untouched;
 * - `delay`: each chunk, either way, is held `ms` milliseconds (order kept): a slow link;
 * - `cut`: a partition. Bytes either way are dropped and a close on one side is not passed on
 *   (no FIN, no RST crosses a partition). When the mode changes back, every link that lost
 *   bytes or a close is reset: TCP would have retransmitted what we dropped, so resuming it
 *   with a hole in the stream would corrupt the replication stream, which no network does.
 */
import { type Server, Socket } from 'node:net';
import { listenOnLoopback, OrderedSender } from '../faults/bank/proxy.js';

export type LinkKind = 'replication' | 'client';
export type LinkMode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'cut' };

/** A replica's handshake names these (RESP bulk strings, so in clear on the wire). */
const REPLICATION_COMMAND = /REPLCONF|PSYNC|\r\nSYNC\r\n/i;
/** Kept from the previous chunk, so a command name split across chunks is still seen. */
const SCAN_OVERLAP_CHARS = 16;

interface Link {
  client: Socket;
  upstream: Socket;
  kind: LinkKind;
  /** The tail of what the client sent, until the link is known to be replication. */
  seen: string;
  /** Bytes dropped or a close swallowed: the link cannot resume, it is reset at the heal. */
  broken: boolean;
  up: OrderedSender;
  down: OrderedSender;
}

export class LinkProxy {
  readonly stats = { connections: 0, droppedBytes: 0, resets: 0 };
  private readonly modes: Record<LinkKind, LinkMode> = {
    replication: { kind: 'pass' }, client: { kind: 'pass' } };
  private readonly links = new Set<Link>();

  private constructor(private readonly server: Server, readonly port: number,
    readonly upstreamPort: number) {}

  static async start(upstreamPort: number): Promise<LinkProxy> {
    const { server, port } = await listenOnLoopback();
    const proxy = new LinkProxy(server, port, upstreamPort);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** Open replication links (replicas of the node behind this proxy), broken ones included. */
  get replicationLinks(): number {
    return [...this.links].filter((l) => l.kind === 'replication').length;
  }

  setMode(kind: LinkKind, mode: LinkMode): void {
    const was = this.modes[kind];
    this.modes[kind] = mode;
    if (was.kind === 'cut' && mode.kind !== 'cut') {
      for (const link of this.links) if (link.kind === kind && link.broken) this.reset(link);
    }
  }

  async close(): Promise<void> {
    for (const link of this.links) this.reset(link);
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private reset(link: Link): void {
    this.links.delete(link);
    link.up.clear();
    link.down.clear();
    link.client.resetAndDestroy();
    link.upstream.resetAndDestroy();
    this.stats.resets += 1;
  }

  private accept(client: Socket): void {
    this.stats.connections += 1;
    const upstream = new Socket();
    const link: Link = { client, upstream, kind: 'client', seen: '', broken: false,
      up: new OrderedSender(upstream), down: new OrderedSender(client) };
    this.links.add(link);
    client.on('data', (chunk: Buffer) => {
      this.classify(link, chunk);
      this.forward(link, chunk, link.up);
    });
    upstream.on('data', (chunk: Buffer) => this.forward(link, chunk, link.down));
    const closed = () => {
      if (!this.links.has(link)) return;
      if (this.modes[link.kind].kind === 'cut') {
        link.broken = true; // the other side must not learn of it across a partition
        return;
      }
      this.links.delete(link);
      link.up.clear();
      link.down.clear();
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', () => {}); // 'close' follows
      socket.on('close', closed);
    }
    upstream.connect(this.upstreamPort, '127.0.0.1');
  }

  private classify(link: Link, chunk: Buffer): void {
    if (link.kind === 'replication') return;
    const text = link.seen + chunk.toString('latin1');
    if (REPLICATION_COMMAND.test(text)) {
      link.kind = 'replication';
      link.seen = '';
    } else {
      link.seen = text.slice(-SCAN_OVERLAP_CHARS);
    }
  }

  private forward(link: Link, chunk: Buffer, sender: OrderedSender): void {
    const mode = this.modes[link.kind];
    if (mode.kind === 'cut') {
      link.broken = true;
      this.stats.droppedBytes += chunk.length;
      return;
    }
    sender.send(chunk, mode.kind === 'delay' ? mode.ms : 0);
  }
}
