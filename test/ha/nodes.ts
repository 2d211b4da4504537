/**
 * The processes of the HA topology (topology.ts): Redis nodes and Sentinels, each a real
 * redis-server on a free loopback port with a config file of its own in a temporary directory
 * (Sentinel rewrites its file, and so does a node Sentinel reconfigures: CONFIG REWRITE, so a
 * restarted node comes back in the role Sentinel last gave it, as in production). A node sits
 * behind its LinkProxy and announces the proxy's port: replicas, Sentinels and the service all
 * reach it through the proxy, before and after a failover (Sentinel hands out announced
 * addresses only), so the test can cut or slow a primary's replication links at any time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { AOF_DIR_NAME, AOF_FILE_NAME, repairTornTail } from '../../src/redis/aof-repair.js';
import { LinkProxy } from './link-proxy.js';

export const MASTER_NAME = 'ledger';

/**
 * Every node includes the recommended HA settings (persistence as the ledger's readiness check
 * wants it, min-replicas-to-write, replica-serve-stale-data no, ...), the file production
 * nodes include, so the tests run what is recommended. At the top: a later line wins, and
 * CONFIG REWRITE keeps `include` lines as they are.
 */
const HA_CONF = fileURLToPath(new URL('../../deploy/redis/ha/ha.conf', import.meta.url));
/** Tests only: DEBUG DIGEST, to compare the nodes' data (loopback connections only). */
const TEST_SETTINGS = ['enable-debug-command local'];

/**
 * Sentinel timing for tests: a primary is subjectively down after 1 s without a reply; a
 * failover attempt that stalls is abandoned after 4 s (and retried after twice that). The
 * recommended values (deploy/redis/ha/sentinel.conf: 5 s and 60 s) keep a slow disk from
 * triggering a failover; these keep the suite short, and on a busy machine they do now and then
 * fail over a primary that was only slow, which the tests must (and do) survive too.
 */
export const DOWN_AFTER_MS = 1000;
export const FAILOVER_TIMEOUT_MS = 4000;
export const QUORUM = 2;

/** Generous for a shared 2-core machine: Redis answers PING within a few ms of starting. */
const START_TIMEOUT_MS = 20_000;
const START_POLL_MS = 50;

/** Every process started here, killed when the test process exits (no orphans). */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/**
 * A keeper per process, as src/redis/embedded.ts does for the embedded Redis: a tiny `sh` whose
 * stdin is a pipe from this process. If this process dies by kill -9 (no 'exit' hook runs), the
 * kernel closes the pipe and the keeper kills the server. SIGKILL, since a SIGSTOPped server
 * would never act on SIGTERM.
 */
const KEEPER_SCRIPT = 'while read -r _; do :; done; kill -KILL "$1" 2>/dev/null';

function launch(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore', detached: true });
  child.on('error', () => {}); // reported by waitForPing's timeout, with the log file named
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (child.pid !== undefined) {
    const keeper = spawn('sh', ['-c', KEEPER_SCRIPT, 'ha-test-keeper', String(child.pid)],
      { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    keeper.on('error', () => {});
    keeper.stdin?.on('error', () => {});
    keeper.unref();
    (keeper.stdin as unknown as { unref(): void } | null)?.unref();
    child.once('exit', () => keeper.kill('SIGKILL'));
  }
  return child;
}

function exited(child: ChildProcess | undefined): boolean {
  return child === undefined || child.exitCode !== null || child.signalCode !== null;
}

async function killHard(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || exited(child)) return;
  const exit = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGKILL'); // works on a SIGSTOPped process too
  await exit;
}

/** A plain connection for the test's own commands; never retries, never queues. */
export async function connect(port: number): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true,
    maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 2000,
    commandTimeout: 2000, retryStrategy: () => null });
  redis.on('error', () => {});
  await redis.connect();
  return redis;
}

export async function withConnection<T>(port: number, use: (r: Redis) => Promise<T>) {
  const redis = await connect(port);
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

async function waitForPing(child: ChildProcess, port: number, what: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!exited(child)) {
    const pong = await withConnection(port, (r) => r.ping()).catch(() => undefined);
    if (pong === 'PONG') return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer PING`);
    await sleep(START_POLL_MS);
  }
}

/** One redis-server of the topology, behind its proxy. */
export class RedisNode {
  private child: ChildProcess | undefined;
  starts = 0;
  /** What a torn-tail repair cut at each start (Sentinel cannot start a node that refuses). */
  readonly repairs: string[][] = [];

  private constructor(readonly name: string, readonly dir: string, readonly port: number,
    readonly proxy: LinkProxy) {}

  /** Writes the node's config; `replicaOf` makes it a replica (through that node's proxy). */
  static async create(name: string, dir: string, port: number,
    replicaOf?: RedisNode): Promise<RedisNode> {
    const proxy = await LinkProxy.start(port);
    const lines = [`include ${HA_CONF}`, `port ${port}`, 'bind 127.0.0.1', 'daemonize no',
      `dir ${dir}`, `pidfile ${join(dir, 'redis.pid')}`, `logfile ${join(dir, 'redis.log')}`,
      // The names src/redis/aof-repair.ts expects (Redis's defaults too).
      `appenddirname ${AOF_DIR_NAME}`, `appendfilename ${AOF_FILE_NAME}`, ...TEST_SETTINGS,
      // Everybody reaches the node through its proxy: the primary lists it there in INFO.
      'replica-announce-ip 127.0.0.1', `replica-announce-port ${proxy.port}`,
      ...(replicaOf === undefined ? [] : [`replicaof 127.0.0.1 ${replicaOf.proxy.port}`])];
    writeFileSync(join(dir, 'redis.conf'), `${lines.join('\n')}\n`);
    return new RedisNode(name, dir, port, proxy);
  }

  /** The address everybody uses (Sentinel's view): the proxy. */
  get address(): string {
    return `127.0.0.1:${this.proxy.port}`;
  }

  get running(): boolean {
    return !exited(this.child);
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /** Starts (or restarts) it on its port, its config file and AOF, repairing a torn tail. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const log = join(this.dir, 'redis.log');
    const logStart = existsSync(log) ? readFileSync(log).length : 0;
    this.child = launch([join(this.dir, 'redis.conf')]);
    await waitForPing(this.child, this.port, this.name);
    const cut: string[] = [];
    if (!this.running) {
      const said = readFileSync(log).subarray(logStart).toString();
      const refusal = /Unexpected end of file|Bad file format/.exec(said)?.[0];
      if (refusal === undefined) throw new Error(`${this.name} exited at start; see ${log}`);
      const repair = repairTornTail(this.dir,
        refusal === 'Unexpected end of file' ? 'truncated' : 'bad-format', new Date());
      cut.push(...repair.cut);
      this.child = launch([join(this.dir, 'redis.conf')]);
      await waitForPing(this.child, this.port, this.name);
      if (!this.running) throw new Error(`${this.name} exited after a repair; see ${log}`);
    }
    this.repairs.push(cut);
    this.starts += 1;
  }

  /** kill -9: what a crash looks like to its AOF and to its peers. */
  async kill(): Promise<void> {
    await killHard(this.child);
  }

  freeze(): void {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGSTOP');
  }

  thaw(): void {
    if (this.pid !== undefined) process.kill(this.pid, 'SIGCONT');
  }

  /** A direct connection (not through the proxy), for the test's own commands. */
  admin<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
    return withConnection(this.port, use);
  }

  async close(): Promise<void> {
    await killHard(this.child);
    await this.proxy.close();
  }
}

/** One Sentinel (`redis-server <conf> --sentinel`) watching MASTER_NAME. */
export class SentinelProcess {
  private child: ChildProcess | undefined;

  private constructor(readonly name: string, readonly dir: string, readonly port: number) {}

  static async start(name: string, dir: string, port: number,
    primary: RedisNode): Promise<SentinelProcess> {
    const lines = [`port ${port}`, 'bind 127.0.0.1', 'daemonize no', `dir ${dir}`,
      `pidfile ${join(dir, 'sentinel.pid')}`, `logfile ${join(dir, 'sentinel.log')}`,
      // Hello messages name this address, so the Sentinels find each other on loopback.
      'sentinel announce-ip 127.0.0.1', 'sentinel resolve-hostnames no',
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.proxy.port} ${QUORUM}`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
      `sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`];
    const conf = join(dir, 'sentinel.conf'); // Sentinel rewrites it: its own copy
    writeFileSync(conf, `${lines.join('\n')}\n`);
    const sentinel = new SentinelProcess(name, dir, port);
    sentinel.child = launch([conf, '--sentinel']);
    await waitForPing(sentinel.child, port, name);
    if (exited(sentinel.child)) throw new Error(`${name} exited; see ${dir}/sentinel.log`);
    return sentinel;
  }

  /** A SENTINEL subcommand's reply. */
  command(...args: string[]): Promise<unknown> {
    return withConnection(this.port, (r) => r.call('SENTINEL', ...args));
  }

  get log(): string {
    const file = join(this.dir, 'sentinel.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async close(): Promise<void> {
    await killHard(this.child);
  }
}
