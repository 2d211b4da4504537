/**
 * Replica acknowledgements (LEDGER_REPLICA_ACKS, issue 14): what waiting for a replica costs a
 * single transfer. One primary and one replica of the bench's own (AOF and fsync policy as for
 * (c): the replica is configured as the primary is, as deploy/redis/ha/ha.conf has it), and
 * the product twice against that same pair, LEDGER_REPLICA_ACKS=0 and =1, so that the only
 * difference is the WAIT: the replica applies the same stream in both. Rounds interleave the
 * two and medians are taken, as for (c); then p99 at half of each variant's own maximum,
 * measured just before (paced, as run.ts's halfRate). The product's /metrics say how many
 * writes each WAIT covered (its group commit) and how long the WAITs took.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { type LoadResult, paced, runLoad, transferBody } from './load.js';
import { machineBusySeconds, type Server, track, treeCpuSeconds } from './processes.js';
import { snapshot, waitForRewrite } from './redis-stats.js';
import { medianOf } from './results.js';
import { median, ratio } from './stats.js';

export const REPLICATION_VARIANTS = ['acks0', 'acks1'] as const;
export type ReplicationVariant = (typeof REPLICATION_VARIANTS)[number];
/** The product's environment in each variant (the rest is (c)'s). */
export const REPLICATION_VARIANT_ENV: Record<ReplicationVariant, Record<string, string>> = {
  acks0: { LEDGER_REPLICA_ACKS: '0' },
  acks1: { LEDGER_REPLICA_ACKS: '1' },
};
/** A full sync at once, not after Redis's 5 s wait for more replicas (as ha.conf). */
const PRIMARY_ARGS = ['--repl-diskless-sync-delay', '0'];
/** The first sync of an empty primary takes well under a second; this is a liveness bound. */
const LINK_UP_TIMEOUT_MS = 30_000;

export interface ReplicationSettings {
  appendfsync: 'always' | 'everysec';
  durationS: number;
  rounds: number;
  warmupS: number;
  connections: number;
  pool: readonly string[];
  /** The product's content type and API key (with the `metrics` scope). */
  headers: Record<string, string>;
  /** run.ts's startProduct with the variant's environment; stopped here. */
  startProduct: (variant: ReplicationVariant, redisUrl: string, dir: string) => Promise<Server>;
  createAccounts: (product: Server, ids: readonly string[]) => Promise<void>;
  /** Removed by the caller. */
  dir: string;
}

/** From the product's /metrics, over one run: its WAITs and the writes they covered. */
export interface AckFigures {
  writes: number;
  waits: number;
  writesPerWait: number | null;
  waitMeanMs: number | null;
  /** Interpolated within the histogram's bucket, as Prometheus's histogram_quantile. */
  waitP50Ms: number | null;
  /** Writes answered 503 for want of an acknowledgement. */
  failures: number;
}

export interface ReplicationFigures {
  transfersPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU cores busy on average, as run.ts's Figures. */
  serverCores: number;
  primaryCores: number;
  replicaCores: number;
  loaderCores: number;
  machineCores: number;
}

const FIGURE_KEYS: ReadonlyArray<keyof ReplicationFigures> = ['transfersPerS', 'p50Ms',
  'p99Ms', 'serverCores', 'primaryCores', 'replicaCores', 'loaderCores', 'machineCores'];

export interface ReplicationSegment extends ReplicationFigures,
  Pick<LoadResult, 'durationS' | 'transfers' | 'non2xx' | 'errors' | 'statusCodes'> {
  round: number;
  /** Either Redis rewrote its AOF meanwhile (a fork, and a child busy on a core). */
  aofRewriteDuring: boolean;
  /** The replica's link to the primary was up when the segment ended. */
  linkUp: boolean;
  acks: AckFigures | null;
}

export interface ReplicationHalfRate {
  maxTransfersPerS: number;
  targetPerS: number;
  achievedPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  non2xx: number;
  loaderLagMaxMs: number;
  maxInFlight: number;
  acks: AckFigures | null;
}

export interface ReplicationVariantResult {
  env: Record<string, string>;
  rounds: ReplicationSegment[];
  median: ReplicationFigures;
  halfRate: ReplicationHalfRate | null;
}

export interface ReplicationResult {
  appendfsync: string;
  connections: number;
  /** From the replica's start to master_link_status:up. */
  linkUpS: number;
  variants: Record<ReplicationVariant, ReplicationVariantResult>;
  /** Median over rounds of each round's acks1 ÷ acks0 transfers/s. */
  acksOverNoAcks: number | null;
  /** Every acks1 round together: sums, means over every WAIT, the median of rounds' p50s. */
  acks: AckFigures | null;
}

interface Pair { primary: EmbeddedRedis; replica: EmbeddedRedis; stats: Redis; replicaStats: Redis }

// ---------------------------------------------------------------------------------------------
// The product's acknowledgement metrics

interface AckCounters { writes: number; waits: number; waitSeconds: number; failures: number;
  /** Cumulative counts by upper bound (s), as exposed; +Inf last. */
  buckets: Array<[number, number]> }

async function ackCounters(product: Server, authorization: string): Promise<AckCounters> {
  const response = await fetch(`${product.base}/metrics`, { headers: { authorization } });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`replication bench: GET /metrics answered ${response.status}: ` +
      text.slice(0, 300));
  }
  const value = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return match === null ? 0 : Number(match[1]);
  };
  const buckets = [...text.matchAll(
    /^ledger_replica_ack_wait_seconds_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)$/gm)]
    .map(([, le, count]) => [le === '+Inf' ? Infinity : Number(le), Number(count)] as
      [number, number]);
  return { writes: value('ledger_replica_ack_writes_total'),
    waits: value('ledger_replica_ack_wait_seconds_count'),
    waitSeconds: value('ledger_replica_ack_wait_seconds_sum'),
    failures: value('ledger_replica_ack_failures_total'), buckets };
}

/** The median of the WAITs between two readings of the histogram. */
function bucketMedianMs(before: AckCounters, after: AckCounters): number | null {
  const waits = after.waits - before.waits;
  if (waits <= 0) return null;
  let lower = 0;
  let below = 0;
  for (const [le, count] of after.buckets) {
    const within = count - (before.buckets.find(([b]) => b === le)?.[1] ?? 0);
    if (within >= waits / 2) {
      if (!Number.isFinite(le)) return lower * 1000; // above the last bound: say that bound
      return (lower + (le - lower) * (waits / 2 - below) / (within - below)) * 1000;
    }
    [lower, below] = [le, within];
  }
  return null;
}

function ackFigures(before: AckCounters, after: AckCounters): AckFigures {
  const writes = after.writes - before.writes;
  const waits = after.waits - before.waits;
  return { writes, waits, writesPerWait: ratio(writes, waits),
    waitMeanMs: waits > 0 ? (after.waitSeconds - before.waitSeconds) * 1000 / waits : null,
    waitP50Ms: bucketMedianMs(before, after), failures: after.failures - before.failures };
}

// ---------------------------------------------------------------------------------------------
// The pair, the products, the runs

async function linkUp(replica: Redis): Promise<boolean> {
  return parseInfo(await replica.info('replication')).get('master_link_status') === 'up';
}

async function startPair(s: ReplicationSettings): Promise<Pair & { linkUpS: number }> {
  const start = async (name: string, extraArgs: string[]) => {
    const redis = await startEmbeddedRedis({ dataDir: join(s.dir, name),
      appendfsync: s.appendfsync, extraArgs });
    track(redis.child);
    if (redis.port === 6379) throw new Error('the bench must never use the shared Redis on 6379');
    return redis;
  };
  const primary = await start('primary', PRIMARY_ARGS);
  const t0 = performance.now();
  const replica = await start('replica', ['--replicaof', '127.0.0.1', String(primary.port)])
    .catch(async (error: unknown) => {
      await primary.stop();
      throw error;
    });
  const pair = { primary, replica, stats: new Redis(primary.url, { maxRetriesPerRequest: 1 }),
    replicaStats: new Redis(replica.url, { maxRetriesPerRequest: 1 }) };
  const deadline = Date.now() + LINK_UP_TIMEOUT_MS;
  while (!(await linkUp(pair.replicaStats))) {
    if (Date.now() > deadline) {
      await stopPair(pair);
      throw new Error(`replication bench: the replica's link was not up within ` +
        `${LINK_UP_TIMEOUT_MS} ms; see ${replica.dataDir}/redis.log`);
    }
    await sleep(50);
  }
  return { ...pair, linkUpS: (performance.now() - t0) / 1000 };
}

async function stopPair(pair: Pair): Promise<void> {
  pair.stats.disconnect();
  pair.replicaStats.disconnect();
  await pair.replica.stop();
  await pair.primary.stop();
}

const transfersSpec = (s: ReplicationSettings, product: Server, durationS: number) => ({
  url: `${product.base}/transfers`, method: 'POST' as const, headers: s.headers, durationS,
  connections: s.connections, expectStatus: 201, body: transferBody(s.pool) });

async function measure(s: ReplicationSettings, pair: Pair, product: Server,
  variant: ReplicationVariant, round: number): Promise<ReplicationSegment> {
  const auth = s.headers.authorization ?? '';
  await Promise.all([waitForRewrite(pair.stats), waitForRewrite(pair.replicaStats)]);
  const [p0, r0, a0] = await Promise.all([snapshot(pair.stats), snapshot(pair.replicaStats),
    ackCounters(product, auth)]);
  const [server0, machine0, loader0, t0] = [treeCpuSeconds(product.pid), machineBusySeconds(),
    process.cpuUsage(), performance.now()];
  const load = await runLoad(transfersSpec(s, product, s.durationS));
  const wallS = (performance.now() - t0) / 1000;
  const loader = process.cpuUsage(loader0);
  const [serverS, machineS] = [treeCpuSeconds(product.pid) - server0,
    machineBusySeconds() - machine0];
  const [p1, r1, a1] = await Promise.all([snapshot(pair.stats), snapshot(pair.replicaStats),
    ackCounters(product, auth)]);
  const rewrote = [[p0, p1], [r0, r1]].some(([b, a]) => b !== undefined && a !== undefined
    && (b.aofRewriting || a.aofRewriting || a.aofRewrites !== b.aofRewrites));
  const segment: ReplicationSegment = { round, durationS: load.durationS,
    transfers: load.transfers, non2xx: load.non2xx, errors: load.errors,
    statusCodes: load.statusCodes, transfersPerS: load.transfers / load.durationS,
    p50Ms: load.p50Ms, p99Ms: load.p99Ms, serverCores: serverS / wallS,
    primaryCores: (p1.cpuSeconds - p0.cpuSeconds) / wallS,
    replicaCores: (r1.cpuSeconds - r0.cpuSeconds) / wallS,
    loaderCores: (loader.user + loader.system) / 1e6 / wallS, machineCores: machineS / wallS,
    aofRewriteDuring: rewrote, linkUp: await linkUp(pair.replicaStats),
    acks: variant === 'acks1' ? ackFigures(a0, a1) : null };
  const bad = load.non2xx + load.errors;
  console.error(`  round ${round} ${variant} ${Math.round(segment.transfersPerS)
    .toLocaleString('en-US').padStart(8)} transfers/s p50 ${load.p50Ms.toFixed(2)} ms p99 ` +
    `${load.p99Ms.toFixed(2)} ms` + (segment.acks === null ? '' : `, ` +
      `${segment.acks.writesPerWait?.toFixed(1) ?? '—'} writes per WAIT`) +
    (bad > 0 ? `  (${load.non2xx} non-2xx, ${load.errors} errors: ` +
      `${JSON.stringify(load.statusCodes)})` : '') + (rewrote ? '  [AOF rewrite]' : '') +
    (segment.linkUp ? '' : '  [replica link down]'));
  return segment;
}

/** p99 at half the variant's maximum, measured again just before (as run.ts's halfRate). */
async function halfRate(s: ReplicationSettings, pair: Pair, product: Server,
  variant: ReplicationVariant): Promise<ReplicationHalfRate | null> {
  await waitForRewrite(pair.stats);
  const max = await runLoad(transfersSpec(s, product, s.durationS));
  const maxPerS = max.transfers / max.durationS;
  if (maxPerS <= 0) return null;
  const target = maxPerS / 2;
  await waitForRewrite(pair.stats);
  const a0 = await ackCounters(product, s.headers.authorization ?? '');
  const even = await paced({ url: `${product.base}/transfers`, headers: s.headers,
    body: transferBody(s.pool), expectStatus: 201, ratePerS: target, durationS: s.durationS,
    connections: s.connections, warmupS: Math.min(1, s.durationS / 2) });
  const a1 = await ackCounters(product, s.headers.authorization ?? '');
  console.error(`  ${variant} half max ${Math.round(target)}/s: paced p99 ` +
    `${even.p99Ms.toFixed(2)} ms (generator lag max ${even.loaderLagMaxMs.toFixed(1)} ms)`);
  return { maxTransfersPerS: maxPerS, targetPerS: target, achievedPerS: even.achievedPerS,
    p50Ms: even.p50Ms, p99Ms: even.p99Ms, maxMs: even.maxMs, non2xx: even.non2xx + even.errors,
    loaderLagMaxMs: even.loaderLagMaxMs, maxInFlight: even.maxInFlight,
    acks: variant === 'acks1' ? ackFigures(a0, a1) : null };
}

/** Every acks1 round's WAITs together (sums, so a short round weighs less). */
function acksOverall(segments: readonly ReplicationSegment[]): AckFigures | null {
  const acks = segments.flatMap((x) => (x.acks === null ? [] : [x.acks]));
  if (acks.length === 0) return null;
  const sum = (key: 'writes' | 'waits' | 'failures') => acks.reduce((t, a) => t + a[key], 0);
  const waits = sum('waits');
  const meanMs = acks.reduce((t, a) => t + (a.waitMeanMs ?? 0) * a.waits, 0);
  return { writes: sum('writes'), waits, writesPerWait: ratio(sum('writes'), waits),
    waitMeanMs: waits > 0 ? meanMs / waits : null,
    waitP50Ms: median(acks.map((a) => a.waitP50Ms)), failures: sum('failures') };
}

export async function measureReplication(s: ReplicationSettings): Promise<ReplicationResult> {
  console.error(`\nreplication: a primary and a replica of their own (appendfsync ` +
    `${s.appendfsync}), the product with LEDGER_REPLICA_ACKS=0 and =1 against them; ` +
    `${s.rounds} round(s) of ${s.durationS} s each`);
  const pair = await startPair(s);
  const products: Partial<Record<ReplicationVariant, Server>> = {};
  try {
    // Settled, not all: a variant that started must be stopped even if the other failed.
    const started = await Promise.allSettled(REPLICATION_VARIANTS.map(async (v) => {
      products[v] = await s.startProduct(v, pair.primary.url, s.dir);
    }));
    for (const x of started) if (x.status === 'rejected') throw x.reason;
    const product = (v: ReplicationVariant) => products[v] as Server;
    await s.createAccounts(product('acks0'), s.pool);
    for (const v of REPLICATION_VARIANTS) {
      if (s.warmupS > 0) await runLoad(transfersSpec(s, product(v), s.warmupS));
    }
    const rounds: Record<ReplicationVariant, ReplicationSegment[]> = { acks0: [], acks1: [] };
    for (let r = 1; r <= s.rounds; r++) {
      for (const v of REPLICATION_VARIANTS) {
        rounds[v].push(await measure(s, pair, product(v), v, r));
      }
    }
    const variants = {} as Record<ReplicationVariant, ReplicationVariantResult>;
    for (const v of REPLICATION_VARIANTS) {
      variants[v] = { env: REPLICATION_VARIANT_ENV[v], rounds: rounds[v],
        median: medianOf(rounds[v], FIGURE_KEYS),
        halfRate: await halfRate(s, pair, product(v), v) };
    }
    return { appendfsync: s.appendfsync, connections: s.connections, linkUpS: pair.linkUpS,
      variants, acksOverNoAcks: median(rounds.acks1.map((x, i) =>
        ratio(x.transfersPerS, rounds.acks0[i]?.transfersPerS))),
      acks: acksOverall(rounds.acks1) };
  } finally {
    await Promise.all(Object.values(products).map((p) => p.stop()));
    await stopPair(pair);
  }
}
