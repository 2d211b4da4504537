/**
 * Ledgers on Redis Cluster (issue 15), two figures, both with the product's ledger routes
 * (/ledgers/<name>/…) and run.ts's (c) load shapes:
 * 1. Redis CPU per single transfer, one ledger: the product against one redis-server (as run.ts
 *    starts (c)'s) and against a cluster of 3 primaries (REDIS_CLUSTER_NODES). Redis CPU is
 *    used_cpu_sys + used_cpu_user summed over every node, idle ones included: what the cluster
 *    costs is the ratio.
 * 2. Aggregate batch throughput over 6 ledgers, 2 on each of the 3 primaries, against the same
 *    6 ledgers on a cluster of 1 primary holding every slot: the same client code (ioredis
 *    Cluster), the same cluster-enabled Redis, so only the number of primaries differs (one
 *    redis-server would also change the client and Redis's slot bookkeeping: that is figure 1).
 * Nodes are started as run.ts's (c) Redis is (src/redis/embedded.ts: AOF, the fsync policy)
 * plus cluster-enabled, with no replicas. Rounds interleave the variants; medians are taken.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type EmbeddedRedis, freePort, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { cpuTotals, type CpuSample, type CpuSegment, cpuSegment, type SpreadSegment,
  spreadSegment, summarise, type ClusterResult } from './cluster-report.js';
import { batchBody, type LoadSpec, runLoad, transferBody } from './load.js';
import { type Server, track } from './processes.js';
import { snapshot, waitForRewrite } from './redis-stats.js';

export const SLOTS = 16_384;
/** Figure 2's cluster: the fewest primaries `redis-cli --cluster create` would accept. */
export const PRIMARIES = 3;
export const LEDGERS_PER_PRIMARY = 2;
/**
 * Figure 2: one batch in flight per ledger, 6 in all ((d) has 4 on one ledger), so that Redis
 * has others while the service parses one. Two each (12 batches of 1000) left none answered
 * within a 1 s smoke segment on this machine.
 */
export const BATCH_CONNECTIONS_PER_LEDGER = 1;
/**
 * Redis's default. With no replicas nothing fails over; a shorter timeout would only let a
 * node starved of CPU on this busy 2-core machine be marked failing, which takes the cluster
 * down (CLUSTERDOWN) for the rest of the run.
 */
const NODE_TIMEOUT_MS = 15_000;
/** A liveness bound: the nodes agree within a second or two. */
const AGREE_TIMEOUT_MS = 30_000;

/** The CRC16 slot ioredis computes (its own dependency, pinned by it; it ships no types). */
const keySlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

export const CLUSTER_VARIANTS = ['redis', 'cluster3', 'cluster1'] as const;
export type ClusterVariant = (typeof CLUSTER_VARIANTS)[number];
/** run.ts's variant table: the cluster variants differ by their Redis, not their environment. */
export const CLUSTER_VARIANT_ENV: Record<ClusterVariant, Record<string, string>> = {
  redis: {}, cluster3: {}, cluster1: {} };
/**
 * How the product reaches its Redis. LEDGER_DATA_DIR: where a product that does not know
 * cluster mode would start a Redis of its own instead (never the repository's ./data); the
 * placement check (prepareLedger) then fails the section.
 */
export type RedisEnv = ({ REDIS_URL: string } | { REDIS_CLUSTER_NODES: string })
  & { LEDGER_DATA_DIR?: string };

export interface ClusterSettings {
  appendfsync: 'always' | 'everysec';
  durationS: number;
  rounds: number;
  warmupS: number;
  connections: number;
  batchSize: number;
  pool: readonly string[];
  /** Content type and an API key with the `write` and `admin` scopes. */
  headers: Record<string, string>;
  /** run.ts's startProduct in the variant, with this Redis; stopped here. */
  startProduct: (variant: ClusterVariant, redis: RedisEnv, dir: string) => Promise<Server>;
  /** run.ts's startRedis: (c)'s redis-server, in `dir`. */
  startRedis: (dir: string) => Promise<EmbeddedRedis>;
  createAccounts: (product: Server, ids: readonly string[]) => Promise<void>;
  /** Removed by the caller. */
  dir: string;
}

export interface Node { name: string; redis: EmbeddedRedis; stats: Redis; slots: [number, number] }

/** Slot range of primary i of n, as even as 16384 allows. */
function slotRange(i: number, n: number): [number, number] {
  return [Math.floor(i * SLOTS / n), Math.floor((i + 1) * SLOTS / n) - 1];
}

async function startNode(name: string, dir: string, appendfsync: ClusterSettings['appendfsync'],
  slots: [number, number]): Promise<Node> {
  const dataDir = join(dir, name);
  const redis = await startEmbeddedRedis({ dataDir, appendfsync, extraArgs: [
    '--cluster-enabled', 'yes', '--cluster-config-file', join(dataDir, 'nodes.conf'),
    // Chosen, not port + 10000, which may lie beyond 65535 (as test/cluster/cluster.ts).
    '--cluster-port', String(await freePort()), '--cluster-announce-ip', '127.0.0.1',
    '--cluster-node-timeout', String(NODE_TIMEOUT_MS)] });
  track(redis.child);
  if (redis.port === 6379) throw new Error('the bench must never use the shared Redis on 6379');
  return { name, redis, stats: new Redis(redis.url, { maxRetriesPerRequest: 1 }), slots };
}

export async function stopNodes(nodes: readonly Node[]): Promise<void> {
  for (const n of nodes) n.stats.disconnect();
  await Promise.all(nodes.map((n) => n.redis.stop()));
}

/** What keeps a node from serving every slot yet (undefined: nothing). */
async function notAgreed(node: Node, count: number): Promise<string | undefined> {
  const info = parseInfo(await node.stats.call('CLUSTER', 'INFO') as string);
  const want = { cluster_state: 'ok', cluster_slots_ok: `${SLOTS}`,
    cluster_known_nodes: `${count}` };
  for (const [field, value] of Object.entries(want)) {
    if (info.get(field) !== value) return `${node.name}: ${field} ${info.get(field)}`;
  }
  return undefined;
}

/**
 * `primaries` nodes, each given its slot range by hand (ADDSLOTSRANGE: redis-cli --cluster
 * create refuses fewer than 3 primaries) and its own config epoch, then joined (MEET).
 */
export async function startCluster(name: string, primaries: number, dir: string,
  appendfsync: ClusterSettings['appendfsync']): Promise<Node[]> {
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < primaries; i++) {
      nodes.push(await startNode(`${name}-n${i}`, dir, appendfsync, slotRange(i, primaries)));
    }
    for (const [i, n] of nodes.entries()) {
      await n.stats.call('CLUSTER', 'ADDSLOTSRANGE', n.slots[0], n.slots[1]);
      await n.stats.call('CLUSTER', 'SET-CONFIG-EPOCH', i + 1);
    }
    const first = nodes[0] as Node;
    for (const n of nodes.slice(1)) {
      const bus = Number(await n.stats.call('CONFIG', 'GET', 'cluster-port')
        .then((v) => (v as string[])[1]));
      await first.stats.call('CLUSTER', 'MEET', '127.0.0.1', n.redis.port, bus);
    }
    const deadline = Date.now() + AGREE_TIMEOUT_MS;
    for (;;) {
      const problems = (await Promise.all(nodes.map((n) => notAgreed(n, primaries))))
        .filter((p) => p !== undefined);
      if (problems.length === 0) return nodes;
      if (Date.now() > deadline) throw new Error(`cluster ${name}: ${problems.join('; ')}`);
      await sleep(100);
    }
  } catch (error) {
    await stopNodes(nodes);
    throw error;
  }
}

type Slots = Pick<Node, 'slots'>;

/** Slot ranges of a cluster of `primaries`, as startCluster gives them. */
export function layout(primaries: number): Slots[] {
  return Array.from({ length: primaries }, (_, i) => ({ slots: slotRange(i, primaries) }));
}

/** The node of `nodes` that owns the slot of ledger `name` (its keys' hash tag). */
export function ownerOf(nodes: readonly Slots[], name: string): number {
  const slot = keySlot(`{${name}}`);
  return nodes.findIndex((n) => n.slots[0] <= slot && slot <= n.slots[1]);
}

/** Ledger names, `per` of them in each node's slots, in node order. */
export function spreadLedgers(nodes: readonly Slots[], per: number): string[] {
  const chosen = nodes.map((): string[] => []);
  for (let i = 0; chosen.some((c) => c.length < per); i++) {
    const name = `spread-${i}`;
    const owner = chosen[ownerOf(nodes, name)] as string[];
    if (owner.length < per) owner.push(name);
  }
  return chosen.flat();
}

// ---------------------------------------------------------------------------------------------
// Load and measurement

export interface Target { variant: ClusterVariant; product: Server; nodes: Node[] }

async function createLedger(s: ClusterSettings, product: Server, name: string): Promise<void> {
  const response = await fetch(`${product.base}/ledgers`, { method: 'POST', headers: s.headers,
    body: JSON.stringify({ name }) });
  const text = await response.text();
  if (response.status !== 201 && response.status !== 200) {
    throw new Error(`POST /ledgers {"name":"${name}"} answered ${response.status}: ` +
      text.slice(0, 300));
  }
}

/** The contract's key of ledger `name` (keys.ts, default LEDGER_KEY_PREFIX). */
const metaKey = (name: string) => `ledger:{${name}}:meta`;

/**
 * The ledger with the bench's accounts (createAccounts posts to `${base}/accounts`), checked
 * to be where its slot says, on this variant's nodes: else the figures would be another Redis's.
 */
export async function prepareLedger(s: ClusterSettings, t: Target, name: string): Promise<void> {
  await createLedger(s, t.product, name);
  await s.createAccounts({ ...t.product, base: `${t.product.base}/ledgers/${name}` }, s.pool);
  const owner = t.nodes[ownerOf(t.nodes, name)];
  if (owner === undefined || await owner.stats.exists(metaKey(name)) !== 1) {
    throw new Error(`cluster bench: ledger ${name} of ${t.variant} has no ${metaKey(name)} on ` +
      `${owner?.name ?? 'any node'}: the product does not use this variant's Redis`);
  }
}

const singleSpec = (s: ClusterSettings, t: Target, ledger: string, durationS: number) => ({
  url: `${t.product.base}/ledgers/${ledger}/transfers`, method: 'POST' as const,
  headers: s.headers, durationS, connections: s.connections, expectStatus: 201,
  body: transferBody(s.pool) });

const batchSpec = (s: ClusterSettings, t: Target, ledger: string, durationS: number):
  LoadSpec => ({ url: `${t.product.base}/ledgers/${ledger}/transfers/batch`, method: 'POST',
  headers: s.headers, durationS, connections: BATCH_CONNECTIONS_PER_LEDGER, expectStatus: 200,
  countItems: true, body: batchBody(s.pool, s.batchSize, false) });

export async function warmUp(s: ClusterSettings, t: Target, ledgers: readonly string[],
  batch: boolean): Promise<void> {
  if (s.warmupS <= 0) return;
  await Promise.all(ledgers.map((l) => runLoad(batch ? batchSpec(s, t, l, s.warmupS)
    : singleSpec(s, t, l, s.warmupS))));
}

/** Each node's Redis figures, the service's, the loader's and the machine's, around `run`. */
async function sampled<T>(t: Target, run: () => Promise<T>): Promise<[T, CpuSample]> {
  await Promise.all(t.nodes.map((n) => waitForRewrite(n.stats)));
  const totals = async () => cpuTotals(t.product.pid, await Promise.all(t.nodes.map(
    (n) => snapshot(n.stats))), t.nodes.map((n) => n.redis.child.pid));
  const before = await totals();
  const result = await run();
  const after = await totals();
  return [result, { before, after }];
}

/** Figure 1: single transfers on one ledger. */
export async function measureCpu(s: ClusterSettings, t: Target, ledger: string,
  round: number): Promise<CpuSegment> {
  const [load, sample] = await sampled(t, () => runLoad(singleSpec(s, t, ledger, s.durationS)));
  const segment = cpuSegment(round, load, ownerOf(t.nodes, ledger), sample);
  console.error(`  round ${round} ${t.variant.padEnd(8)} single ` +
    `${Math.round(segment.transfersPerS).toLocaleString('en-US').padStart(7)} transfers/s, ` +
    `Redis CPU ${segment.redisCpuUsPerTransfer?.toFixed(1) ?? '—'} µs per transfer` +
    (load.non2xx + load.errors > 0 ? `  (${load.non2xx} non-2xx, ${load.errors} errors: ` +
      `${JSON.stringify(load.statusCodes)})` : ''));
  return segment;
}

/** Figure 2: batches on every ledger at once. */
export async function measureSpread(s: ClusterSettings, t: Target, ledgers: readonly string[],
  round: number): Promise<SpreadSegment> {
  const [loads, sample] = await sampled(t, () => Promise.all(ledgers.map(
    (l) => runLoad(batchSpec(s, t, l, s.durationS)))));
  const segment = spreadSegment(round, ledgers.map((l, i) => ({ ledger: l,
    node: ownerOf(t.nodes, l), load: loads[i] as Awaited<ReturnType<typeof runLoad>> })),
  t.nodes.map((n) => n.name), sample);
  console.error(`  round ${round} ${t.variant.padEnd(8)} batches on ${ledgers.length} ledgers ` +
    `${Math.round(segment.transfersPerS).toLocaleString('en-US').padStart(7)} transfers/s, ` +
    `Redis cores per primary ${segment.nodes.map((n) => n.redisCores.toFixed(2)).join(' / ')}` +
    (segment.nonCommitted > 0 ? `  (${segment.nonCommitted} not committed: ` +
      `${JSON.stringify(segment.statusCodes)} ${JSON.stringify(segment.itemStatuses)})` : ''));
  return segment;
}

// ---------------------------------------------------------------------------------------------
// The section

/** How to stop what has started, in the order it started (stopped in reverse). */
type Stops = Array<() => Promise<void>>;

/** Every promise's value; settled first, so that whatever started is in `stops`. */
async function settled<T>(promises: ReadonlyArray<Promise<T>>): Promise<T[]> {
  return (await Promise.allSettled(promises)).map((x) => {
    if (x.status === 'rejected') throw x.reason;
    return x.value;
  });
}

/** A variant's Redis, then its product, then its ledgers: each variant as soon as it can. */
async function startVariant(s: ClusterSettings, stops: Stops, variant: ClusterVariant,
  ledgers: readonly string[]): Promise<Target> {
  let nodes: Node[];
  if (variant === 'redis') {
    const redis = await s.startRedis(join(s.dir, 'redis'));
    nodes = [{ name: 'redis', redis, slots: [0, SLOTS - 1],
      stats: new Redis(redis.url, { maxRetriesPerRequest: 1 }) }];
  } else {
    nodes = await startCluster(variant, variant === 'cluster3' ? PRIMARIES : 1, s.dir,
      s.appendfsync);
  }
  stops.push(() => stopNodes(nodes));
  const env: RedisEnv = variant === 'redis' ? { REDIS_URL: nodes[0]?.redis.url ?? '' }
    : { REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.redis.port}`).join(',') };
  const product = await s.startProduct(variant,
    { ...env, LEDGER_DATA_DIR: join(s.dir, `data-${variant}`) }, s.dir);
  stops.push(() => product.stop());
  const target = { variant, product, nodes };
  await Promise.all(ledgers.map((l) => prepareLedger(s, target, l)));
  return target;
}

/** Figure 1's ledger. */
const CPU_LEDGER = 'cpu';

export async function measureCluster(s: ClusterSettings): Promise<ClusterResult> {
  console.error(`\ncluster: the product on one redis-server, on ${PRIMARIES} cluster primaries ` +
    `and on 1 (appendfsync ${s.appendfsync}, no replicas); ${s.rounds} round(s) of ` +
    `${s.durationS} s each`);
  const stops: Stops = [];
  const t0 = performance.now();
  try {
    const ledgers = spreadLedgers(layout(PRIMARIES), LEDGERS_PER_PRIMARY);
    const [redis, three, one] = await settled([startVariant(s, stops, 'redis', [CPU_LEDGER]),
      startVariant(s, stops, 'cluster3', [CPU_LEDGER, ...ledgers]),
      startVariant(s, stops, 'cluster1', ledgers)]) as [Target, Target, Target];
    console.error(`  started, with ${2 + 2 * ledgers.length} ledgers of ${s.pool.length} ` +
      `accounts, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const t of [redis, three]) await warmUp(s, t, [CPU_LEDGER], false);
    const cpu: Record<'redis' | 'cluster3', CpuSegment[]> = { redis: [], cluster3: [] };
    for (let r = 1; r <= s.rounds; r++) {
      cpu.redis.push(await measureCpu(s, redis, CPU_LEDGER, r));
      cpu.cluster3.push(await measureCpu(s, three, CPU_LEDGER, r));
    }
    for (const t of [three, one]) await warmUp(s, t, ledgers, true);
    const spread: Record<'cluster3' | 'cluster1', SpreadSegment[]> = { cluster3: [],
      cluster1: [] };
    for (let r = 1; r <= s.rounds; r++) {
      spread.cluster3.push(await measureSpread(s, three, ledgers, r));
      spread.cluster1.push(await measureSpread(s, one, ledgers, r));
    }
    return summarise({ appendfsync: s.appendfsync, connections: s.connections,
      batchConnectionsPerLedger: BATCH_CONNECTIONS_PER_LEDGER, batchSize: s.batchSize,
      accountsPerLedger: s.pool.length, primaries: PRIMARIES, cpuLedger: CPU_LEDGER,
      ledgers: ledgers.map((name) => ({ name, slot: keySlot(`{${name}}`),
        primary: ownerOf(three.nodes, name) })) }, cpu, spread);
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}
