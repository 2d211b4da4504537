/**
 * `npm run bench`: throughput, latency, Redis CPU, RAM and AOF per transfer of the product,
 * each as a ratio against baselines measured in the same run (timings on this shared machine
 * swing ~1.5× from one minute to the next, so only same-run ratios mean anything):
 *   (a) Fastify hello world, (b) a lean Fastify + one EVALSHA transfer, (c) the product's
 *   POST /transfers, (p) the PostgreSQL ledger a team would otherwise build (one PL/pgSQL call
 *   per transfer, durable defaults: bench/lib/postgres-baseline.ts), (d) the product's
 *   POST /transfers/batch (when it exists).
 * Then, on a Redis of its own, each Lua script at its worst: its time inside Redis against
 * its budget (bench/lib/script-durations.ts; the suite bounds its commands, keys and bytes).
 * Then holds against the single transfer, on Redis instances of their own (bench/lib/holds.ts):
 * Redis time of a hold and its post, a sweeper call of 100 expired holds, RAM per hold.
 * Then replica acknowledgements (bench/lib/replication.ts): the product with
 * LEDGER_REPLICA_ACKS=1 against =0, both on one primary and replica of the bench's own, with
 * (c)'s durations, rounds, warm-up and connections, under the first fsync policy.
 * Then ledgers on Redis Cluster (bench/lib/cluster.ts), under the first fsync policy: Redis CPU
 * per single transfer on a cluster of 3 primaries against one redis-server, and batches on 6
 * ledgers spread over 3 primaries against the same on 1 primary.
 * Then change data out (bench/lib/cdc.ts), under the first fsync policy, with a RabbitMQ of its
 * own (test/helpers/rabbitmq.ts; not available, and left out, where none is installed): the
 * product with LEDGER_CDC_AMQP_URL against without, each on a Redis of its own, (c)'s single
 * transfers and (d)'s batches in interleaved rounds (which goes first alternates) with (c)'s
 * durations, rounds, warm-up and connections, a consumer in the bench draining a queue bound
 * `#`, and how many records were not yet published at the end of each segment (goal: single
 * transfers with the publisher ≥ 0.9× without); then how fast the publisher works through a
 * backlog of BENCH_CDC_BACKLOG records, committed to a ledger of their own while the bench held
 * its publisher lock (goal: at least the batch endpoint's peak, committed transfers/s).
 * Then the PostgreSQL archive (bench/lib/archive.ts), under the first fsync policy, with a
 * PostgreSQL of its own (not available, and left out, where none is installed): single
 * transfers with LEDGER_ARCHIVE_URL against without, interleaved rounds (goal ≥ 0.9×); Redis
 * memory per transfer of BENCH_ARCHIVE_TRANSFERS transfers with UUID ids before and after they
 * are archived and freed (goal ≤ 48 B archived); the rate at which the archiver copies and
 * frees them, against single transfers/s (goal ≥ 3×); then that ledger checked: npm run audit,
 * every id in the index and in PostgreSQL, BENCH_ARCHIVE_READS of them read back.
 * Each server is a child process; the load generator (autocannon) runs here. Per fsync policy
 * the bench starts its own redis-server as the product's embedded one is started, interleaves
 * a, b, c, p, d in every round, and reports medians; its own PostgreSQL runs for the whole run
 * (not available, and left out, where no PostgreSQL is installed). It never fails on speed:
 * goals are printed as met or not met, and the exit code is 0 unless something broke (the
 * PostgreSQL baseline's books not balancing is something broken: its ratio would be wrong).
 *
 * Arguments: --compare <earlier results JSON> (or BENCH_COMPARE) adds each figure's change
 * against that run to latest.md; --compare E --against L compares two runs and runs nothing
 * (bench/lib/compare.ts).
 *
 * Knobs (environment):
 *   BENCH_DURATION_S (8) seconds per segment    BENCH_ROUNDS (3)       BENCH_WARMUP_S (2)
 *   BENCH_FSYNC (always,everysec)               BENCH_CONNECTIONS (100) for a, b, c
 *   BENCH_BATCH_CONNECTIONS (4)                 BENCH_BATCH_SIZE (1000) transfers per batch
 *   BENCH_ACCOUNTS (1000)                       BENCH_STORAGE_TRANSFERS (200000)
 *   BENCH_PROBE_TRANSFERS (10000) per kind for AOF bytes per transfer
 *   BENCH_SCRIPT_ROUNDS (60) rounds of every script at its worst, the first 5 cold
 *   BENCH_RESULTS_DIR (bench/results)           BENCH_PROFILE=1: product under --cpu-prof
 *   BENCH_POSTGRES_POOL (32) connections of the PostgreSQL baseline's pool
 *   BENCH_HOLDS_OPERATIONS (5000) transfers, holds and posts per round (BENCH_ROUNDS)
 *   BENCH_HOLDS_SWEEPS (30) sweeper calls   BENCH_HOLDS_STORED (20000) per RAM run of holds
 *   BENCH_CDC_BACKLOG (100000) records the change-data publisher catches up on
 *   BENCH_ARCHIVE_TRANSFERS (500000) transfers archived for the memory figure and the catch-up
 *   BENCH_ARCHIVE_READS (10000) of them read back   BENCH_ARCHIVE_AUDIT (1): 0 skips the audit
 *   BENCH_ARCHIVE_YIELD_S: the hot path's archiver's LEDGER_ARCHIVE_YIELD_S (its default: it
 *   waits, so a round measures a burst; 0: it copies at once, as under a load that never eases)
 *   BENCH_QUICK=1: 1 s × 1 round, one policy, 5000 stored transfers, 3 script rounds, holds
 *   200 / 3 / 1000, 100 accounts per ledger of the cluster, change-data and archive sections, a
 *   change-data backlog of 5000, 20000 transfers archived and 1000 read back (a smoke run: its
 *   figures mean nothing)
 *   BENCH_ONLY=cluster, =cdc or =archive: that section alone; its JSON (<time>-<section>.json,
 *   not comparable) and markdown are written and printed, latest.md is left as it is. With
 *   BENCH_PROFILE=1 the change-data and archive sections profile their products and print
 *   their top self time, and that of the publisher's code (src/cdc, amqplib) or the archiver's
 *   (src/archive, pg). The issue's "done when" run: BENCH_ARCHIVE_TRANSFERS=1000000
 *   BENCH_ONLY=archive npm run bench
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type as osType } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/env.js';
import { limits } from '../src/config/limits.js';
import { type EmbeddedRedis, freePort, startEmbeddedRedis } from '../src/redis/embedded.js';
import { compareArgs, compareMarkdown, loadResults } from './lib/compare.js';
import { accountPool, batchBody, type LoadSpec, paced, runLoad, transferBody,
  transferItem } from './lib/load.js';
import { finishPostgresBaseline, loadPostgres, type MaybeBaseline, measurePostgres,
  postgresLoadSpec, postgresResult, startPostgresBaseline,
  stopPostgresBaseline } from './lib/postgres-baseline.js';
import { cpuSeconds, installCleanup, machineBusySeconds, makeWorkDir, reapStaleRuns, removeDir,
  treeCpuSeconds,
  ROOT, type Server, startServer, track } from './lib/processes.js';
import { type HoldsResult, measureHolds, sweepWorst } from './lib/holds.js';
import { holdsGoals } from './lib/holds-report.js';
import { measureReplication, REPLICATION_VARIANT_ENV, type ReplicationResult,
  type ReplicationVariant } from './lib/replication.js';
import { replicationGoals } from './lib/replication-report.js';
import { CLUSTER_VARIANT_ENV, type ClusterVariant, measureCluster,
  type RedisEnv } from './lib/cluster.js';
import { clusterMarkdown, type ClusterResult } from './lib/cluster-report.js';
import { CDC_VARIANT_ENV, type CdcSection, type CdcVariant, measureCdc } from './lib/cdc.js';
import { cdcGoals, cdcMarkdown } from './lib/cdc-report.js';
import { ARCHIVE_VARIANT_ENV, type ArchiveSection, type ArchiveVariant,
  measureArchive } from './lib/archive.js';
import { archiveGoals, archiveMarkdown } from './lib/archive-report.js';
import { formatTopSelfTime, topSelfTime } from './lib/profile.js';
import { markdown } from './lib/report.js';
import { formatScriptDurations, scriptDurations } from './lib/script-durations.js';
import { snapshot, redisServerVersion, waitForRewrite } from './lib/redis-stats.js';
import { evaluateGoals, type Goal, type HalfRate, type Kind, KIND_LABELS, type KindResult, KINDS,
  medianFigures, type PolicyResult, type PostgresSegment, type Results, roundRatio,
  type Segment, type Storage, type StorageFigures } from './lib/results.js';

type Policy = 'always' | 'everysec';

// ---------------------------------------------------------------------------------------------
// Parameters

function numberEnv(name: string, fallback: number, integer: boolean): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`${name}=${raw} must be a positive ${integer ? 'integer' : 'number'}`);
  }
  return value;
}

/** The product's own defaults, read from its configuration code rather than copied here. */
const PRODUCT_DEFAULTS = loadConfig({});
/** The default per-key rate (2000/s) would answer 429 to a benchmark; its check still runs. */
const RATE_LIMIT_PER_SECOND = 1_000_000_000;

function parameters() {
  const quick = process.env.BENCH_QUICK === '1';
  const policies = (process.env.BENCH_FSYNC
    ?? (quick ? PRODUCT_DEFAULTS.appendfsync : 'always,everysec'))
    .split(',').map((p) => p.trim()).filter(Boolean);
  for (const p of policies) {
    if (p !== 'always' && p !== 'everysec') {
      throw new Error(`BENCH_FSYNC: "${p}" is not always or everysec`);
    }
  }
  if (policies.length === 0) throw new Error('BENCH_FSYNC names no policy');
  // Two at least: a transfer needs two different accounts.
  const accounts = Math.max(2, numberEnv('BENCH_ACCOUNTS', 1000, true));
  const only = process.env.BENCH_ONLY ?? '';
  if (only !== '' && only !== 'cluster' && only !== 'cdc' && only !== 'archive') {
    throw new Error(`BENCH_ONLY: "${only}" is none of cluster, cdc and archive`);
  }
  const archiveAudit = process.env.BENCH_ARCHIVE_AUDIT ?? '1';
  const archiveYieldS = process.env.BENCH_ARCHIVE_YIELD_S;
  if (archiveYieldS !== undefined && archiveYieldS !== '' && !/^[0-9]+$/.test(archiveYieldS)) {
    throw new Error(`BENCH_ARCHIVE_YIELD_S=${archiveYieldS} must be a whole number of seconds`);
  }
  if (archiveAudit !== '0' && archiveAudit !== '1') {
    throw new Error(`BENCH_ARCHIVE_AUDIT=${archiveAudit} must be 0 or 1`);
  }
  return {
    quick,
    only,
    profile: process.env.BENCH_PROFILE === '1',
    durationS: numberEnv('BENCH_DURATION_S', quick ? 1 : 8, false),
    rounds: numberEnv('BENCH_ROUNDS', quick ? 1 : 3, true),
    warmupS: numberEnv('BENCH_WARMUP_S', quick ? 0.5 : 2, false),
    connections: numberEnv('BENCH_CONNECTIONS', 100, true),
    batchConnections: numberEnv('BENCH_BATCH_CONNECTIONS', 4, true),
    batchSize: numberEnv('BENCH_BATCH_SIZE', 1000, true),
    // An atomic batch is one script, capped so that it fits the script budget.
    atomicBatchSize: Math.min(numberEnv('BENCH_BATCH_SIZE', 1000, true),
      limits.BATCH_ATOMIC_TRANSFERS_MAX),
    accounts,
    storageTransfers: numberEnv('BENCH_STORAGE_TRANSFERS', quick ? 5000 : 200_000, true),
    // Per kind, before the large run: small enough that Redis cannot rewrite its AOF meanwhile
    // (its first automatic rewrite waits for 64 MB; a product transfer is ~650 B of AOF).
    probeTransfers: numberEnv('BENCH_PROBE_TRANSFERS', quick ? 2000 : 10_000, true),
    scriptRounds: numberEnv('BENCH_SCRIPT_ROUNDS', quick ? 3 : 60, true),
    // The product's concurrency is its 100 HTTP connections funnelled into one pipelined Redis
    // connection; a PostgreSQL transaction holds its connection for a round trip and a WAL
    // flush, so the pool must be wide enough for commits to share flushes (group commit) yet
    // not so wide that 2 cores thrash between backends. On this 2-core machine (5 s each,
    // twice), 32 gave the most transfers/s of 8, 16, 32 and 64; 64 the fewest.
    postgresPoolSize: numberEnv('BENCH_POSTGRES_POOL', 32, true),
    holdsOperations: numberEnv('BENCH_HOLDS_OPERATIONS', quick ? 200 : 5000, true),
    holdsSweeps: numberEnv('BENCH_HOLDS_SWEEPS', quick ? 3 : 30, true),
    // Equal counts of each kind; 20,000 keeps the four runs to 15-20 s on this machine.
    holdsStored: numberEnv('BENCH_HOLDS_STORED', quick ? 1000 : 20_000, true),
    // The cluster section fills 14 ledgers: 1000 accounts in each take ~8 s to create here.
    clusterAccounts: quick ? Math.min(100, accounts) : accounts,
    // The change-data section fills 3 ledgers (the backlog's too).
    cdcAccounts: quick ? Math.min(100, accounts) : accounts,
    // A few seconds of publishing at the rates measured here (the catch-up's rate is the goal's).
    cdcBacklog: numberEnv('BENCH_CDC_BACKLOG', quick ? 5000 : 100_000, true),
    // Accounts of the archive section's ledgers, the hot path's and the memory ledger's.
    archiveAccounts: quick ? Math.min(100, accounts) : accounts,
    // The issue's memory goal is stated over 500,000 (bench/lib/archive-report.ts).
    archiveTransfers: numberEnv('BENCH_ARCHIVE_TRANSFERS', quick ? 20_000 : 500_000, true),
    archiveReads: numberEnv('BENCH_ARCHIVE_READS', quick ? 1000 : 10_000, true),
    archiveAudit: archiveAudit === '1',
    archiveYieldS: archiveYieldS === undefined || archiveYieldS === '' ? undefined
      : Number(archiveYieldS),
    policies: [...new Set(policies)] as Policy[],
    resultsDir: resolve(process.env.BENCH_RESULTS_DIR ?? join(ROOT, 'bench/results')),
  };
}

type Params = ReturnType<typeof parameters>;

// ---------------------------------------------------------------------------------------------
// Servers

const SECRET = `bench-${randomBytes(24).toString('base64url')}`;
// `metrics`: the replica acks and change-data sections read the product's /metrics; `admin`: the
// cluster section creates its ledgers (POST /ledgers). Scopes cost nothing per request.
const API_KEYS = `bench:write+metrics+admin:${createHash('sha256').update(SECRET).digest('hex')}`;
const JSON_AUTH = { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` };

/** The caller's environment minus anything that would configure the product differently. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(LEDGER_|REDIS_)/.test(key) && !['PORT', 'HOST', 'LOG_LEVEL'].includes(key)) {
      env[key] = value;
    }
  }
  return env;
}

/**
 * The product's variants: (c) as configured by default, (c2) two workers, (c1) no grouping;
 * with replica acks off and on (bench/lib/replication.ts); on Redis Cluster (bench/lib/cluster.ts);
 * publishing change data or not (bench/lib/cdc.ts); archiving to PostgreSQL or not
 * (bench/lib/archive.ts).
 */
type Variant = 'default' | 'twoWorkers' | 'noGroup' | ReplicationVariant | ClusterVariant
  | CdcVariant | ArchiveVariant;
const VARIANT_ENV: Record<Variant, Record<string, string>> = {
  default: {},
  twoWorkers: { LEDGER_WORKERS: '2' },
  noGroup: { LEDGER_GROUP_COMMIT: 'off' },
  ...REPLICATION_VARIANT_ENV,
  ...CLUSTER_VARIANT_ENV,
  ...CDC_VARIANT_ENV,
  ...ARCHIVE_VARIANT_ENV,
};

/**
 * `redis`: REDIS_URL, or the environment that names a Redis Cluster's nodes instead; `env`:
 * what only the run knows (the change-data section's broker).
 */
async function startProduct(policy: Policy, redis: string | RedisEnv, dir: string,
  profileDir?: string, variant: Variant = 'default',
  env: Record<string, string> = {}): Promise<Server> {
  return startServer({
    name: `product ${variant} (${policy})`,
    script: join(ROOT, 'src/server.ts'),
    port: await freePort(),
    env: { ...cleanEnv(), ...(typeof redis === 'string' ? { REDIS_URL: redis } : redis),
      LEDGER_API_KEYS: API_KEYS,
      LOG_LEVEL: PRODUCT_DEFAULTS.logLevel, LEDGER_APPENDFSYNC: policy,
      LEDGER_RATE_LIMIT_PER_SECOND: String(RATE_LIMIT_PER_SECOND), ...VARIANT_ENV[variant],
      ...env },
    readyPath: '/readyz',
    logFile: join(dir, `product-${variant}-${policy}.log`),
    // No --cpu-prof-name: tsx's module-hooks thread writes a profile too, and one name for
    // both would let the hooks thread's overwrite the main thread's. Node's default names
    // carry the thread id; the main thread's is 0.
    nodeFlags: profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir],
  });
}

async function startBaseline(name: 'hello' | 'lean', redisUrl: string,
  dir: string): Promise<Server> {
  return startServer({
    name,
    script: join(ROOT, `bench/servers/${name}.ts`),
    port: await freePort(),
    env: { ...cleanEnv(), REDIS_URL: redisUrl },
    readyPath: name === 'hello' ? '/' : '/healthz',
    logFile: join(dir, `${name}.log`),
  });
}

async function startRedis(policy: Policy, dir: string): Promise<EmbeddedRedis> {
  const redis = await startEmbeddedRedis({ dataDir: join(dir, `redis-${policy}`),
    appendfsync: policy });
  track(redis.child);
  if (redis.port === 6379) throw new Error('the bench must never use the shared Redis on 6379');
  return redis;
}

async function createAccounts(product: Server, ids: readonly string[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++] as string;
      const response = await fetch(`${product.base}/accounts`, {
        method: 'POST', headers: JSON_AUTH,
        body: JSON.stringify({ id, currency: 'USD', overdraftLimit: 'unlimited' }),
      });
      const text = await response.text();
      if (response.status !== 201) {
        throw new Error(`POST /accounts answered ${response.status}: ${text.slice(0, 300)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/** The batch endpoint is being built: absent (404) or not answering as specified is "n/a". */
async function probeBatch(product: Server, pool: readonly string[]): Promise<string | null> {
  const response = await fetch(`${product.base}/transfers/batch`, {
    method: 'POST', headers: JSON_AUTH,
    body: JSON.stringify({ transfers: [transferItem(pool)], atomic: false }),
  });
  const text = await response.text();
  if (response.status !== 200) {
    return `not available (POST /transfers/batch answered ${response.status})`;
  }
  try {
    if (Array.isArray((JSON.parse(text) as { results?: unknown }).results)) return null;
  } catch {
    // not JSON: said below
  }
  return 'not available (POST /transfers/batch answered 200 without a results array)';
}

// ---------------------------------------------------------------------------------------------
// Segments

interface Bench {
  params: Params;
  stats: Redis;
  pool: string[];
  hello: Server;
  lean: Server;
  product: Server;
  /** (c2) and (c1): the product with LEDGER_WORKERS=2, and with LEDGER_GROUP_COMMIT=off. */
  twoWorkers: Server;
  noGroup: Server;
  pg: MaybeBaseline;
}

function loadSpec(bench: Bench, kind: Kind, durationS: number): LoadSpec {
  const { params, pool } = bench;
  const common = { method: 'POST' as const, headers: JSON_AUTH, durationS };
  switch (kind) {
    case 'hello':
      return { url: `${bench.hello.base}/`, method: 'GET', headers: {}, durationS,
        connections: params.connections, expectStatus: 200 };
    case 'lean':
      return { ...common, url: `${bench.lean.base}/transfers`, connections: params.connections,
        expectStatus: 201, body: transferBody(pool) };
    case 'single':
    case 'singleTwoWorkers':
    case 'singleNoGroup':
      return { ...common, url: `${serverOf(bench, kind).base}/transfers`,
        connections: params.connections, expectStatus: 201, body: transferBody(pool) };
    case 'batch':
    case 'batchAtomic':
      return { ...common, url: `${bench.product.base}/transfers/batch`,
        connections: params.batchConnections, expectStatus: 200, countItems: true,
        body: kind === 'batch' ? batchBody(pool, params.batchSize, false)
          : batchBody(pool, params.atomicBatchSize, true) };
  }
}

function serverOf(bench: Bench, kind: Kind): Server {
  if (kind === 'singleTwoWorkers') return bench.twoWorkers;
  if (kind === 'singleNoGroup') return bench.noGroup;
  return kind === 'hello' ? bench.hello : kind === 'lean' ? bench.lean : bench.product;
}

async function measure(bench: Bench, kind: Kind, round: number): Promise<Segment> {
  const { stats } = bench;
  const server = serverOf(bench, kind);
  await waitForRewrite(stats);
  await stats.config('RESETSTAT');
  const before = await snapshot(stats);
  // The process tree: with LEDGER_WORKERS the work is in the primary's children.
  const serverCpu0 = treeCpuSeconds(server.pid);
  const machine0 = machineBusySeconds();
  const loaderCpu0 = process.cpuUsage();
  const t0 = performance.now();
  const load = await runLoad(loadSpec(bench, kind, bench.params.durationS));
  const wallS = (performance.now() - t0) / 1000;
  const loaderCpu = process.cpuUsage(loaderCpu0);
  const serverCpuS = treeCpuSeconds(server.pid) - serverCpu0;
  const machineS = machineBusySeconds() - machine0;
  const after = await snapshot(stats);
  const rewrite = before.aofRewriting || after.aofRewriting
    || after.aofRewrites !== before.aofRewrites;
  const n = load.transfers;
  const per = (value: number) => (kind === 'hello' || n === 0 ? null : value / n);
  const segment: Segment = {
    round,
    durationS: load.durationS,
    okRequests: load.okRequests,
    transfers: n,
    non2xx: load.non2xx,
    errors: load.errors,
    timeouts: load.timeouts,
    aofRewriteDuring: rewrite,
    statusCodes: load.statusCodes,
    ...(load.itemStatuses ? { itemStatuses: load.itemStatuses } : {}),
    requestsPerS: load.okRequests / load.durationS,
    transfersPerS: kind === 'hello' ? null : n / load.durationS,
    p50Ms: load.p50Ms,
    p99Ms: load.p99Ms,
    redisScriptUsPerTransfer: per(after.scriptUsec - before.scriptUsec),
    redisCpuUsPerTransfer: per((after.cpuSeconds - before.cpuSeconds) * 1e6),
    serverCpuUsPerTransfer: per(serverCpuS * 1e6),
    serverCores: serverCpuS / wallS,
    redisCores: (after.cpuSeconds - before.cpuSeconds) / wallS,
    loaderCores: (loaderCpu.user + loaderCpu.system) / 1e6 / wallS,
    machineCores: machineS / wallS,
  };
  const bad = segment.non2xx + segment.errors;
  console.error(`  round ${round} ${kind.padEnd(11)} ` +
    `${Math.round(segment.requestsPerS).toLocaleString('en-US').padStart(8)} req/s ` +
    (kind === 'hello' ? '' : `${Math.round(n / load.durationS).toLocaleString('en-US')
      .padStart(8)} transfers/s `) +
    `p50 ${load.p50Ms.toFixed(2)} ms p99 ${load.p99Ms.toFixed(2)} ms` +
    (bad > 0 ? `  (${segment.non2xx} non-2xx, ${segment.errors} errors: ` +
      `${JSON.stringify(load.statusCodes)})` : '') + (rewrite ? '  [AOF rewrite; AOF ' +
      `${(before.aofCurrentSize / 2 ** 20).toFixed(0)} → ` +
      `${(after.aofCurrentSize / 2 ** 20).toFixed(0)} MiB]` : ''));
  return segment;
}

/**
 * p99 at half the product's maximum. The maximum is measured again just before (closed loop,
 * as in the rounds): on this shared machine the capacity of a few minutes ago may be gone,
 * and an open-loop rate above the current capacity only measures a growing queue.
 */
async function halfRate(bench: Bench, single: KindResult): Promise<HalfRate | null> {
  if (!single.available) return null;
  const { params } = bench;
  await waitForRewrite(bench.stats);
  const max = await runLoad(loadSpec(bench, 'single', params.durationS));
  const maxPerS = max.transfers / max.durationS;
  if (maxPerS <= 0) return null;
  const target = maxPerS / 2;
  const url = `${bench.product.base}/transfers`;
  const body = transferBody(bench.pool);
  await waitForRewrite(bench.stats);
  const before = await snapshot(bench.stats);
  // Who used the CPU while the paced run ran: a queue there is explained by these.
  const server0 = cpuSeconds(bench.product.pid);
  const redis0 = (await snapshot(bench.stats)).cpuSeconds;
  const machine0 = machineBusySeconds();
  const loader0 = process.cpuUsage();
  const t0 = performance.now();
  const even = await paced({ url, headers: JSON_AUTH, body, expectStatus: 201,
    ratePerS: target, durationS: params.durationS, connections: params.connections,
    warmupS: Math.min(1, params.durationS / 2) });
  const wallS = (performance.now() - t0) / 1000;
  const loaderCpu = process.cpuUsage(loader0);
  const machineS = machineBusySeconds() - machine0;
  const serverS = cpuSeconds(bench.product.pid) - server0;
  const redisS = (await snapshot(bench.stats)).cpuSeconds - redis0;
  const loaderS = (loaderCpu.user + loaderCpu.system) / 1e6;
  const viaAutocannon = await runLoad({ url, method: 'POST', headers: JSON_AUTH, body,
    connections: params.connections, durationS: params.durationS, expectStatus: 201,
    overallRate: Math.max(1, Math.round(target)) });
  const after = await snapshot(bench.stats);
  const rewrite = before.aofRewriting || after.aofRewriting
    || after.aofRewrites !== before.aofRewrites;
  console.error(`  half max ${Math.round(target)}/s: paced p99 ${even.p99Ms.toFixed(2)} ms ` +
    `(generator lag max ${even.loaderLagMaxMs.toFixed(1)} ms), ` +
    `autocannon overallRate p99 ${viaAutocannon.p99Ms.toFixed(2)} ms` +
    (rewrite ? '  [AOF rewrite]' : ''));
  return {
    maxTransfersPerS: maxPerS,
    roundsMedianTransfersPerS: single.median.transfersPerS ?? Number.NaN,
    targetPerS: target,
    autocannon: { achievedPerS: viaAutocannon.okRequests / viaAutocannon.durationS,
      p50Ms: viaAutocannon.p50Ms, p99Ms: viaAutocannon.p99Ms, non2xx: viaAutocannon.non2xx },
    paced: { achievedPerS: even.achievedPerS, p50Ms: even.p50Ms, p99Ms: even.p99Ms,
      maxMs: even.maxMs, non2xx: even.non2xx + even.errors,
      loaderLagMaxMs: even.loaderLagMaxMs, maxInFlight: even.maxInFlight,
      serverCores: serverS / wallS, redisCores: redisS / wallS, loaderCores: loaderS / wallS,
      otherCores: Math.max(0, machineS - serverS - redisS - loaderS) / wallS },
    aofRewriteDuring: rewrite,
    aofDelayedFsyncs: after.aofDelayedFsync - before.aofDelayedFsync,
  };
}

/** One round: a, b, c, p (beside c, to which it is compared), d. */
async function runRound(bench: Bench, kinds: readonly Kind[], round: number,
  rounds: Map<Kind, Segment[]>, pgRounds: PostgresSegment[]): Promise<number> {
  let rewrites = 0;
  for (const kind of kinds) {
    const segment = await measure(bench, kind, round);
    rounds.get(kind)?.push(segment);
    if (segment.aofRewriteDuring) rewrites++;
    if (kind === 'single' && !('unavailable' in bench.pg)) {
      await waitForRewrite(bench.stats); // a Redis fork would take a core from postgres
      pgRounds.push(await measurePostgres(bench.pg, postgresLoadSpec(bench.pg,
        bench.params.connections, bench.params.durationS), round));
    }
  }
  return rewrites;
}

async function benchPolicy(params: Params, policy: Policy, tmp: string,
  profileDir: string | undefined, pool: string[], pg: MaybeBaseline): Promise<PolicyResult> {
  console.error(`\nappendfsync ${policy}: starting redis-server and the servers under test`);
  const redis = await startRedis(policy, tmp);
  const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const servers: Server[] = [];
  try {
    const [hello, lean, product, twoWorkers, noGroup] = await Promise.all([
      startBaseline('hello', redis.url, tmp), startBaseline('lean', redis.url, tmp),
      startProduct(policy, redis.url, tmp, profileDir),
      startProduct(policy, redis.url, tmp, undefined, 'twoWorkers'),
      startProduct(policy, redis.url, tmp, undefined, 'noGroup')]);
    servers.push(hello, lean, product, twoWorkers, noGroup);
    await createAccounts(product, pool);
    const bench: Bench = { params, stats, pool, hello, lean, product, twoWorkers, noGroup, pg };
    const missingBatch = await probeBatch(product, pool);
    const kinds = KINDS.filter((k) => missingBatch === null || !k.startsWith('batch'));
    if (missingBatch !== null) console.error(`  batch: ${missingBatch}`);

    if (params.warmupS > 0) {
      console.error(`  warm-up: ${params.warmupS} s per server`);
      for (const kind of kinds) await runLoad(loadSpec(bench, kind, params.warmupS));
      if (!('unavailable' in pg)) {
        await loadPostgres(pg, postgresLoadSpec(pg, params.connections, params.warmupS));
      }
    }
    const rounds = new Map<Kind, Segment[]>(kinds.map((k) => [k, []]));
    const pgRounds: PostgresSegment[] = [];
    let rewrites = 0;
    for (let r = 1; r <= params.rounds; r++) {
      rewrites += await runRound(bench, kinds, r, rounds, pgRounds);
    }
    const result = {} as Record<Kind, KindResult>;
    for (const kind of KINDS) {
      const segments = rounds.get(kind);
      result[kind] = segments === undefined
        ? { available: false, label: KIND_LABELS[kind], reason: missingBatch ?? 'not measured' }
        : { available: true, label: KIND_LABELS[kind],
          connections: kind.startsWith('batch') ? params.batchConnections : params.connections,
          rounds: segments, median: medianFigures(segments) };
    }
    const postgres = postgresResult(pg, params.connections, pgRounds);
    const half = await halfRate(bench, result.single);
    await Promise.all(servers.map((s) => s.stop()));
    return {
      appendfsync: policy,
      kinds: result,
      postgres,
      ratios: {
        singleOverLean: roundRatio(result.single, result.lean, 'transfersPerS'),
        batchOverSingle: roundRatio(result.batch, result.single, 'transfersPerS'),
        batchAtomicOverSingle: roundRatio(result.batchAtomic, result.single, 'transfersPerS'),
        leanOverHello: roundRatio(result.lean, result.hello, 'requestsPerS'),
        singleOverPostgres: roundRatio(result.single, postgres, 'transfersPerS'),
        twoWorkersOverOne: roundRatio(result.singleTwoWorkers, result.single, 'transfersPerS'),
        groupOverNoGroup: roundRatio(result.single, result.singleNoGroup, 'transfersPerS'),
      },
      halfRate: half,
      aofRewrites: rewrites,
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    stats.disconnect();
    await redis.stop();
    removeDir(join(tmp, `redis-${policy}`));
  }
}

// ---------------------------------------------------------------------------------------------
// Storage: AOF and RAM per stored transfer, on a fresh Redis

async function storageRun(server: Server, stats: Redis, spec: LoadSpec,
  via: string): Promise<StorageFigures> {
  await waitForRewrite(stats);
  const before = await snapshot(stats);
  const load = await runLoad(spec);
  await sleep(500); // let client buffers drain before reading used_memory
  const after = await snapshot(stats);
  const rewrite = before.aofRewriting || after.aofRewriting
    || after.aofRewrites !== before.aofRewrites;
  const n = load.transfers;
  if (load.non2xx + load.errors > 0) {
    console.error(`  storage ${via}: ${load.non2xx} non-2xx, ${load.errors} errors ` +
      JSON.stringify(load.statusCodes));
  }
  const delta = after.usedMemory - before.usedMemory;
  const figures: StorageFigures = {
    available: true,
    via,
    transfers: n,
    durationS: load.durationS,
    usedMemoryDeltaBytes: delta,
    ramBytesPerTransfer: n > 0 ? delta / n : null,
    aofBytesPerTransfer: n > 0 && !rewrite
      ? (after.aofCurrentSize - before.aofCurrentSize) / n : null,
  };
  const show = (v: number | null) => (v === null ? '—' : v.toFixed(0));
  console.error(`  ${via}: ${n.toLocaleString('en-US')} transfers, ` +
    `${show(figures.ramBytesPerTransfer)} B RAM, ${show(figures.aofBytesPerTransfer)} B AOF ` +
    `per transfer${rewrite ? ' [AOF rewrite]' : ''}`);
  return figures;
}

async function storage(params: Params, tmp: string): Promise<Storage> {
  const policy = params.policies[0] as Policy;
  const k = params.probeTransfers;
  console.error(`\nstorage: fresh Redis (appendfsync ${policy}); ${k.toLocaleString('en-US')} ` +
    `transfers per kind, then ${params.storageTransfers.toLocaleString('en-US')} via the product`);
  const dir = join(tmp, 'storage');
  mkdirSync(dir);
  const redis = await startRedis(policy, dir);
  const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const servers: Server[] = [];
  try {
    const pool = accountPool(params.accounts);
    const [product, lean] = await Promise.all([startProduct(policy, redis.url, dir),
      startBaseline('lean', redis.url, dir)]);
    servers.push(product, lean);
    await createAccounts(product, pool);
    const missingBatch = await probeBatch(product, pool);
    const single = (server: Server, amount: number): LoadSpec => ({
      url: `${server.base}/transfers`, method: 'POST', headers: JSON_AUTH, amount,
      connections: params.connections, expectStatus: 201, body: transferBody(pool) });
    const batch = (amount: number, atomic: boolean): LoadSpec => {
      const size = atomic ? params.atomicBatchSize : params.batchSize;
      return { url: `${product.base}/transfers/batch`, method: 'POST', headers: JSON_AUTH,
        amount: Math.ceil(amount / size), connections: params.batchConnections,
        expectStatus: 200, countItems: true, body: batchBody(pool, size, atomic) };
    };
    const unavailable = { available: false as const, reason: missingBatch ?? '' };
    const perKind: Storage['perKind'] = {
      lean: await storageRun(lean, stats, single(lean, k), 'lean POST /transfers'),
      single: await storageRun(product, stats, single(product, k), 'product POST /transfers'),
      batch: missingBatch !== null ? unavailable : await storageRun(product, stats,
        batch(k, false), 'product batch, atomic:false'),
      batchAtomic: missingBatch !== null ? unavailable : await storageRun(product, stats,
        batch(k, true), 'product batch, atomic:true'),
    };
    const large = await storageRun(product, stats, missingBatch === null
      ? batch(params.storageTransfers, false) : single(product, params.storageTransfers),
    missingBatch === null ? `product batch of ${params.batchSize}, atomic:false`
      : 'product POST /transfers');
    return { appendfsync: policy, perKind, large };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    stats.disconnect();
    await redis.stop();
    removeDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Scripts: each at its worst, its time inside Redis against its budget

async function scripts(params: Params, tmp: string): Promise<Results['scripts']> {
  const policy = params.policies[0] as Policy;
  const coldRounds = Math.min(params.quick ? 1 : 5, params.scriptRounds - 1);
  console.error(`\nscripts: each at its worst, ${params.scriptRounds} rounds (${coldRounds} ` +
    `after SCRIPT FLUSH), fresh Redis (appendfsync ${policy})`);
  const dir = join(tmp, 'scripts');
  mkdirSync(dir);
  const redis = await startRedis(policy, dir);
  // The ledger's connection and the bench's own, as the suite's budget test has them.
  const [ledger, admin] = [new Redis(redis.url), new Redis(redis.url)];
  try {
    const d = await scriptDurations(ledger, admin, params.scriptRounds, coldRounds);
    console.error(formatScriptDurations(d));
    return { ...d, appendfsync: policy };
  } finally {
    ledger.disconnect();
    admin.disconnect();
    await redis.stop();
    removeDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Holds against the single transfer

async function holds(params: Params, tmp: string,
  scriptResult: Results['scripts']): Promise<HoldsResult> {
  const policy = params.policies[0] as Policy;
  const dir = join(tmp, 'holds');
  mkdirSync(dir);
  try {
    const measured = await measureHolds({ appendfsync: policy, accounts: params.accounts,
      operations: params.holdsOperations, rounds: params.rounds, sweeps: params.holdsSweeps,
      stored: params.holdsStored, startRedis: (d) => startRedis(policy, d), dir });
    return { ...measured, sweepWorst: sweepWorst(scriptResult) };
  } finally {
    removeDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Replica acknowledgements: LEDGER_REPLICA_ACKS=1 against =0

async function replication(params: Params, tmp: string): Promise<ReplicationResult> {
  const policy = params.policies[0] as Policy;
  const dir = join(tmp, 'replication');
  mkdirSync(dir);
  try {
    return await measureReplication({ appendfsync: policy, durationS: params.durationS,
      rounds: params.rounds, warmupS: params.warmupS, connections: params.connections,
      pool: accountPool(params.accounts), headers: JSON_AUTH, dir, createAccounts,
      startProduct: (variant, redisUrl, d) => startProduct(policy, redisUrl, d, undefined,
        variant) });
  } finally {
    removeDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Ledgers on Redis Cluster

async function cluster(params: Params, tmp: string): Promise<ClusterResult> {
  const policy = params.policies[0] as Policy;
  const dir = join(tmp, 'cluster');
  mkdirSync(dir);
  try {
    return await measureCluster({ appendfsync: policy, durationS: params.durationS,
      rounds: params.rounds, warmupS: params.warmupS, connections: params.connections,
      batchSize: params.batchSize, pool: accountPool(params.clusterAccounts), headers: JSON_AUTH,
      dir, createAccounts, startRedis: (d) => startRedis(policy, d),
      startProduct: (variant, redis, d) => startProduct(policy, redis, d, undefined, variant) });
  } finally {
    removeDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// Change data out: the publisher on against off, and its catch-up

/**
 * BENCH_PROFILE=1: both products, so that --cpu-prof's overhead is on both sides of the ratio;
 * each in a directory of its own (its name says which).
 */
const CDC_PROFILED: readonly CdcVariant[] = ['cdcOn', 'cdcOff'];

async function cdc(params: Params, tmp: string,
  stamp: string): Promise<{ result: CdcSection; profileFiles: string[] }> {
  const policy = params.policies[0] as Policy;
  const dir = join(tmp, 'cdc');
  mkdirSync(dir);
  const profileDir = (variant: CdcVariant) => (params.profile && CDC_PROFILED.includes(variant)
    ? join(params.resultsDir, 'profiles', `${stamp}-cdc-${variant}`) : undefined);
  try {
    const result = await measureCdc({ appendfsync: policy, durationS: params.durationS,
      rounds: params.rounds, warmupS: params.warmupS, connections: params.connections,
      batchConnections: params.batchConnections, batchSize: params.batchSize,
      backlog: params.cdcBacklog, pool: accountPool(params.cdcAccounts), headers: JSON_AUTH,
      exchange: PRODUCT_DEFAULTS.cdcExchange,
      keyPrefix: PRODUCT_DEFAULTS.keyPrefix, ledgerName: PRODUCT_DEFAULTS.ledgerName, dir,
      createAccounts, startRedis: (d) => startRedis(policy, d),
      startProduct: (variant, redisUrl, d, env) => {
        const profile = profileDir(variant);
        if (profile !== undefined) mkdirSync(profile, { recursive: true });
        return startProduct(policy, redisUrl, d, profile, variant, env);
      } });
    return { result, profileFiles: CDC_PROFILED.flatMap((v) => threadProfiles(profileDir(v))) };
  } finally {
    removeDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// The PostgreSQL archive: memory, catch-up, on against off

/** BENCH_PROFILE=1: both hot-path products, and the one that catches up. */
const ARCHIVE_PROFILED: readonly ArchiveVariant[] = ['archiveOn', 'archiveOff', 'archiveCatchUp'];

async function archive(params: Params, tmp: string,
  stamp: string): Promise<{ result: ArchiveSection; profileFiles: string[] }> {
  const policy = params.policies[0] as Policy;
  const dir = join(tmp, 'archive');
  mkdirSync(dir);
  const profileDir = (variant: ArchiveVariant) => (params.profile
    && ARCHIVE_PROFILED.includes(variant)
    ? join(params.resultsDir, 'profiles', `${stamp}-archive-${variant}`) : undefined);
  try {
    const result = await measureArchive({ appendfsync: policy, durationS: params.durationS,
      rounds: params.rounds, warmupS: params.warmupS, connections: params.connections,
      batchConnections: params.batchConnections, batchSize: params.batchSize,
      transfers: params.archiveTransfers, reads: params.archiveReads,
      audit: params.archiveAudit, yieldS: params.archiveYieldS,
      pool: accountPool(params.archiveAccounts), headers: JSON_AUTH,
      keyPrefix: PRODUCT_DEFAULTS.keyPrefix, ledgerName: PRODUCT_DEFAULTS.ledgerName,
      env: cleanEnv(), dir, createAccounts, startRedis: (d) => startRedis(policy, d),
      startProduct: (variant, redisUrl, d, env) => {
        const profile = profileDir(variant);
        if (profile !== undefined) mkdirSync(profile, { recursive: true });
        return startProduct(policy, redisUrl, d, profile, variant, env);
      } });
    return { result, profileFiles: ARCHIVE_PROFILED.flatMap((v) =>
      // Every thread's: the archiver runs on a thread of its own (src/archive/thread.ts).
      threadProfiles(profileDir(v), true)) };
  } finally {
    removeDir(dir);
  }
}

/**
 * The main thread's profile in `dir` (see runPolicies), or every thread's (tsx's loader thread
 * included: it works only while modules load); none without BENCH_PROFILE.
 */
function threadProfiles(dir: string | undefined, allThreads = false): string[] {
  if (dir === undefined || !existsSync(dir)) return [];
  const name = allThreads ? /\.\d+\.\d+\.\d+\.cpuprofile$/ : /\.\d+\.0\.\d+\.cpuprofile$/;
  return readdirSync(dir).filter((file) => name.test(file)).map((file) => join(dir, file));
}

/**
 * The publisher's own code and its AMQP client, to be seen beside the requests' work (not
 * every-ledger.ts: the hold sweeper runs on it too).
 */
const PUBLISHER_CODE = /(^|\/)(src\/cdc\/|src\/ledger\/follower\.ts|amqplib\/)/;
/** The archiver's own code and its PostgreSQL client. */
const ARCHIVER_CODE = /(^|\/)(src\/archive\/|pg\/|pg-protocol\/|pg-pool\/)/;

function printProfiles(files: readonly string[], title: string, code = PUBLISHER_CODE,
  codeName = 'the publisher (src/cdc, follower, amqplib)'): void {
  for (const file of files) {
    process.stdout.write(`\n${formatTopSelfTime(`${title}: ${file}`,
      topSelfTime(file, ROOT, 25))}\n`);
    const own = topSelfTime(file, ROOT, Number.MAX_SAFE_INTEGER)
      .filter((row) => code.test(row.where)).slice(0, 15);
    if (own.length === 0) continue; // the product that does not publish
    process.stdout.write(`\n${formatTopSelfTime(`Of which ${codeName}`, own)}\n`);
  }
}

function printArchiveProfiles(files: readonly string[]): void {
  printProfiles(files, 'Top 25 self time of an archive product (whole run)', ARCHIVER_CODE,
    'the archiver (src/archive, pg)');
}

/** BENCH_ONLY: the section alone, into a JSON of its own (compare reads none such). */
async function sectionOnly(params: Params, tmp: string, startedAt: string, stamp: string) {
  const only = params.only as 'cluster' | 'cdc' | 'archive';
  const goalLines = (goals: Goal[]) => goals.map((g) => `- ${g.goal}: ` +
    `${g.measured === null ? '—' : `${g.measured.toFixed(2)} ${g.unit}`}, ${g.status}`);
  const run = only === 'cluster'
    ? await cluster(params, tmp).then((result) => ({ fields: { cluster: result },
      md: clusterMarkdown(result, cpus().length), profileFiles: [] as string[] }))
    : only === 'cdc' ? await cdc(params, tmp, stamp).then(({ result, profileFiles }) => ({
      fields: { cdc: result, goals: cdcGoals(result) },
      md: [...cdcMarkdown(result), '', ...goalLines(cdcGoals(result))], profileFiles }))
      : await archive(params, tmp, stamp).then(({ result, profileFiles }) => ({
        fields: { archive: result, goals: archiveGoals(result) },
        md: [...archiveMarkdown(result), '', ...goalLines(archiveGoals(result))],
        profileFiles }));
  mkdirSync(params.resultsDir, { recursive: true });
  const jsonFile = join(params.resultsDir, `${stamp}-${only}.json`);
  writeFileSync(jsonFile, `${JSON.stringify({ startedAt, finishedAt: new Date().toISOString(),
    git: gitState(), parameters: { ...params, only }, ...run.fields,
    ...(run.profileFiles.length > 0 ? { profiles: run.profileFiles.map((file) => ({ file,
      top: topSelfTime(file, ROOT, 25) })) } : {}) }, null, 2)}\n`);
  process.stdout.write(`${run.md.join('\n')}\n`);
  if (only === 'archive') printArchiveProfiles(run.profileFiles);
  else printProfiles(run.profileFiles, 'Top 25 self time of a change-data product (whole run)');
  console.error(`\nbench: wrote ${jsonFile}`);
}

// ---------------------------------------------------------------------------------------------
// Run

function packageVersion(name: string): string {
  try {
    const file = join(ROOT, 'node_modules', name, 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function gitState(): Results['git'] {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
    const status = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT,
      encoding: 'utf8' });
    return { commit: commit.trim(), dirty: status.trim() !== '' };
  } catch {
    return null;
  }
}

/** Every policy's rounds, with (p) running throughout and its books checked at the end. */
async function runPolicies(params: Params, tmp: string, stamp: string) {
  const policies: Record<string, PolicyResult> = {};
  const profileFiles: string[] = [];
  // One pool for every server: (p) is seeded with the accounts the product's Redis gets.
  const pool = accountPool(params.accounts);
  console.error('\npostgres: starting the (p) baseline\'s own PostgreSQL');
  let pg: MaybeBaseline | undefined;
  try {
    pg = await startPostgresBaseline({ pool, poolSize: params.postgresPoolSize, env: cleanEnv(),
      logDir: tmp });
    if ('unavailable' in pg) console.error(`  postgres: ${pg.unavailable}`);
    for (const policy of params.policies) {
      const profileDir = params.profile
        ? join(params.resultsDir, 'profiles', `${stamp}-${policy}`) : undefined;
      if (profileDir) mkdirSync(profileDir, { recursive: true });
      policies[policy] = await benchPolicy(params, policy, tmp, profileDir, pool, pg);
      if (profileDir) {
        // Written on the product's graceful exit: CPU.<date>.<time>.<pid>.<thread id>.<n>;
        // thread 0 is the main thread, the one that serves requests.
        for (const file of readdirSync(profileDir)) {
          if (/\.\d+\.0\.\d+\.cpuprofile$/.test(file)) profileFiles.push(join(profileDir, file));
        }
      }
    }
    if (!('unavailable' in pg)) console.error('\npostgres: checking the (p) baseline\'s books');
    return { policies, profileFiles, postgres: await finishPostgresBaseline(pg) };
  } catch (error) {
    await stopPostgresBaseline(pg);
    throw error;
  }
}

async function main(): Promise<void> {
  const args = compareArgs(process.argv.slice(2), process.env);
  // Read first: a mistyped file fails now, not after the run.
  const previous = args.previous === undefined ? undefined : loadResults(args.previous);
  if (args.against !== undefined && previous !== undefined) {
    process.stdout.write(compareMarkdown(previous, args.previous as string,
      loadResults(args.against), args.against));
    return;
  }
  installCleanup();
  const params = parameters();
  const startedAt = new Date().toISOString();
  const stamp = `${startedAt.slice(0, 19).replace(/:/g, '-')}Z`;
  reapStaleRuns();
  const tmp = makeWorkDir();
  console.error(`bench: ${params.durationS} s × ${params.rounds} rounds, fsync ` +
    `${params.policies.join(', ')}; working in ${tmp}`);
  if (params.only !== '') return sectionOnly(params, tmp, startedAt, stamp);

  const { policies, profileFiles, postgres } = await runPolicies(params, tmp, stamp);
  const storageResult = await storage(params, tmp);
  const scriptResult = await scripts(params, tmp);
  const holdsResult = await holds(params, tmp, scriptResult);
  const replicationResult = await replication(params, tmp);
  const clusterResult = await cluster(params, tmp);
  const cdcRun = await cdc(params, tmp, stamp);
  const archiveRun = await archive(params, tmp, stamp);
  const cpu = cpus();
  const results: Results = {
    schema: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { cpuModel: cpu[0]?.model.trim() ?? 'unknown', cores: cpu.length,
      totalMemBytes: totalmem(), kernel: release(), os: osType() },
    versions: { node: process.version, redis: redisServerVersion(),
      fastify: packageVersion('fastify'), ioredis: packageVersion('ioredis'),
      autocannon: packageVersion('autocannon'),
      postgres: postgres.available ? postgres.version : 'not available',
      pg: packageVersion('pg') },
    git: gitState(),
    parameters: {
      durationS: params.durationS, rounds: params.rounds, warmupS: params.warmupS,
      connections: params.connections, batchConnections: params.batchConnections,
      batchSize: params.batchSize, atomicBatchSize: params.atomicBatchSize,
      accounts: params.accounts, fsyncPolicies: params.policies,
      storageTransfers: params.storageTransfers, probeTransfers: params.probeTransfers,
      quick: params.quick, profile: params.profile, scriptRounds: params.scriptRounds,
      productLogLevel: PRODUCT_DEFAULTS.logLevel,
      productRateLimitPerSecond: RATE_LIMIT_PER_SECOND,
      postgresPoolSize: params.postgresPoolSize,
      holdsOperations: params.holdsOperations, holdsSweeps: params.holdsSweeps,
      holdsStored: params.holdsStored, cdcBacklog: params.cdcBacklog,
      archiveTransfers: params.archiveTransfers, archiveReads: params.archiveReads,
    },
    policies,
    storage: storageResult,
    postgres,
    scripts: scriptResult,
    holds: holdsResult,
    replication: replicationResult,
    cluster: clusterResult,
    cdc: cdcRun.result,
    archive: archiveRun.result,
    goals: [...evaluateGoals(policies, storageResult, scriptResult), ...holdsGoals(holdsResult),
      ...replicationGoals(replicationResult), ...cdcGoals(cdcRun.result),
      ...archiveGoals(archiveRun.result)],
    profiles: [...profileFiles, ...cdcRun.profileFiles, ...archiveRun.profileFiles]
      .filter(existsSync).map((file) => ({
      file, top: topSelfTime(file, ROOT, 25) })),
  };
  mkdirSync(params.resultsDir, { recursive: true });
  const jsonFile = join(params.resultsDir, `${stamp}-${params.policies.join('+')}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  const md = markdown(results) + (previous === undefined ? ''
    : `\n${compareMarkdown(previous, args.previous as string, results, jsonFile)}`);
  writeFileSync(join(params.resultsDir, 'latest.md'), md);
  process.stdout.write(`\n${md}`);
  for (const profile of results.profiles.filter((p) => !cdcRun.profileFiles.includes(p.file)
    && !archiveRun.profileFiles.includes(p.file))) {
    process.stdout.write(`\n${formatTopSelfTime('Top 25 self time of the product (whole ' +
      `run: it is idle while a and b run): ${profile.file}`,
      profile.top)}\n`);
  }
  printProfiles(cdcRun.profileFiles, 'Top 25 self time of a change-data product (whole run)');
  printArchiveProfiles(archiveRun.profileFiles);
  console.error(`\nbench: wrote ${jsonFile} and ${join(params.resultsDir, 'latest.md')}`);
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.stack : error}`);
  process.exit(1);
});
