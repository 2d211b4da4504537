/**
 * The Redis Cluster harness (cluster.ts) checked against itself and a real ioredis `Cluster`
 * client: six nodes come up; one ledger's keys share a slot; that slot moves to another primary
 * while the client writes and reads it (following MOVED, ASK and TRYAGAIN) and no acknowledged
 * write is lost; its new primary is killed with kill -9, its replica takes over, the client
 * recovers and no write a replica acknowledged (WAIT) is lost; the killed node comes back as a
 * replica holding the same data. Timings go to stdout; the bounds are liveness only.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster as ClusterClient, type Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { connect } from '../ha/nodes.js';
import { until } from '../ha/topology.js';
import { Cluster, type ClusterNode, HEALTHY_TIMEOUT_MS } from './cluster.js';

const TAG = '{ledger-a}';
const COUNTERS = 60;
/** Ops of the pause hook's burst, run inside each migration step (the ASK window). */
const BURST_OPS = 12;
/** Pause after a failed op, so a client that fails fast does not spin. */
const ERROR_PAUSE_MS = 50;
/** WAIT's timeout: a primary without a replica (just promoted) answers 0 after it. */
const WAIT_TIMEOUT_MS = 1000;
/** Atomic on two keys of one slot: TRYAGAIN while a migration has split them. */
const INCR_TWO = "return {redis.call('INCR', KEYS[1]), redis.call('INCR', KEYS[2])}";

let cluster: Cluster;
let client: ClusterClient;
const timings: string[] = [];

function clusterClient(nodes: readonly ClusterNode[]): ClusterClient {
  const c = new ClusterClient(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), {
    // Primaries only: a replica lags (asynchronous replication) and needs READONLY.
    scaleReads: 'master',
    // Commands wait in the queue while the client (re)loads the slot map, not fail at once.
    enableOfflineQueue: true,
    // ioredis retries TRYAGAIN, CLUSTERDOWN and a closed connection on a random primary, whose
    // MOVED costs another of the 16: a command lives through ~8 of those waits, so ~0.4 s of a
    // slot split by a migration and ~1.6 s of a dead primary (a failover takes ~4 s). Then
    // it fails with "Too many Cluster redirections".
    maxRedirections: 16,
    retryDelayOnMoved: 0,
    retryDelayOnTryAgain: 50,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    // Loading the slot map: ioredis's 1 s default is tight on a busy 2-core machine.
    slotsRefreshTimeout: 5000,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    redisOptions: { connectTimeout: 2000, commandTimeout: 5000, maxRetriesPerRequest: 1 },
  });
  c.on('error', () => {});
  c.on('node error', () => {});
  return c;
}

/**
 * Writes and reads on one tag's keys, with what the client was told: per counter, the
 * increments acknowledged (`acked`), acknowledged and confirmed by a replica (`durable`), in
 * flight, and failed (they may have run). A read must lie between what was acknowledged before
 * it was sent and everything that may have run by its reply.
 */
class Load {
  readonly acked = new Array<number>(COUNTERS).fill(0);
  readonly durable = new Array<number>(COUNTERS).fill(0);
  readonly unsure = new Array<number>(COUNTERS).fill(0);
  private readonly inFlight = new Array<number>(COUNTERS).fill(0);
  readonly written: string[] = [];
  readonly errors = new Map<string, number>();
  readonly violations: string[] = [];
  readonly oks: Array<{ start: number; end: number }> = [];
  ops = 0;
  private keysWritten = 0;
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Each increment also waits for a replica (WAIT 1 in the same pipeline). */
  withWait = false;

  constructor(private readonly c: ClusterClient) {}

  key(i: number): string {
    return `test:${TAG}:c${i}`;
  }

  private async incr(i: number): Promise<void> {
    if (!this.withWait) return this.count([i], async () => [await this.c.incr(this.key(i))]);
    let replicas = 0;
    // WAIT counts the replicas that have this connection's writes: it must follow the INCR on
    // the same connection, which in a Cluster only a pipeline ensures. ioredis re-sends a
    // cluster pipeline after MOVED or ASK only if all that succeeded in it was read-only
    // (WAIT is not), so a MOVED comes back to us as the INCR's error.
    await this.count([i], async () => {
      const replies = await this.c.pipeline().incr(this.key(i)).wait(1, WAIT_TIMEOUT_MS).exec();
      const [incr, wait] = replies ?? [];
      if (incr?.[0] || wait?.[0]) throw incr?.[0] ?? wait?.[0];
      replicas = wait?.[1] as number;
      return [incr?.[1]];
    });
    if (replicas >= 1) this.durable[i] = (this.durable[i] as number) + 1;
  }

  /** Runs increments of counters `ids`, keeping the counts. */
  private async count(ids: number[], send: () => Promise<unknown[]>): Promise<void> {
    for (const i of ids) this.inFlight[i] = (this.inFlight[i] as number) + 1;
    let ok = false;
    try {
      await send();
      ok = true;
    } finally {
      for (const i of ids) {
        this.inFlight[i] = (this.inFlight[i] as number) - 1;
        if (ok) this.acked[i] = (this.acked[i] as number) + 1;
        else this.unsure[i] = (this.unsure[i] as number) + 1;
      }
    }
  }

  /**
   * What a read must at least see: every acknowledged increment; across a failover, only those
   * a replica confirmed (an unconfirmed one may be lost with its primary).
   */
  private floor(i: number): number {
    return (this.withWait ? this.durable[i] : this.acked[i]) as number;
  }

  private async read(i: number): Promise<void> {
    const low = this.floor(i);
    const value = Number(await this.c.get(this.key(i)) ?? 0);
    const high = (this.acked[i] as number) + (this.inFlight[i] as number) +
      (this.unsure[i] as number);
    if (value < low || value > high) {
      this.violations.push(`${this.key(i)}: ${value} ∉ ${low}…${high}`);
    }
  }

  /** Every counter once, so each exists before the load starts. */
  async seed(): Promise<void> {
    for (let i = 0; i < COUNTERS; i++) await this.incr(i);
  }

  /**
   * One random operation. A failure is counted under the operation's kind and the error's
   * first word (for "Too many Cluster redirections", `redirections` and the last one's word);
   * it is never thrown.
   */
  async op(): Promise<void> {
    const i = Math.floor(Math.random() * COUNTERS);
    const j = (i + 1 + Math.floor(Math.random() * (COUNTERS - 1))) % COUNTERS;
    const start = Date.now();
    const roll = Math.random();
    const kind = roll < 0.4 ? 'incr' : roll < 0.7 ? 'get' : roll < 0.85 ? 'incr2' : 'set';
    try {
      if (kind === 'incr') await this.incr(i);
      else if (kind === 'get') await this.read(i);
      else if (kind === 'incr2') {
        await this.count([i, j], () => this.c.eval(INCR_TWO, 2, this.key(i), this.key(j)) as
          Promise<unknown[]>);
      } else {
        const key = `test:${TAG}:w${this.keysWritten++}`;
        await this.c.set(key, key);
        this.written.push(key);
      }
      this.oks.push({ start, end: Date.now() });
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const last = /Last error: (?:\w*Error: )?(\S+)/.exec(text)?.[1];
      const word = last === undefined ? text.split(' ')[0] : `redirections(${last})`;
      const name = `${kind} ${word}`;
      this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
      await sleep(ERROR_PAUSE_MS);
    } finally {
      this.ops += 1;
    }
  }

  /** Errors of single-key operations: ioredis must follow MOVED and ASK for those. */
  singleKeyErrors(): string[] {
    return [...this.errors.keys()].filter((e) => !e.startsWith('incr2 '));
  }

  async burst(): Promise<void> {
    await Promise.all(Array.from({ length: BURST_OPS }, () => this.op()));
  }

  start(): void {
    this.stopping = false;
    this.running = (async () => {
      while (!this.stopping) await this.op();
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** The first operation sent at or after `since` that succeeded: its reply's time. */
  okAfter(since: number): number | undefined {
    return this.oks.find((o) => o.start >= since)?.end;
  }

  errorText(): string {
    return [...this.errors].map(([w, n]) => `${w} ×${n}`).join(', ') || 'none';
  }
}

/** Every counter on `redis` (a primary, or a replica in READONLY) against the load's counts. */
async function checkCounters(redis: Redis, load: Load, lowerBound: number[]): Promise<string[]> {
  const values = (await redis.mget(...Array.from({ length: COUNTERS }, (_, i) => load.key(i))))
    .map((v) => Number(v ?? 0));
  return values.flatMap((v, i) => {
    const low = lowerBound[i] as number;
    const high = (load.acked[i] as number) + (load.unsure[i] as number);
    return v < low || v > high ? [`${load.key(i)}: ${v} ∉ ${low}…${high}`] : [];
  });
}

/**
 * The redirections a node answered (INFO errorstats). Not ERR: Redis 7.0 answers it twice to
 * every new ioredis connection (CLIENT SETINFO is 7.2's).
 */
async function redirections(node: ClusterNode): Promise<string> {
  const info = parseInfo(await node.admin((r) => r.info('errorstats')));
  return ['ASK', 'MOVED', 'TRYAGAIN'].map((e) =>
    `${e} ${/count=(\d+)/.exec(info.get(`errorstat_${e}`) ?? '')?.[1] ?? 0}`).join(', ');
}

let load: Load;

beforeAll(async () => {
  const start = Date.now();
  cluster = await Cluster.start({ primaries: 3, replicasPerPrimary: 1 });
  timings.push(`cluster of 6 created and healthy in ${Date.now() - start} ms`);
  client = clusterClient(cluster.nodes);
  load = new Load(client);
}, 120_000);

afterAll(async () => {
  await load?.stop();
  client?.disconnect();
  if (timings.length > 0) {
    console.info(`Redis Cluster harness:\n  ${timings.join('\n  ')}\n${cluster.describe()}`);
  }
  await cluster?.stop();
});

test('six nodes: three primaries with a replica each, every slot served', async () => {
  const primaries = cluster.nodes.filter((n) => n.role === 'primary');
  expect(primaries).toHaveLength(3);
  for (const p of primaries) {
    expect(cluster.nodes.filter((n) => n.primaryId === p.id)).toHaveLength(1);
  }
  expect(new Set(cluster.nodes.map((n) => n.id)).size).toBe(6);
  expect(cluster.nodes.every((n) => n.running && n.pid !== undefined)).toBe(true);
  expect(cluster.nodesArg).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){5}$/);
  expect(await cluster.healthProblem()).toBeUndefined();
  expect(await client.set(`test:${TAG}:hello`, 'world')).toBe('OK');
});

test('one ledger\'s keys share a slot; slotOf agrees with CLUSTER KEYSLOT', async () => {
  const keys = ledgerKeys('test', 'ledger-a');
  const names = [keys.meta(), keys.account('alice'), keys.accountIds(), keys.journal(),
    keys.rejections(), keys.transferBucket('t-1'), keys.state(), keys.expiries(),
    keys.holdStats(), keys.lock('sweeper')];
  const node = cluster.nodes[0] as ClusterNode;
  const serverSlot = (key: string) => node.admin((r) => r.call('CLUSTER', 'KEYSLOT', key));
  for (const key of [...names, 'plain', 'test:{ledger-b}:meta', '{}x', '{a}{b}']) {
    expect(cluster.slotOf(key), key).toBe(await serverSlot(key));
  }
  expect(new Set(names.map((k) => cluster.slotOf(k))).size).toBe(1);
  expect(cluster.slotOf(keys.meta())).toBe(cluster.slotOf(TAG));
  expect(cluster.slotOf(ledgerKeys('test', 'ledger-b').meta())).not.toBe(cluster.slotOf(TAG));
});

test('a slot moves to another primary under load; no acknowledged write is lost', async () => {
  const slot = cluster.slotOf(TAG);
  const source = await cluster.primaryFor(slot);
  const target = cluster.nodes.find((n) => n.role === 'primary' && n !== source) as ClusterNode;
  await load.seed();
  load.start();
  let steps = 0;
  const moved = await cluster.migrateSlot(slot, target.id, { batchKeys: 8, pause: async () => {
    steps += 1;
    await load.burst();
  } });
  await load.burst(); // after the move: MOVED, then the new slot map
  await load.stop();
  timings.push(`slot ${slot} (${moved.keys} keys, ${moved.batches} batches) moved ` +
    `${source.name} → ${target.name} in ${moved.ms} ms; ${load.ops} ops, errors: ` +
    `${load.errorText()}; answered by the source: ${await redirections(source)}; by the ` +
    `target: ${await redirections(target)}`);
  expect(steps).toBe(moved.batches);
  expect(moved.batches).toBeGreaterThan(1);
  expect((await cluster.primaryFor(slot)).name).toBe(target.name);
  expect(load.violations).toEqual([]);
  expect(load.singleKeyErrors()).toEqual([]);
  const [onSource, onTarget] = await Promise.all([source, target].map((n) =>
    n.admin((r) => r.call('CLUSTER', 'COUNTKEYSINSLOT', slot))));
  expect(onSource).toBe(0);
  const direct = await connect(target.port);
  try {
    expect(await checkCounters(direct, load, load.acked)).toEqual([]);
    const written = load.written.length === 0 ? [] : await direct.mget(...load.written);
    expect(written).toEqual(load.written);
    // + the first test's `hello`
    expect(onTarget).toBeGreaterThanOrEqual(COUNTERS + load.written.length + 1);
  } finally {
    direct.disconnect();
  }
}, 90_000);

let killed: ClusterNode;
let promoted: ClusterNode;

test('kill -9 of the slot\'s primary: its replica takes over, the client recovers', async () => {
  const slot = cluster.slotOf(TAG);
  killed = await cluster.primaryFor(slot);
  const replica = cluster.nodes.find((n) => n.primaryId === killed.id) as ClusterNode;
  load.withWait = true;
  load.errors.clear();
  const before = load.ops;
  load.start();
  await until('writes with a replica ack', async () =>
    load.ops - before > 50 ? undefined : `${load.ops - before} ops`, HEALTHY_TIMEOUT_MS);
  const failover = await cluster.killPrimary(killed.id);
  const { killedAt } = failover;
  promoted = failover.promoted;
  let recovered = 0;
  await until('the client to succeed again', async () => {
    recovered = (load.okAfter(killedAt) ?? killedAt) - killedAt;
    return load.okAfter(killedAt) === undefined ? 'no op succeeded since the kill' : undefined;
  }, HEALTHY_TIMEOUT_MS);
  const healthyAt = Date.now();
  await until('writes on the new primary', async () => {
    const n = load.oks.filter((o) => o.start >= healthyAt).length;
    return n >= 5 ? undefined : `${n} ops`;
  }, HEALTHY_TIMEOUT_MS);
  await load.stop();
  expect(promoted.name).toBe(replica.name);
  expect((await cluster.primaryFor(slot)).name).toBe(promoted.name);
  expect(load.violations).toEqual([]);
  const direct = await connect(promoted.port);
  let lost = 0;
  try {
    expect(await checkCounters(direct, load, load.durable)).toEqual([]);
    const values = await direct.mget(...Array.from({ length: COUNTERS }, (_, i) => load.key(i)));
    lost = values.reduce((sum, v, i) =>
      sum + Math.max(0, (load.acked[i] as number) - Number(v)), 0);
  } finally {
    direct.disconnect();
  }
  timings.push(`kill -9 of ${killed.name}: ${promoted.name} a primary after ` +
    `${failover.promotedMs} ms, cluster healthy after ${failover.healthyMs} ms, client's ` +
    `first success ${recovered} ms after the kill; errors: ${load.errorText()}; ` +
    `acknowledged increments lost without a replica ack: ${lost}`);
}, 150_000);

test('the killed node, restarted, rejoins as a replica of its successor', async () => {
  const { ms } = await cluster.restart(killed);
  expect(killed.role).toBe('replica');
  expect(killed.primaryId).toBe(promoted.id);
  expect(await killed.reportedRole()).toBe('slave');
  const [p, r] = await Promise.all([connect(promoted.port), connect(killed.port)]);
  try {
    await until('the rejoined replica to catch up', async () => {
      const [pi, ri] = [parseInfo(await p.info('replication')),
        parseInfo(await r.info('replication'))];
      return pi.get('master_repl_offset') === ri.get('slave_repl_offset') ? undefined
        : `offsets ${pi.get('master_repl_offset')} ${ri.get('slave_repl_offset')}`;
    }, HEALTHY_TIMEOUT_MS);
    await r.call('READONLY');
    const keys = Array.from({ length: COUNTERS }, (_, i) => load.key(i));
    expect(await r.mget(...keys)).toEqual(await p.mget(...keys));
  } finally {
    p.disconnect();
    r.disconnect();
  }
  expect(await client.incr(load.key(0))).toBeGreaterThan(0);
  timings.push(`${killed.name} restarted and healthy as a replica in ${ms} ms`);
}, 90_000);
