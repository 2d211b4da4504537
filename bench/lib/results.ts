/**
 * The shape of bench/results/*.json, and the goals it is compared against. Figures that do not
 * apply are null (hello world moves no transfers); a server that does not exist yet, or a
 * baseline this machine cannot run (PostgreSQL), is `{ available: false, reason }`.
 * test/bench.test.ts checks this shape. Fields are only ever added, so that bench/lib/compare.ts
 * can read every earlier run.
 */
import { limits } from '../../src/config/limits.js';
import type { ArchiveSection } from './archive.js';
import type { CdcSection } from './cdc.js';
import type { ClusterResult } from './cluster-report.js';
import type { HoldsResult } from './holds.js';
import type { LoadResult } from './load.js';
import type { PostgresCheck } from './postgres.js';
import type { ReplicationResult } from './replication.js';
import type { ScriptDurations } from './script-durations.js';
import { median, ratio } from './stats.js';

export const KINDS = ['hello', 'lean', 'single', 'singleTwoWorkers', 'singleNoGroup', 'batch',
  'batchAtomic'] as const;
export type Kind = (typeof KINDS)[number];

export const KIND_LABELS: Record<Kind, string> = {
  hello: '(a) Fastify hello world',
  lean: '(b) lean baseline',
  single: '(c) product POST /transfers',
  singleTwoWorkers: '(c2) product POST /transfers, LEDGER_WORKERS=2',
  singleNoGroup: '(c1) product POST /transfers, LEDGER_GROUP_COMMIT=off',
  batch: '(d) product batch, atomic:false',
  batchAtomic: '(d) product batch, atomic:true',
};

/** The figures of one segment, and their medians across rounds. */
export interface Figures {
  requestsPerS: number;
  transfersPerS: number | null;
  p50Ms: number;
  p99Ms: number;
  /** EVALSHA (and any other script command) usec from INFO commandstats ÷ transfers. */
  redisScriptUsPerTransfer: number | null;
  /** The redis-server process's CPU (INFO cpu, user + sys) ÷ transfers. */
  redisCpuUsPerTransfer: number | null;
  /** The server child's CPU (/proc) ÷ transfers. */
  serverCpuUsPerTransfer: number | null;
  /** CPU cores busy on average: the server child, redis-server, and the load generator. */
  serverCores: number;
  redisCores: number;
  loaderCores: number;
  /** The whole machine's busy cores: the rest is other processes (AOF rewrites, other work). */
  machineCores: number;
}

export const FIGURE_KEYS: ReadonlyArray<keyof Figures> = [
  'requestsPerS', 'transfersPerS', 'p50Ms', 'p99Ms', 'redisScriptUsPerTransfer',
  'redisCpuUsPerTransfer', 'serverCpuUsPerTransfer', 'serverCores', 'redisCores', 'loaderCores',
  'machineCores',
];

/** Per-transfer figures; null for hello world, which moves none. */
export const PER_TRANSFER_KEYS: ReadonlyArray<keyof Figures> = [
  'transfersPerS', 'redisScriptUsPerTransfer', 'redisCpuUsPerTransfer',
  'serverCpuUsPerTransfer',
];

/** One server's segment: the load generator's counts and the figures derived from them. */
export interface Segment extends Figures, Omit<LoadResult, 'p50Ms' | 'p99Ms'> {
  round: number;
  /** Redis rewrote its AOF meanwhile (a fork, and a child busy on one of the cores). */
  aofRewriteDuring: boolean;
}

export type KindResult =
  | { available: true; label: string; connections: number; rounds: Segment[]; median: Figures }
  | { available: false; label: string; reason: string };

export const POSTGRES_LABEL = '(p) PostgreSQL ledger';

/**
 * The PostgreSQL baseline's figures: those of Figures that apply, with the postgres processes'
 * CPU where Redis's stands for the others: the postmaster and every process it starts
 * (backends, WAL writer, checkpointer, autovacuum), summed, as INFO cpu sums Redis's threads.
 */
export interface PostgresFigures extends Pick<Figures, 'requestsPerS' | 'transfersPerS' | 'p50Ms'
  | 'p99Ms' | 'serverCpuUsPerTransfer' | 'serverCores' | 'loaderCores' | 'machineCores'> {
  postgresCpuUsPerTransfer: number | null;
  postgresCores: number;
}

export const POSTGRES_FIGURE_KEYS: ReadonlyArray<keyof PostgresFigures> = [
  'requestsPerS', 'transfersPerS', 'p50Ms', 'p99Ms', 'serverCpuUsPerTransfer',
  'postgresCpuUsPerTransfer', 'serverCores', 'postgresCores', 'loaderCores', 'machineCores',
];

export interface PostgresSegment extends PostgresFigures, Omit<LoadResult, 'p50Ms' | 'p99Ms'> {
  round: number;
}

/** (p) in one policy's rounds: PostgreSQL itself does not change between fsync policies. */
export type PostgresResult =
  | { available: true; label: string; connections: number; poolSize: number;
    rounds: PostgresSegment[]; median: PostgresFigures }
  | { available: false; label: string; reason: string };

/** The PostgreSQL the bench ran for (p), and the check of its books after its segments. */
export type PostgresRun =
  | { available: true; version: string; poolSize: number; settings: Record<string, string>;
    check: PostgresCheck }
  | { available: false; reason: string };

export interface HalfRate {
  /** Measured again right before, closed loop: the capacity of the moment. */
  maxTransfersPerS: number;
  roundsMedianTransfersPerS: number;
  targetPerS: number;
  /** autocannon overallRate: bursts at the top of every second (see load.ts). */
  autocannon: { achievedPerS: number; p50Ms: number; p99Ms: number; non2xx: number };
  /** Even arrivals, open loop, latency from each request's due time. */
  paced: { achievedPerS: number; p50Ms: number; p99Ms: number; maxMs: number; non2xx: number;
    loaderLagMaxMs: number; maxInFlight: number;
    /** CPU cores busy during the paced run, as in Figures; other = everything else. */
    serverCores: number; redisCores: number; loaderCores: number; otherCores: number };
  /** What Redis did meanwhile that stalls writes: AOF rewrites and delayed fsyncs. */
  aofRewriteDuring: boolean;
  aofDelayedFsyncs: number;
}

export interface Ratios {
  /** Median over rounds of each round's ratio, so each ratio compares neighbours in time. */
  singleOverLean: number | null;
  batchOverSingle: number | null;
  batchAtomicOverSingle: number | null;
  leanOverHello: number | null;
  /** The issue's measure of the Redis design: product single ÷ (p) transfers/s. */
  singleOverPostgres: number | null;
  /** What a second worker adds on this machine: (c2) ÷ (c). */
  twoWorkersOverOne: number | null;
  /** What group commit wins: (c) ÷ (c1), the same product with LEDGER_GROUP_COMMIT=off. */
  groupOverNoGroup: number | null;
}

export interface PolicyResult {
  appendfsync: 'always' | 'everysec';
  kinds: Record<Kind, KindResult>;
  postgres: PostgresResult;
  ratios: Ratios;
  halfRate: HalfRate | null;
  aofRewrites: number;
}

export interface StorageFigures {
  available: true;
  via: string;
  transfers: number;
  durationS: number;
  usedMemoryDeltaBytes: number;
  ramBytesPerTransfer: number | null;
  /** null when an AOF rewrite ran during the run (the file size then says nothing). */
  aofBytesPerTransfer: number | null;
}

/** The storage runs: the product's variants store exactly what (c) stores, so they are not. */
export type StorageKind = Exclude<Kind, 'hello' | 'singleTwoWorkers' | 'singleNoGroup'>;

/**
 * On a fresh Redis: first a small run of each kind, too small for Redis to rewrite its AOF
 * (under its 64 MB threshold), so the AOF's growth is exact; then a large run of the product
 * for RAM per stored transfer (its AOF figure is usually null: rewrites run by then).
 */
export interface Storage {
  appendfsync: 'always' | 'everysec';
  perKind: Record<StorageKind, StorageFigures | { available: false; reason: string }>;
  large: StorageFigures;
}

export type GoalStatus = 'met' | 'not met' | 'not available';

export interface Goal {
  goal: string;
  policy: string;
  measured: number | null;
  unit: string;
  status: GoalStatus;
}

export interface Results {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  machine: { cpuModel: string; cores: number; totalMemBytes: number; kernel: string;
    os: string };
  versions: Record<string, string>;
  git: { commit: string; dirty: boolean } | null;
  parameters: {
    durationS: number; rounds: number; warmupS: number; connections: number;
    batchConnections: number; batchSize: number; accounts: number;
    /** Absent before atomic batches were capped (BATCH_ATOMIC_TRANSFERS_MAX): batchSize. */
    atomicBatchSize?: number;
    fsyncPolicies: string[]; storageTransfers: number; probeTransfers: number; quick: boolean;
    profile: boolean; scriptRounds: number;
    productLogLevel: string; productRateLimitPerSecond: number;
    postgresPoolSize: number;
    /** Absent before holds were measured (bench/lib/holds.ts). */
    holdsOperations?: number;
    holdsSweeps?: number;
    holdsStored?: number;
    /** Absent before change data was measured (bench/lib/cdc.ts). */
    cdcBacklog?: number;
    /** Absent before the archive was measured (bench/lib/archive.ts). */
    archiveTransfers?: number;
    archiveReads?: number;
  };
  policies: Record<string, PolicyResult>;
  storage: Storage;
  postgres: PostgresRun;
  /** Each script's time inside Redis at its worst, on a Redis of its own (first policy). */
  scripts: ScriptDurations & { appendfsync: string };
  /** Holds against the single transfer; absent before they were measured. */
  holds?: HoldsResult;
  /** LEDGER_REPLICA_ACKS=1 against =0 (first policy); absent before it was measured. */
  replication?: ReplicationResult;
  /** Ledgers on Redis Cluster (bench/lib/cluster.ts); absent in runs before issue 15. */
  cluster?: ClusterResult;
  /** Change data out, publisher on against off (first policy); absent before it was measured. */
  cdc?: CdcSection;
  /** The PostgreSQL archive: memory, catch-up, on against off; absent before it was measured. */
  archive?: ArchiveSection;
  goals: Goal[];
  profiles: Array<{ file: string; top: Array<{ name: string; where: string; selfMs: number;
    percent: number }> }>;
}

/** Each figure's median across rounds. */
export function medianOf<F>(rounds: readonly F[], keys: ReadonlyArray<keyof F>): F {
  const out = {} as Record<keyof F, number | null>;
  for (const key of keys) out[key] = median(rounds.map((r) => r[key] as number | null));
  return out as unknown as F;
}

export function medianFigures(rounds: readonly Segment[]): Figures {
  return medianOf(rounds, FIGURE_KEYS);
}

type Rounds<F> = { available: true; rounds: F[] } | { available: false };

/** Median across rounds of a per-round ratio of two servers' figure. */
export function roundRatio<A, B>(a: Rounds<A>, b: Rounds<B>,
  key: keyof A & keyof B & keyof Figures): number | null {
  if (!a.available || !b.available) return null;
  return median(a.rounds.map((segment, i) => {
    const other = b.rounds[i];
    return other === undefined || other === null ? null
      : ratio(segment[key] as number | null, other[key] as number | null);
  }));
}

export function goal(goal: string, policy: string, measured: number | null | undefined,
  unit: string, meets: (value: number) => boolean): Goal {
  const value = measured ?? null;
  const status: GoalStatus = value === null || !Number.isFinite(value) ? 'not available'
    : meets(value) ? 'met' : 'not met';
  return { goal, policy, measured: value, unit, status };
}

/** The script time budgets: the slowest p95 of each budget's scripts at their worst. */
function scriptGoals(scripts: Results['scripts']): Goal[] {
  const classes = [
    ['every script but batches', 'SCRIPT_TIME_BUDGET_MS', limits.SCRIPT_TIME_BUDGET_MS,
      (s: string) => !s.startsWith('transfer-batch')],
    ['a non-atomic batch chunk', 'BATCH_CHUNK_BUDGET_MS', limits.BATCH_CHUNK_BUDGET_MS,
      (s: string) => s === 'transfer-batch chunk'],
    ['an atomic batch', 'SCRIPT_TIME_BUDGET_MS', limits.SCRIPT_TIME_BUDGET_MS,
      (s: string) => s === 'transfer-batch atomic'],
  ] as const;
  return classes.map(([what, name, budget, member]) => {
    const p95 = scripts.rows.filter((r) => member(r.script)).map((r) => r.p95Ms);
    return goal(`${what} at its worst: p95 inside Redis ≤ ${name} (${budget} ms)`,
      scripts.appendfsync, p95.length === 0 ? null : Math.max(...p95), 'ms', (v) => v <= budget);
  });
}

/**
 * Issue "Earn the Redis design": at least 4× the PostgreSQL ledger a team would otherwise
 * build, or the design does not pay for what Redis gives up (ad hoc queries, a familiar store).
 */
const POSTGRES_RATIO_GOAL = 4;
const POSTGRES_RATIO_STRETCH = 6;

/** The targets the product is built towards; reported, never enforced (the bench exits 0). */
export function evaluateGoals(policies: Record<string, PolicyResult>, storage: Storage,
  scripts: Results['scripts']): Goal[] {
  const goals: Goal[] = [];
  for (const [name, p] of Object.entries(policies)) {
    const fig = (kind: Kind) => {
      const k = p.kinds[kind];
      return k.available ? k.median : undefined;
    };
    goals.push(
      goal('product ÷ lean ≥ 0.9 (single transfers/s)', name, p.ratios.singleOverLean, '×',
        (v) => v >= 0.9),
      goal(`product ÷ PostgreSQL ≥ ${POSTGRES_RATIO_GOAL}× (single transfers/s)`, name,
        p.ratios.singleOverPostgres, '×', (v) => v >= POSTGRES_RATIO_GOAL),
      goal(`product ÷ PostgreSQL ≥ ${POSTGRES_RATIO_STRETCH}× (stretch)`, name,
        p.ratios.singleOverPostgres, '×', (v) => v >= POSTGRES_RATIO_STRETCH),
      goal('group commit wins: (c) ÷ (c1) > 1.0 (else it is turned off)', name,
        p.ratios.groupOverNoGroup, '×', (v) => v > 1),
      goal('Redis CPU ≤ 10 µs per single transfer (commandstats)', name,
        fig('single')?.redisScriptUsPerTransfer, 'µs', (v) => v <= 10),
      goal('Redis CPU ≤ 5 µs per transfer in a batch, atomic:false (commandstats)', name,
        fig('batch')?.redisScriptUsPerTransfer, 'µs', (v) => v <= 5),
      goal('Redis CPU ≤ 5 µs per transfer in a batch, atomic:true (commandstats)', name,
        fig('batchAtomic')?.redisScriptUsPerTransfer, 'µs', (v) => v <= 5),
      goal('batch ≥ 100,000 transfers/s with atomic:false', name,
        fig('batch')?.transfersPerS, 'transfers/s', (v) => v >= 100_000),
      goal('p99 < 10 ms at half max throughput (paced, even arrivals)', name,
        p.halfRate?.paced.p99Ms, 'ms', (v) => v < 10),
      goal('p99 < 10 ms at half max throughput (autocannon overallRate)', name,
        p.halfRate?.autocannon.p99Ms, 'ms', (v) => v < 10),
    );
  }
  goals.push(goal('RAM ≤ 200 B per stored transfer ' +
    `(${storage.large.transfers.toLocaleString('en-US')} via ${storage.large.via})`,
  storage.appendfsync, storage.large.ramBytesPerTransfer, 'B', (v) => v <= 200));
  goals.push(...scriptGoals(scripts));
  return goals;
}
