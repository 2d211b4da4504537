/**
 * A Redis Cluster of real processes for tests (groundwork for ledgers on Redis Cluster): N
 * primaries with M replicas each, every node a redis-server started the way the service starts
 * its embedded Redis (src/redis/embedded.ts: AOF, its own temporary directory, a free loopback
 * port, a keeper), plus `cluster-enabled yes`, joined by `redis-cli --cluster create`.
 *
 * Operations: the slot of a key, the primary of a slot, a slot migrated by hand (the resharding
 * sequence redis-cli runs, with a hook between batches so a test can load the ASK window), a
 * primary killed with kill -9 until its replica takes over, a node restarted on its ports and
 * directory (it rejoins as a replica). Health is read from every running node's CLUSTER INFO
 * and CLUSTER NODES. `stop()`, or the process's exit, kills every node and removes the
 * directories. test/cluster/cluster.test.ts checks all of it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type EmbeddedRedis, freePort, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { withConnection } from '../ha/nodes.js';
import { until } from '../ha/topology.js';

export const SLOTS = 16_384;
/**
 * A node unreachable this long is suspected (PFAIL); a majority of primaries then marks it
 * FAIL and its replica is elected 0.5–1 s later, so a failover takes ~3–4 s (Redis's default,
 * 15 s, would make it ~17 s). 1 s would save a second, but on a busy 2-core machine a node can
 * miss a second of pings (an fsync under `appendfsync always`, a starved core) and be failed
 * over in the middle of a test that did not ask for it.
 */
export const NODE_TIMEOUT_MS = 2000;
/** Liveness bounds for a shared, busy 2-core machine; a healthy run needs a fraction. */
export const HEALTHY_TIMEOUT_MS = 60_000;
/** Tries at starting the six nodes on free ports (see Cluster.start). */
const START_ATTEMPTS = 3;
const CREATE_TIMEOUT_MS = 60_000;
/** MIGRATE's own timeout: the longest pause in talking to the target, not the whole copy. */
const MIGRATE_TIMEOUT_MS = 5000;
const MIGRATE_COMMAND_TIMEOUT_MS = 20_000;
const MIGRATE_BATCH_KEYS = 10;

/** The CRC16 slot ioredis computes (its own dependency, pinned by it; it ships no types). */
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

export interface ClusterOptions {
  /** Default 3, the fewest `redis-cli --cluster create` accepts. */
  primaries?: number;
  replicasPerPrimary?: number;
  /** Default `always`, as the service's embedded Redis. */
  appendfsync?: 'always' | 'everysec';
}

export interface MigrationStep {
  slot: number;
  /** Keys moved so far; the source still owns the slot (MIGRATING / IMPORTING: ASK window). */
  moved: number;
  batches: number;
}

export interface MigrateOptions {
  batchKeys?: number;
  /** Awaited after each batch, before the slot changes owner. */
  pause?: (step: MigrationStep) => Promise<void>;
}

/** One line of CLUSTER NODES, as one node sees another. */
export interface NodeView {
  id: string;
  port: number;
  flags: string[];
  /** Its primary's id, for a replica. */
  primary: string | undefined;
  /** Slot ranges it owns, inclusive. */
  slots: Array<[number, number]>;
  /** `[slot->-id]` / `[slot-<-id]` entries: a migration in progress (its own line only). */
  open: string[];
}

export function parseClusterNodes(text: string): NodeView[] {
  return text.trim().split('\n').map((line) => {
    const [id, address, flags, primary, , , , , ...slots] = line.trim().split(' ');
    return {
      id: id as string,
      port: Number(/:(\d+)@/.exec(address ?? '')?.[1]),
      flags: (flags ?? '').split(',').filter((f) => f !== 'myself'),
      primary: primary === '-' ? undefined : primary,
      slots: slots.filter((s) => !s.startsWith('[')).map((s) => {
        const [a, b] = s.split('-').map(Number) as [number, number | undefined];
        return [a, b ?? a];
      }),
      open: slots.filter((s) => s.startsWith('[')),
    };
  });
}

/** Every node started here is killed (and its cluster's directory removed) when we exit. */
const live = new Set<Cluster>();
process.once('exit', () => {
  for (const cluster of live) cluster.killNow();
});

export class ClusterNode {
  server: EmbeddedRedis | undefined;
  /** CLUSTER MYID; `nodes.conf` keeps it across restarts. */
  id = '';
  /** As the cluster last agreed (Cluster.refresh); a dead former primary stays `primary`. */
  role: 'primary' | 'replica' = 'primary';
  primaryId: string | undefined;

  constructor(readonly name: string, readonly dir: string, readonly port: number,
    readonly busPort: number, private readonly appendfsync: 'always' | 'everysec') {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    const child = this.server?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.server?.child.pid : undefined;
  }

  /** Starts (or restarts) it on its ports, directory, AOF and `nodes.conf`. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    this.server = await startEmbeddedRedis({ dataDir: this.dir, port: this.port,
      appendfsync: this.appendfsync, extraArgs: [
        '--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, 'nodes.conf'),
        // Chosen, not port + 10000: freePort() hands out ports up to 60999 (Linux's ephemeral
        // range), and port + 10000 does not exist for a third of them.
        '--cluster-port', String(this.busPort),
        '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
        // What CLUSTER SLOTS / NODES hand to clients and peers: loopback, no natMap needed.
        '--cluster-announce-ip', '127.0.0.1',
        // Replicas sync at once (Redis waits 5 s for more replicas to share a sync).
        '--repl-diskless-sync-delay', '0'] });
    if (this.id === '') this.id = await this.admin((r) => r.call('CLUSTER', 'MYID')) as string;
  }

  /** kill -9: what a crash looks like to its AOF and its peers. */
  async kill(): Promise<void> {
    if (this.running) await this.server?.kill();
  }

  /** A short-lived direct connection for the harness's own commands. */
  admin<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
    return withConnection(this.port, use);
  }

  async view(): Promise<NodeView[]> {
    return parseClusterNodes(await this.admin((r) => r.call('CLUSTER', 'NODES')) as string);
  }

  /** ROLE as the node itself reports it: `master` or `slave`. */
  async reportedRole(): Promise<string> {
    return (await this.admin((r) => r.call('ROLE')) as string[])[0] as string;
  }
}

export class Cluster {
  private constructor(readonly root: string, readonly nodes: ClusterNode[],
    readonly primaries: number) {}

  /**
   * Starts the nodes, joins them, and waits until every node says the cluster is healthy. A
   * node that cannot start (a port freePort() offered was taken before redis-server bound it:
   * test files start processes and connections in parallel) starts the whole cluster again on
   * other ports, up to START_ATTEMPTS times.
   */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await Cluster.startOnce(options);
      } catch (error) {
        const busy = error instanceof Error && /redis-server exited/.test(error.message);
        if (!busy || attempt >= START_ATTEMPTS) throw error;
      }
    }
  }

  private static async startOnce(options: ClusterOptions): Promise<Cluster> {
    const primaries = options.primaries ?? 3;
    const replicas = options.replicasPerPrimary ?? 1;
    const cluster = new Cluster(mkdtempSync(join(tmpdir(), 'ledger-cluster-')), [], primaries);
    live.add(cluster);
    try {
      for (let i = 0; i < primaries * (1 + replicas); i++) {
        const dir = join(cluster.root, `n${i}`);
        mkdirSync(dir);
        cluster.nodes.push(new ClusterNode(`n${i}`, dir, await freePort(), await freePort(),
          options.appendfsync ?? 'always'));
      }
      await Promise.all(cluster.nodes.map((n) => n.start()));
      await redisCli(['--cluster', 'create', ...cluster.nodes.map((n) => n.address),
        '--cluster-replicas', String(replicas), '--cluster-yes']);
      await cluster.waitHealthy();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** REDIS_CLUSTER_NODES for a service: every node, `host:port,…`. */
  get nodesArg(): string {
    return this.nodes.map((n) => n.address).join(',');
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  slotOf(key: string): number {
    return keySlot(key);
  }

  /** The primary that owns `slot`, as `asked` (default: the first running node) sees it. */
  async primaryFor(slot: number, asked = this.nodes.find((n) => n.running)): Promise<ClusterNode> {
    if (asked === undefined) throw new Error('no node is running');
    const owner = (await asked.view())
      .find((v) => v.slots.some(([a, b]) => a <= slot && slot <= b));
    if (owner === undefined) throw new Error(`${asked.name} sees no owner of slot ${slot}`);
    return this.node(owner.id);
  }

  /**
   * Moves `slot` and its keys to the primary `toId`, the way `redis-cli --cluster reshard`
   * does. Between IMPORTING/MIGRATING and the final SETSLOT NODE, a key already moved answers
   * ASK at the source; a command on several keys split between the two answers TRYAGAIN.
   */
  async migrateSlot(slot: number, toId: string, options: MigrateOptions = {}) {
    const start = Date.now();
    const source = await this.primaryFor(slot);
    const target = this.node(toId);
    if (target === source || target.role !== 'primary' || !target.running) {
      throw new Error(`cannot move slot ${slot} from ${source.name} to ${target.name}`);
    }
    const [from, to] = await Promise.all([open(source.port), open(target.port)]);
    let moved = 0;
    let batches = 0;
    try {
      await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
      await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
      for (;;) {
        const keys = await from.call('CLUSTER', 'GETKEYSINSLOT', slot,
          options.batchKeys ?? MIGRATE_BATCH_KEYS) as string[];
        if (keys.length === 0) break;
        // No REPLACE: a key on both sides would be a bug in the protocol or here (BUSYKEY).
        // NOKEY (all deleted meanwhile) is fine.
        await from.call('MIGRATE', '127.0.0.1', target.port, '', 0, MIGRATE_TIMEOUT_MS,
          'KEYS', ...keys);
        moved += keys.length;
        batches += 1;
        await options.pause?.({ slot, moved, batches });
      }
      // The target first. The source first would send clients (MOVED) to a target that is
      // still importing, which sends them back (MOVED) until it is told too.
      await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    } finally {
      from.disconnect();
      to.disconnect();
    }
    for (const other of this.nodes.filter((n) => n.running && n.role === 'primary'
      && n !== source && n !== target)) {
      await other.admin((r) => r.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id));
    }
    await this.waitHealthy(); // the replicas learn the new owner by gossip
    const owners = await Promise.all(this.nodes.filter((n) => n.running)
      .map((n) => this.primaryFor(slot, n)));
    if (owners.some((o) => o !== target)) throw new Error(`slot ${slot} owners disagree`);
    return { keys: moved, batches, ms: Date.now() - start };
  }

  /**
   * kill -9 of a primary; waits until one of its replicas says it is a primary (`promotedMs`)
   * and the cluster is healthy again (`healthyMs`), both from `killedAt`, when it had exited.
   */
  async killPrimary(id: string, timeoutMs = HEALTHY_TIMEOUT_MS) {
    const node = this.node(id);
    const replicas = this.nodes.filter((n) => n.primaryId === id && n.running);
    if (!node.running || node.role !== 'primary' || replicas.length === 0) {
      throw new Error(`${node.name} is not a running primary with a running replica`);
    }
    await node.kill();
    const start = Date.now();
    let promoted: ClusterNode | undefined;
    let promotedMs = 0;
    await until(`a replica of ${node.name} to be promoted`, async () => {
      for (const replica of promoted === undefined ? replicas : []) {
        if (await replica.reportedRole() === 'master') {
          promoted = replica;
          promotedMs = Date.now() - start;
        }
      }
      return promoted === undefined ? 'no replica is a primary yet' : this.healthProblem();
    }, timeoutMs);
    await this.refresh();
    return { promoted: promoted as ClusterNode, killedAt: start, promotedMs,
      healthyMs: Date.now() - start };
  }

  /** Starts a stopped node again; a failed-over primary comes back as a replica. */
  async restart(node: ClusterNode, timeoutMs = HEALTHY_TIMEOUT_MS): Promise<{ ms: number }> {
    const start = Date.now();
    await node.start();
    await this.waitHealthy(timeoutMs);
    return { ms: Date.now() - start };
  }

  /** What is not yet as it should be, on every running node (undefined: healthy). */
  async healthProblem(): Promise<string | undefined> {
    const running = this.nodes.filter((n) => n.running);
    const seen: string[] = [];
    for (const node of running) {
      const info = parseInfo(await node.admin((r) => r.call('CLUSTER', 'INFO')) as string);
      const want = { cluster_state: 'ok', cluster_slots_ok: `${SLOTS}`,
        cluster_known_nodes: `${this.nodes.length}` };
      for (const [field, value] of Object.entries(want)) {
        if (info.get(field) !== value) return `${node.name}: ${field} ${info.get(field)}`;
      }
      const replication = parseInfo(await node.admin((r) => r.info('replication')));
      if (replication.get('role') === 'slave' && replication.get('master_link_status') !== 'up') {
        return `${node.name}: replication link ${replication.get('master_link_status')}`;
      }
      const views = await node.view();
      const problem = this.viewProblem(node, views);
      if (problem !== undefined) return problem;
      seen.push(views.map((v) => `${v.id} ${v.primary ?? '-'} ${v.slots.join(' ')}`).sort()
        .join('\n'));
    }
    return new Set(seen).size <= 1 ? undefined : 'nodes disagree on roles or slots';
  }

  /** Problems in one node's CLUSTER NODES: flags, open slots, primaries with slots. */
  private viewProblem(node: ClusterNode, views: NodeView[]): string | undefined {
    for (const view of views) {
      const peer = this.node(view.id);
      const bad = view.flags.filter((f) => peer.running ? f !== 'master' && f !== 'slave'
        : f === 'pfail'); // a dead node must be agreed FAIL, not only suspected
      if (bad.length > 0) return `${node.name} sees ${peer.name} ${view.flags.join(',')}`;
      if (view.open.length > 0) return `${node.name}: open slots ${view.open.join(' ')}`;
    }
    const owners = views.filter((v) => v.slots.length > 0);
    if (owners.some((v) => !this.node(v.id).running) || owners.length !== this.primaries) {
      return `${node.name} sees slots on ${owners.map((v) => this.node(v.id).name).join(' ')}`;
    }
    return undefined;
  }

  /** Waits until healthProblem() has none, then takes the roles the nodes agree on. */
  async waitHealthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<void> {
    await until('a healthy cluster', () => this.healthProblem(), timeoutMs);
    await this.refresh();
  }

  private async refresh(): Promise<void> {
    for (const view of await this.nodes.find((n) => n.running)?.view() ?? []) {
      const node = this.node(view.id);
      node.role = view.primary === undefined ? 'primary' : 'replica';
      node.primaryId = view.primary;
    }
  }

  /** One line per node, for failure messages and logs. */
  describe(): string {
    return this.nodes.map((n) => `${n.name} :${n.port} ${n.id.slice(0, 8)} ${n.role}` +
      `${n.primaryId === undefined ? '' : ` of ${this.node(n.primaryId).name}`}` +
      `${n.running ? ` pid ${n.pid}` : ' down'}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    rmSync(this.root, { recursive: true, force: true });
    live.delete(this);
  }

  /** For the process's exit hook: nothing asynchronous runs there. */
  killNow(): void {
    for (const node of this.nodes) if (node.running) node.server?.child.kill('SIGKILL');
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A connection for MIGRATE, which may take longer than the admin connection's timeout. */
async function open(port: number): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true,
    maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 2000,
    commandTimeout: MIGRATE_COMMAND_TIMEOUT_MS, retryStrategy: () => null });
  redis.on('error', () => {});
  await redis.connect();
  return redis;
}

async function redisCli(args: string[]): Promise<void> {
  const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), CREATE_TIMEOUT_MS);
  const code = await new Promise<number | null>((ok, fail) => {
    child.once('error', fail);
    child.once('exit', ok);
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${output}`);
}
