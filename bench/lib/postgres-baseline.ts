/**
 * Baseline (p): the PostgreSQL ledger (bench/postgres-ledger.sql behind servers/postgres.ts)
 * as the bench runs it: one cluster and one server for the whole run, a segment in every round
 * of every fsync policy (PostgreSQL does not change between them; its segments sit beside the
 * product's so that their ratio is of the same minute), and its books checked at the end.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type LoadSpec, runLoad, transferBody } from './load.js';
import { checkPostgresLedger, findPostgresBin, type PostgresCluster,
  startPostgres } from './postgres.js';
import { cpuSeconds, machineBusySeconds, ROOT, type Server, startServer,
  treeCpuSeconds } from './processes.js';
import { POSTGRES_FIGURE_KEYS, POSTGRES_LABEL, medianOf, type PostgresResult,
  type PostgresRun, type PostgresSegment } from './results.js';
import { freePort } from '../../src/redis/embedded.js';

export interface PostgresBaseline {
  readonly cluster: PostgresCluster;
  readonly server: Server;
  readonly poolSize: number;
  readonly pool: readonly string[];
  /** 201s received from the server: each must be a committed transfer at the check. */
  acknowledged: number;
}

export type MaybeBaseline = PostgresBaseline | { unavailable: string };

/**
 * Starts PostgreSQL and the server, or says why the baseline is not available. Only missing
 * binaries make it unavailable: a cluster or server that fails to start fails the bench.
 */
export async function startPostgresBaseline(options: { pool: readonly string[];
  poolSize: number; env: NodeJS.ProcessEnv; logDir: string }): Promise<MaybeBaseline> {
  const bin = findPostgresBin();
  if (bin === null) {
    return { unavailable: 'not available (no initdb and postgres on PATH nor in ' +
      '/usr/lib/postgresql/*/bin; Debian: apt-get install postgresql)' };
  }
  console.error(`  postgres: ${bin}, ${options.pool.length.toLocaleString('en-US')} accounts, ` +
    `pool of ${options.poolSize}`);
  const cluster = await startPostgres(bin, options.pool);
  try {
    const server = await startServer({
      name: 'postgres',
      script: join(ROOT, 'bench/servers/postgres.ts'),
      port: await freePort(),
      env: { ...options.env, DATABASE_URL: cluster.url,
        POSTGRES_POOL_SIZE: String(options.poolSize) },
      readyPath: '/healthz',
      logFile: join(options.logDir, 'postgres-server.log'),
    });
    return { cluster, server, poolSize: options.poolSize, pool: options.pool, acknowledged: 0 };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

export function postgresLoadSpec(b: PostgresBaseline, connections: number,
  durationS: number): LoadSpec {
  return { url: `${b.server.base}/transfers`, method: 'POST',
    headers: { 'content-type': 'application/json' }, durationS, connections,
    expectStatus: 201, body: transferBody(b.pool) };
}

/** Every load sent to (p) goes through here, so that the check knows what was acknowledged. */
export async function loadPostgres(b: PostgresBaseline, spec: LoadSpec) {
  const load = await runLoad(spec);
  b.acknowledged += load.okRequests;
  return load;
}

export async function measurePostgres(b: PostgresBaseline, spec: LoadSpec,
  round: number): Promise<PostgresSegment> {
  const server0 = cpuSeconds(b.server.pid);
  const postgres0 = treeCpuSeconds(b.cluster.pid);
  const machine0 = machineBusySeconds();
  const loader0 = process.cpuUsage();
  const t0 = performance.now();
  const load = await loadPostgres(b, spec);
  const wallS = (performance.now() - t0) / 1000;
  const loaderCpu = process.cpuUsage(loader0);
  const serverS = cpuSeconds(b.server.pid) - server0;
  const postgresS = treeCpuSeconds(b.cluster.pid) - postgres0;
  const machineS = machineBusySeconds() - machine0;
  const n = load.transfers;
  const per = (seconds: number) => (n === 0 ? null : seconds * 1e6 / n);
  const { p50Ms, p99Ms, ...counts } = load;
  const segment: PostgresSegment = {
    round, ...counts,
    requestsPerS: load.okRequests / load.durationS,
    transfersPerS: n / load.durationS,
    p50Ms, p99Ms,
    serverCpuUsPerTransfer: per(serverS),
    postgresCpuUsPerTransfer: per(postgresS),
    serverCores: serverS / wallS,
    postgresCores: postgresS / wallS,
    loaderCores: (loaderCpu.user + loaderCpu.system) / 1e6 / wallS,
    machineCores: machineS / wallS,
  };
  const bad = load.non2xx + load.errors;
  console.error(`  round ${round} ${'postgres'.padEnd(11)} ` +
    `${Math.round(segment.requestsPerS).toLocaleString('en-US').padStart(8)} req/s ` +
    `${Math.round(n / load.durationS).toLocaleString('en-US').padStart(8)} transfers/s ` +
    `p50 ${p50Ms.toFixed(2)} ms p99 ${p99Ms.toFixed(2)} ms, postgres ` +
    `${(segment.postgresCpuUsPerTransfer ?? Number.NaN).toFixed(0)} µs CPU/transfer` +
    (bad > 0 ? `  (${load.non2xx} non-2xx, ${load.errors} errors: ` +
      `${JSON.stringify(load.statusCodes)})` : ''));
  return segment;
}

export function postgresResult(b: MaybeBaseline, connections: number,
  rounds: PostgresSegment[]): PostgresResult {
  if ('unavailable' in b) return { available: false, label: POSTGRES_LABEL, reason: b.unavailable };
  return { available: true, label: POSTGRES_LABEL, connections, poolSize: b.poolSize, rounds,
    median: medianOf(rounds, POSTGRES_FIGURE_KEYS) };
}

/** Checks the books (throws if they are wrong), then stops the server and the cluster. */
export async function finishPostgresBaseline(b: MaybeBaseline): Promise<PostgresRun> {
  if ('unavailable' in b) return { available: false, reason: b.unavailable };
  try {
    await b.server.stop(); // every request answered: nothing in flight when the books are read
    const check = await checkPostgresLedger(b.cluster.url, b.acknowledged);
    console.error(`  postgres books: ${check.committed.toLocaleString('en-US')} committed ` +
      `(${b.acknowledged.toLocaleString('en-US')} acknowledged), ` +
      `${check.entries.toLocaleString('en-US')} entries, balances sum to ${check.netBalance}`);
    return { available: true, version: b.cluster.version, poolSize: b.poolSize,
      settings: b.cluster.settings, check };
  } finally {
    await b.server.stop();
    await b.cluster.stop();
  }
}

/** Stops whatever is running, after a failure elsewhere (no check then). */
export async function stopPostgresBaseline(b: MaybeBaseline | undefined): Promise<void> {
  if (b === undefined || 'unavailable' in b) return;
  await b.server.stop();
  await b.cluster.stop();
}
