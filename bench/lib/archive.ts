/**
 * The PostgreSQL archive (LEDGER_ARCHIVE_URL, src/archive/): what it saves of Redis's memory,
 * how fast it works through a backlog, and what it costs the hot path. A PostgreSQL of the
 * bench's own (initdb in a temp dir, a free loopback port, PostgreSQL's defaults: fsync and
 * synchronous_commit on), with a database per product that archives, since the archive keys
 * its rows by ledger name and both products use the default ledger.
 * 1. Hot path: single transfers, (c)'s load, against the product twice, each on a redis-server
 *    of its own started as (c)'s: with the archiver (`on`: LEDGER_ARCHIVE_URL set, the default
 *    LEDGER_ARCHIVE_KEEP) and without (`off`). Rounds interleave the two, alternating which
 *    goes first; medians are taken. After each `on` segment: the records not yet copied to
 *    PostgreSQL, and how long until they were.
 * 2. Memory and catch-up, on a redis-server of their own: a ledger of UUID accounts; then N
 *    transfers with UUIDv4 ids, through the batch endpoint of a product without the archive;
 *    used_memory after the accounts and after the transfers (the "before": nothing archived).
 *    That product stops and one with LEDGER_ARCHIVE_URL and LEDGER_ARCHIVE_KEEP=1 starts on the
 *    same Redis (an archive turned on over a ledger's history): it copies and frees the whole
 *    backlog, timed from its first page committed until Redis has freed all but the newest
 *    record (`archive:f` in `<prefix>:{<ledger>}:p` at the head − 1). Then used_memory again:
 *    (after − after the accounts) ÷ N is a transfer's memory once archived. Every key's MEMORY
 *    USAGE (SAMPLES 0: exact) at each of the three points says what bounds it: the id index's
 *    65,536 bucket hashes (the bytes per entry and per bucket, by least squares over every
 *    bucket), the streams, the rest; what no key accounts for (the keyspace's own table) is
 *    shown as such.
 * 3. The archive checked, on that ledger: `npm run audit` (scripts/audit.ts) as a process with
 *    the service's environment; every id the bench was answered 201 for looked up in Redis's id
 *    index (archived: its compact field, '') and in PostgreSQL; a random sample read back with
 *    GET /transfers/{id} (200, the same id).
 * The catch-up's rate is set against the single-transfer rate of 1. (`off`'s median).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { ARCHIVE_NAME } from '../../src/archive/archiver.js';
import { limits } from '../../src/config/limits.js';
import {
  COMPACT_ID_LENGTH, compactId, type LedgerKeys, ledgerKeys,
} from '../../src/ledger/keys.js';
import type { EmbeddedRedis } from '../../src/redis/embedded.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { connectWhenReady, exitOf, findPostgresBin, initCluster, POSTGRES_INSTALL_HINT,
  POSTGRES_ROLE, postgresLogFile, postgresPort, postgresRunAs,
  spawnPostgres } from '../../test/helpers/postgres.js';
import { type LoadResult, runLoad, transferBody, transferItem } from './load.js';
import { machineBusySeconds, makeWorkDir, removeDir, ROOT, type Server, track,
  treeCpuSeconds } from './processes.js';
import { snapshot, waitForRewrite } from './redis-stats.js';
import { medianOf } from './results.js';
import { median, percentile, ratio, Samples } from './stats.js';

/**
 * run.ts's product variants for this section: `archiveFill` fills the memory ledger (no
 * archive), `archiveCatchUp` archives it keeping one record, `archiveRead` (the same) serves
 * the read-back once memory has been measured without a product connected. PostgreSQL's
 * address is known once it has started, so the section passes it.
 */
export const ARCHIVE_VARIANTS = ['archiveOn', 'archiveOff', 'archiveFill', 'archiveCatchUp',
  'archiveRead'] as const;
export type ArchiveVariant = (typeof ARCHIVE_VARIANTS)[number];
export const ARCHIVE_VARIANT_ENV: Record<ArchiveVariant, Record<string, string>> = {
  archiveOn: {}, archiveOff: {}, archiveFill: {}, archiveCatchUp: { LEDGER_ARCHIVE_KEEP: '1' },
  archiveRead: { LEDGER_ARCHIVE_KEEP: '1' } };

/** The issue's memory goal is stated at this many transfers (fewer are flagged). */
export const MEMORY_GOAL_TRANSFERS = 500_000;
/** The catch-up's goal is stated for a backlog of at least this many records. */
export const CATCH_UP_GOAL_BACKLOG = 100_000;
/** A UUID id's field in the index once archived: compactId's 20 ASCII bytes. */
export const COMPACT_ID_BYTES = COMPACT_ID_LENGTH;
/**
 * That field and its value '' as a listpack encodes them: a 1-byte header, the 20 bytes and a
 * 1-byte back-length; the empty value a header and a back-length.
 */
export const LISTPACK_ENTRY_BYTES = 1 + COMPACT_ID_BYTES + 1 + 2;

const DATABASES = { hot: 'archive_hot', memory: 'archive_memory' } as const;
/** Read back after the start (SHOW): the archive's durability is PostgreSQL's default. */
const PG_SETTINGS = ['fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
  'shared_buffers', 'max_wal_size', 'checkpoint_timeout'] as const;
/** The embedded Redis's settings that shape the memory figures (src/redis/embedded.ts). */
const REDIS_SETTINGS = ['hash-max-listpack-entries', 'hash-max-listpack-value',
  'stream-node-max-bytes', 'stream-node-max-entries', 'appendonly', 'appendfsync',
  'maxmemory-policy'] as const;
/** Fast shutdown rolls back open transactions; past this, SIGKILL. */
const PG_STOP_TIMEOUT_MS = 30_000;
/** A bound on the archiver catching up after a segment (it copies far faster than (c)). */
const CAUGHT_UP_WAIT_MS = 120_000;
/** A bound on the catch-up: at 1,000 records/s a million take 1,000 s. */
const CATCH_UP_TIMEOUT_MS = 1_800_000;
/** How often the catch-up reads the archive's positions: a HMGET, nothing for Redis. */
const POSITION_SAMPLE_MS = 5;
/** The audit of a million records takes minutes; this is a backstop. */
const AUDIT_TIMEOUT_MS = 3_600_000;
/** Keys per pipeline when the bench reads every key's size, and ids per lookup. */
const PIPELINE = 1000;
const CHECK_CHUNK = 10_000;
/** Concurrent GET /transfers/{id} of the read-back sample. */
const READ_CONNECTIONS = 16;
/** Failed checks listed in the report, at most (the rest are alike). */
const LIST_MAX = 5;

export interface ArchiveSettings {
  appendfsync: 'always' | 'everysec';
  durationS: number;
  rounds: number;
  warmupS: number;
  connections: number;
  batchConnections: number;
  batchSize: number;
  /** N: transfers of the memory ledger, the catch-up's backlog (BENCH_ARCHIVE_TRANSFERS). */
  transfers: number;
  /** GET /transfers/{id} of a random sample of them (BENCH_ARCHIVE_READS). */
  reads: number;
  /** npm run audit on the memory ledger once archived (BENCH_ARCHIVE_AUDIT). */
  audit: boolean;
  /**
   * The `on` product's LEDGER_ARCHIVE_YIELD_S (BENCH_ARCHIVE_YIELD_S; undefined: its default).
   * At the default, a round is shorter than the lag the archiver waits for, so `on` measures
   * a burst; at 0 the archiver copies at once, as it does under a load that never eases.
   */
  yieldS: number | undefined;
  pool: readonly string[];
  /** Content type and an API key with the `write` and `metrics` scopes. */
  headers: Record<string, string>;
  /** LEDGER_KEY_PREFIX and LEDGER_NAME as the product has them. */
  keyPrefix: string;
  ledgerName: string;
  /** The environment of the audit's process, before its REDIS_URL and LEDGER_ARCHIVE_URL. */
  env: NodeJS.ProcessEnv;
  startRedis: (dir: string) => Promise<EmbeddedRedis>;
  /** run.ts's startProduct in the variant, with this Redis and extra environment. */
  startProduct: (variant: ArchiveVariant, redisUrl: string, dir: string,
    env: Record<string, string>) => Promise<Server>;
  createAccounts: (product: Server, ids: readonly string[]) => Promise<void>;
  /** Removed by the caller. */
  dir: string;
}

/** CPU seconds per second of wall time over a stretch. */
export interface ArchiveCores {
  serverCores: number;
  redisCores: number;
  /** The postmaster and its backends (every database). */
  postgresCores: number;
  /** The bench process: the load generator. */
  benchCores: number;
  machineCores: number;
}

export interface ArchiveFigures extends ArchiveCores {
  transfersPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** The service's CPU ÷ committed transfers, over the load alone. */
  serverCpuUsPerTransfer: number | null;
  /** PostgreSQL's CPU ÷ committed transfers, over the load alone. */
  postgresCpuUsPerTransfer: number | null;
  /** `on`: records the archiver copied per second while the load ran (its counter). */
  archivedPerS: number | null;
  /** `on`: committed records not yet copied when the load stopped (Redis: head − position). */
  lagRecords: number | null;
  /** `on`: seconds from the load's end until every record was copied. */
  drainS: number | null;
}

const FIGURE_KEYS: ReadonlyArray<keyof ArchiveFigures> = ['transfersPerS', 'p50Ms', 'p99Ms',
  'serverCpuUsPerTransfer', 'postgresCpuUsPerTransfer', 'archivedPerS', 'lagRecords', 'drainS',
  'serverCores', 'redisCores', 'postgresCores', 'benchCores', 'machineCores'];

export type ArchiveSide = 'on' | 'off';

export interface ArchiveSegment extends ArchiveFigures,
  Pick<LoadResult, 'durationS' | 'non2xx' | 'errors' | 'statusCodes'> {
  round: number;
  /** 1: first of the pair in its round, 2: second. */
  position: number;
  transfers: number;
  /** `on`: ledger_archive_errors_total's increase (every reason). */
  archiveErrors: number | null;
  aofRewriteDuring: boolean;
}

export interface ArchiveSideResult { rounds: ArchiveSegment[]; median: ArchiveFigures }

/** INFO memory and MEMORY STATS (and the key count) at one point. */
export interface MemoryInfo {
  usedMemory: number;
  dataset: number;
  overhead: number;
  scripts: number;
  /** MEMORY STATS: the keyspace's table (slots and entries), and the clients' buffers. */
  mainTable: number;
  clients: number;
  /** jemalloc's view: bytes allocated, and in active pages. */
  allocatorAllocated: number;
  allocatorActive: number;
  rss: number;
  keys: number;
  /** MEMORY STATS as it answered (`db.0`'s pairs as `db.0.<name>`). */
  memoryStats: Record<string, number>;
}

export const KEY_GROUPS = ['buckets', 'journal', 'rejections', 'accounts', 'pinned',
  'other'] as const;
export type KeyGroup = (typeof KEY_GROUPS)[number];

export interface KeyUsage { keys: number; bytes: number }

/** Every key's MEMORY USAGE, by what it is; the id index's buckets in detail. */
export interface KeyBreakdown {
  groups: Record<KeyGroup, KeyUsage>;
  buckets: {
    listpack: number;
    hashtable: number;
    entries: number;
    /** Least squares of each listpack bucket's MEMORY USAGE on its HLEN: slope, intercept. */
    bytesPerEntry: number | null;
    bytesPerKey: number | null;
  };
  journalLength: number;
  rejectionsLength: number;
  pinnedLength: number;
}

export interface ArchiveMemory {
  transfers: number;
  /** transfers ≥ MEMORY_GOAL_TRANSFERS: the goal's own size. */
  goalSize: boolean;
  idLength: number;
  accounts: number;
  /** CONFIG GET of the settings that shape memory, as the product's Redis runs. */
  redisConfig: Record<string, string>;
  /** Filling the ledger: batches through the product without the archive. */
  fillS: number;
  fillTransfersPerS: number;
  baseline: MemoryInfo;
  filled: MemoryInfo;
  archived: MemoryInfo;
  /** (filled − baseline) ÷ N: a transfer's memory with nothing archived. */
  beforeBytesPerTransfer: number;
  /** (archived − baseline) ÷ N, used_memory: the goal's figure. */
  afterBytesPerTransfer: number;
  afterDatasetBytesPerTransfer: number;
  afterAllocatorBytesPerTransfer: number;
  keysBaseline: KeyBreakdown;
  keysFilled: KeyBreakdown;
  keysArchived: KeyBreakdown;
}

export interface ArchiveCatchUp extends ArchiveCores {
  /** Committed records before the archiving product started: the journal's head. */
  backlog: number;
  /** From the archiving product's start until it answered /readyz. */
  productStartS: number;
  /** From its start to the first page committed and noted in Redis. */
  firstPageS: number | null;
  /** From the first page to the last copied (`archive` at the head). */
  copiedS: number | null;
  /** From the first page until Redis had freed all but the newest record. */
  freedS: number | null;
  /** Records after the first page ÷ freedS: copied to PostgreSQL and freed from Redis. */
  recordsPerS: number | null;
  /** The same ÷ copiedS: copied only. */
  copiedPerS: number | null;
  finished: boolean;
  archiveErrors: number;
  /** ledger.transfers rows of the ledger afterwards. */
  postgresRows: number;
  /** The database's size afterwards (pg_database_size), bytes. */
  postgresBytes: number;
}

export interface ArchiveChecks {
  /** Null: BENCH_ARCHIVE_AUDIT=0. */
  audit: { exitCode: number | null; seconds: number; lastLines: string[] } | null;
  /** Every id answered 201, in Redis's index: archived (''), still in Redis (a seq), missing. */
  index: { ids: number; archived: number; inRedis: number; missing: number;
    missingIds: string[]; seconds: number };
  /** Every id answered 201, in ledger.transfers. */
  postgres: { ids: number; found: number; seconds: number };
  /** GET /transfers/{id} of a random sample. */
  reads: { requested: number; ok: number; failures: string[]; seconds: number; perS: number;
    p50Ms: number; p99Ms: number };
}

export interface ArchiveResult {
  available: true;
  appendfsync: string;
  connections: number;
  batchConnections: number;
  batchSize: number;
  accounts: number;
  postgres: { version: string; settings: Record<string, string>; startS: number };
  /** The archiver's pass interval, page, read chunk, and LEDGER_ARCHIVE_KEEP's default. */
  intervalMs: number;
  pageRecords: number;
  chunkRecords: number;
  keepDefault: number;
  /**
   * The `on` product's LEDGER_ARCHIVE_YIELD_S (ArchiveSettings.yieldS, or the default);
   * absent from results made before it existed (the archiver then never waited).
   */
  yieldS?: number;
  hot: { on: ArchiveSideResult; off: ArchiveSideResult;
    /** Median over rounds of each round's on ÷ off transfers/s. */
    onOverOff: number | null;
    serverCpuOnOverOff: number | null };
  memory: ArchiveMemory;
  catchUp: ArchiveCatchUp;
  /** catchUp.recordsPerS ÷ hot.off.median.transfersPerS. */
  catchUpOverSingle: number | null;
  checks: ArchiveChecks;
}

export type ArchiveSection = ArchiveResult
  | { available: false; appendfsync: string; reason: string };

// ---------------------------------------------------------------------------------------------
// PostgreSQL

interface ArchivePostgres {
  urls: Record<keyof typeof DATABASES, string>;
  version: string;
  settings: Record<string, string>;
  pid: number;
  stop(): Promise<void>;
}

/**
 * As bench/lib/postgres.ts starts the (p) baseline's, without its schema: the archive's is the
 * service's own (migrations/, applied by the archiver's first pass).
 */
async function startArchivePostgres(bin: string): Promise<ArchivePostgres> {
  const dir = makeWorkDir('pg-');
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown
      const timer = setTimeout(() => child?.kill('SIGKILL'), PG_STOP_TIMEOUT_MS);
      await exitOf(child);
      clearTimeout(timer);
    }
    removeDir(dir);
  };
  try {
    const as = postgresRunAs(dir);
    const password = initCluster(bin, dir, as);
    const port = await postgresPort();
    // SIGQUIT when the bench exits: immediate shutdown, which removes the shared memory.
    child = track(spawnPostgres(bin, dir, port, as, ['cluster_name=ledger-bench-archive']),
      'SIGQUIT');
    const base = `postgres://${POSTGRES_ROLE}:${password}@127.0.0.1:${port}`;
    const admin = await connectWhenReady(child, `${base}/postgres`, postgresLogFile(dir));
    const settings: Record<string, string> = {};
    let version: string;
    try {
      for (const name of Object.values(DATABASES)) await admin.query(`CREATE DATABASE ${name}`);
      for (const name of PG_SETTINGS) {
        settings[name] = String((await admin.query(`SHOW ${name}`)).rows[0]?.[name]);
      }
      version = String((await admin.query('SHOW server_version')).rows[0]?.server_version);
    } finally {
      await admin.end();
    }
    const urls = { hot: `${base}/${DATABASES.hot}`, memory: `${base}/${DATABASES.memory}` };
    return { urls, version, settings, pid: child.pid as number, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the product, Redis and PostgreSQL

/** Each counter's sum over its labels, from the product's /metrics. */
async function counters(product: Server, authorization: string,
  names: readonly string[]): Promise<Record<string, number>> {
  const response = await fetch(`${product.base}/metrics`, { headers: { authorization } });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`archive bench: GET /metrics answered ${response.status}: ` +
      text.slice(0, 300));
  }
  const out: Record<string, number> = {};
  for (const name of names) {
    out[name] = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))]
      .reduce((sum, m) => sum + Number(m[1]), 0);
  }
  return out;
}

const ARCHIVED_TOTAL = 'ledger_archive_records_total';
const ERRORS_TOTAL = 'ledger_archive_errors_total';

/** The journal's newest seq and the archive's positions noted in Redis (copied, freed). */
async function archiveState(stats: Redis, keys: LedgerKeys): Promise<{ head: number;
  archived: number; freed: number }> {
  const [top, [archived, freed]] = await Promise.all([
    stats.xrevrange(keys.journal(), '+', '-', 'COUNT', 1),
    stats.hmget(keys.positions(), ARCHIVE_NAME, `${ARCHIVE_NAME}:f`)]);
  // Stream ids are `0-<seq>`; seqs count records (exact as numbers far beyond any run).
  return { head: Number(top[0]?.[0].slice(2) ?? 0), archived: Number(archived ?? 0),
    freed: Number(freed ?? 0) };
}

/** Seconds until the archive has every committed record, or null past `timeoutMs`. */
async function caughtUp(stats: Redis, keys: LedgerKeys,
  timeoutMs = CAUGHT_UP_WAIT_MS): Promise<number | null> {
  const t0 = performance.now();
  for (;;) {
    const { head, archived } = await archiveState(stats, keys);
    if (archived >= head) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > timeoutMs) return null;
    await sleep(POSITION_SAMPLE_MS);
  }
}

/** MemoryInfo's figures, in bytes (or keys). */
export type MemoryFigure = Exclude<keyof MemoryInfo, 'memoryStats'>;

/** MEMORY STATS as name -> number; `db.0`'s pairs as `db.0.<name>`. */
async function memoryStats(stats: Redis): Promise<Map<string, number>> {
  const reply = (await stats.call('MEMORY', 'STATS')) as unknown[];
  const out = new Map<string, number>();
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const [name, value] = [String(reply[i]), reply[i + 1]];
    if (Array.isArray(value)) {
      for (let j = 0; j + 1 < value.length; j += 2) {
        out.set(`${name}.${String(value[j])}`, Number(value[j + 1]));
      }
    } else {
      out.set(name, Number(value));
    }
  }
  return out;
}

async function memoryInfo(stats: Redis): Promise<MemoryInfo> {
  const info = parseInfo(await stats.info('memory', 'keyspace'));
  const memory = await memoryStats(stats);
  const num = (key: string) => {
    const value = Number(info.get(key));
    if (!Number.isFinite(value)) throw new Error(`INFO has no numeric ${key}`);
    return value;
  };
  const db0 = /keys=(\d+)/.exec(info.get('db0') ?? '');
  return { usedMemory: num('used_memory'), dataset: num('used_memory_dataset'),
    overhead: num('used_memory_overhead'), scripts: num('used_memory_scripts'),
    mainTable: memory.get('db.0.overhead.hashtable.main') ?? 0,
    clients: memory.get('clients.normal') ?? 0,
    allocatorAllocated: num('allocator_allocated'), allocatorActive: num('allocator_active'),
    rss: num('used_memory_rss'), keys: Number(db0?.[1] ?? 0),
    memoryStats: Object.fromEntries(memory) };
}

/** Memory settles: client buffers drained, no AOF rewrite running. */
async function settledMemory(stats: Redis): Promise<MemoryInfo> {
  await sleep(500);
  await waitForRewrite(stats, 600_000);
  return memoryInfo(stats);
}

function groupOf(key: string, base: string): KeyGroup {
  if (!key.startsWith(base)) return 'other';
  const rest = key.slice(base.length);
  if (rest.startsWith('x:')) return 'buckets';
  if (rest.startsWith('a:')) return 'accounts';
  if (rest === 'j') return 'journal';
  if (rest === 'r') return 'rejections';
  if (rest === 'k') return 'pinned';
  return 'other';
}

/** Least squares of y on x: slope and intercept (null without two distinct x). */
function leastSquares(points: ReadonlyArray<[number, number]>): [number, number] | null {
  const n = points.length;
  if (n < 2) return null;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  return [slope, my - slope * mx];
}

/**
 * Every key's MEMORY USAGE (exact: SAMPLES 0), grouped; the buckets' entries and encodings. On
 * a connection of its own, closed after: its pipelines' buffers are not left in used_memory.
 */
async function keyBreakdown(url: string, keys: LedgerKeys): Promise<KeyBreakdown> {
  const stats = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    return await breakdownOn(stats, keys);
  } finally {
    stats.disconnect();
  }
}

async function breakdownOn(stats: Redis, keys: LedgerKeys): Promise<KeyBreakdown> {
  const base = `${keys.prefix}:${keys.tag}:`;
  const all: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await stats.scan(cursor, 'COUNT', 1000);
    cursor = next;
    all.push(...batch);
  } while (cursor !== '0');
  const groups = Object.fromEntries(KEY_GROUPS.map((g) => [g, { keys: 0, bytes: 0 }])) as
    Record<KeyGroup, KeyUsage>;
  const points: Array<[number, number]> = [];
  let listpack = 0;
  let hashtable = 0;
  let entries = 0;
  for (let i = 0; i < all.length; i += PIPELINE) {
    const chunk = all.slice(i, i + PIPELINE);
    const pipe = stats.pipeline();
    for (const key of chunk) {
      pipe.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
      if (groupOf(key, base) === 'buckets') pipe.hlen(key).object('ENCODING', key);
    }
    const replies = (await pipe.exec()) ?? [];
    let r = 0;
    for (const key of chunk) {
      const group = groupOf(key, base);
      const [usageError, usage] = replies[r++] ?? [];
      if (usageError) throw usageError;
      if (usage === null) { // gone since the SCAN (nothing writes here meanwhile)
        if (group === 'buckets') r += 2;
        continue;
      }
      groups[group].keys++;
      groups[group].bytes += Number(usage);
      if (group !== 'buckets') continue;
      const length = Number(replies[r++]?.[1] ?? 0);
      const encoding = String(replies[r++]?.[1] ?? '');
      entries += length;
      if (encoding === 'listpack') {
        listpack++;
        points.push([length, Number(usage)]);
      } else {
        hashtable++;
      }
    }
  }
  const fit = leastSquares(points);
  const [journalLength, rejectionsLength, pinnedLength] = await Promise.all([
    stats.xlen(keys.journal()), stats.xlen(keys.rejections()), stats.zcard(keys.pinned())]);
  return { groups, buckets: { listpack, hashtable, entries, bytesPerEntry: fit?.[0] ?? null,
    bytesPerKey: fit?.[1] ?? null }, journalLength, rejectionsLength, pinnedLength };
}

async function redisConfig(stats: Redis): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of REDIS_SETTINGS) {
    const reply = (await stats.config('GET', name)) as string[];
    out[name] = reply[1] ?? '?';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CPU around a stretch

interface Totals { redisS: number; serverS: number; postgresS: number; benchS: number;
  machineS: number; atMs: number }

async function totals(stats: Redis, product: Server, postgresPid: number): Promise<Totals> {
  const redisS = (await snapshot(stats)).cpuSeconds;
  const own = process.cpuUsage();
  return { redisS, serverS: treeCpuSeconds(product.pid), postgresS: treeCpuSeconds(postgresPid),
    benchS: (own.user + own.system) / 1e6, machineS: machineBusySeconds(),
    atMs: performance.now() };
}

function cores(a: Totals, b: Totals): ArchiveCores {
  const wallS = (b.atMs - a.atMs) / 1000;
  return { serverCores: (b.serverS - a.serverS) / wallS,
    redisCores: (b.redisS - a.redisS) / wallS,
    postgresCores: (b.postgresS - a.postgresS) / wallS,
    benchCores: (b.benchS - a.benchS) / wallS, machineCores: (b.machineS - a.machineS) / wallS };
}

// ---------------------------------------------------------------------------------------------
// 1. The hot path

interface Target { side: ArchiveSide; product: Server; redis: EmbeddedRedis; stats: Redis }

interface Context { s: ArchiveSettings; postgresPid: number; auth: string; keys: LedgerKeys }

async function measure(c: Context, t: Target, round: number,
  position: number): Promise<ArchiveSegment> {
  const on = t.side === 'on';
  await waitForRewrite(t.stats);
  const r0 = await snapshot(t.stats);
  const m0 = on ? await counters(t.product, c.auth, [ARCHIVED_TOTAL, ERRORS_TOTAL]) : null;
  const before = await totals(t.stats, t.product, c.postgresPid);
  const result = await runLoad({ url: `${t.product.base}/transfers`, method: 'POST',
    headers: c.s.headers, durationS: c.s.durationS, connections: c.s.connections,
    expectStatus: 201, body: transferBody(c.s.pool) });
  const after = await totals(t.stats, t.product, c.postgresPid);
  const [m1, state] = on ? await Promise.all([
    counters(t.product, c.auth, [ARCHIVED_TOTAL, ERRORS_TOTAL]),
    archiveState(t.stats, c.keys)]) : [null, null];
  const r1 = await snapshot(t.stats);
  const drainS = on ? await caughtUp(t.stats, c.keys) : null;
  const n = result.okRequests;
  const archived = m0 !== null && m1 !== null
    ? (m1[ARCHIVED_TOTAL] as number) - (m0[ARCHIVED_TOTAL] as number) : null;
  const segment: ArchiveSegment = { round, position, durationS: result.durationS, transfers: n,
    non2xx: result.non2xx, errors: result.errors, statusCodes: result.statusCodes,
    transfersPerS: n / result.durationS, p50Ms: result.p50Ms, p99Ms: result.p99Ms,
    serverCpuUsPerTransfer: n > 0 ? (after.serverS - before.serverS) * 1e6 / n : null,
    postgresCpuUsPerTransfer: n > 0 ? (after.postgresS - before.postgresS) * 1e6 / n : null,
    archivedPerS: archived === null ? null : archived / result.durationS,
    lagRecords: state === null ? null : state.head - state.archived, drainS,
    archiveErrors: m0 !== null && m1 !== null
      ? (m1[ERRORS_TOTAL] as number) - (m0[ERRORS_TOTAL] as number) : null,
    ...cores(before, after),
    aofRewriteDuring: r0.aofRewriting || r1.aofRewriting || r1.aofRewrites !== r0.aofRewrites };
  const bad = result.non2xx + result.errors > 0;
  console.error(`  round ${round} single ${t.side.padEnd(3)} ` +
    `${Math.round(segment.transfersPerS).toLocaleString('en-US').padStart(7)} transfers/s` +
    (on ? `, archived ${Math.round(segment.archivedPerS ?? 0).toLocaleString('en-US')}/s, ` +
      `not copied at the end ${segment.lagRecords}, caught up ${drainS === null
        ? `not within ${CAUGHT_UP_WAIT_MS / 1000} s` : `${drainS.toFixed(2)} s`} later` : '') +
    `; cores service ${segment.serverCores.toFixed(2)} Redis ${segment.redisCores.toFixed(2)} ` +
    `postgres ${segment.postgresCores.toFixed(2)} bench ${segment.benchCores.toFixed(2)}` +
    (bad ? `  (${result.non2xx} non-2xx, ${result.errors} errors: ` +
      `${JSON.stringify(result.statusCodes)})` : '') +
    (segment.archiveErrors ? `  [${segment.archiveErrors} archiver errors]` : '') +
    (segment.aofRewriteDuring ? '  [AOF rewrite]' : ''));
  return segment;
}

type Stops = Array<() => Promise<void>>;

/** Every promise's value; settled first, so that whatever started is in `stops`. */
async function settled<T extends unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }):
  Promise<T> {
  return (await Promise.allSettled(promises)).map((x) => {
    if (x.status === 'rejected') throw x.reason;
    return x.value;
  }) as T;
}

function sideResult(rounds: ArchiveSegment[]): ArchiveSideResult {
  return { rounds, median: medianOf(rounds, FIGURE_KEYS) };
}

const perRound = (a: readonly ArchiveSegment[], b: readonly ArchiveSegment[],
  key: 'transfersPerS' | 'serverCpuUsPerTransfer' = 'transfersPerS') =>
  median(a.map((x, i) => ratio(x[key], b[i]?.[key])));

async function hotPath(s: ArchiveSettings, postgres: ArchivePostgres,
  keys: LedgerKeys): Promise<ArchiveResult['hot']> {
  console.error(`  hot path: the product with the archiver and without, each on a Redis of ` +
    `its own, ${s.rounds} round(s) of ${s.durationS} s of single transfers`);
  const stops: Stops = [];
  try {
    const target = async (side: ArchiveSide): Promise<Target> => {
      const redis = await s.startRedis(join(s.dir, `hot-${side}`));
      const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
      stops.push(async () => {
        stats.disconnect();
        await redis.stop();
      });
      const product = await s.startProduct(side === 'on' ? 'archiveOn' : 'archiveOff',
        redis.url, s.dir, side === 'on' ? { LEDGER_ARCHIVE_URL: postgres.urls.hot,
          ...(s.yieldS === undefined ? {} : { LEDGER_ARCHIVE_YIELD_S: String(s.yieldS) }) }
          : {});
      stops.push(() => product.stop());
      return { side, product, redis, stats };
    };
    const [on, off] = await settled<[Target, Target]>([target('on'), target('off')]);
    const c: Context = { s, postgresPid: postgres.pid, auth: s.headers.authorization ?? '',
      keys };
    await Promise.all([on, off].map((t) => s.createAccounts(t.product, s.pool)));
    for (const t of [on, off]) {
      if (s.warmupS > 0) {
        await runLoad({ url: `${t.product.base}/transfers`, method: 'POST', headers: s.headers,
          durationS: s.warmupS, connections: s.connections, expectStatus: 201,
          body: transferBody(s.pool) });
      }
    }
    await caughtUp(on.stats, keys);
    const rounds: Record<ArchiveSide, ArchiveSegment[]> = { on: [], off: [] };
    for (let r = 1; r <= s.rounds; r++) {
      // Alternating which goes first, so that neither always follows the other.
      const order = r % 2 === 1 ? [on, off] : [off, on];
      for (const [i, t] of order.entries()) rounds[t.side].push(await measure(c, t, r, i + 1));
    }
    return { on: sideResult(rounds.on), off: sideResult(rounds.off),
      onOverOff: perRound(rounds.on, rounds.off),
      serverCpuOnOverOff: perRound(rounds.on, rounds.off, 'serverCpuUsPerTransfer') };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Memory and catch-up

/**
 * N transfers with UUIDv4 ids through the batch endpoint, `batchConnections` batches at a
 * time; the ids of those committed (every item must be: the accounts have no overdraft limit).
 */
async function fill(s: ArchiveSettings, product: Server): Promise<string[]> {
  const ids: string[] = [];
  let sent = 0;
  const worker = async () => {
    while (sent < s.transfers) {
      const size = Math.min(s.batchSize, s.transfers - sent);
      sent += size;
      const items = Array.from({ length: size }, () => transferItem(s.pool));
      const response = await fetch(`${product.base}/transfers/batch`, { method: 'POST',
        headers: s.headers, body: JSON.stringify({ transfers: items, atomic: false }) });
      const text = await response.text();
      if (response.status !== 200) {
        throw new Error(`archive bench: filling: POST /transfers/batch answered ` +
          `${response.status}: ${text.slice(0, 300)}`);
      }
      const results = (JSON.parse(text) as { results: Array<{ status?: unknown }> }).results;
      results.forEach((r, i) => {
        if (r.status !== 201) {
          throw new Error(`archive bench: filling: an item answered ${JSON.stringify(r)}`);
        }
        ids.push((items[i] as { id: string }).id);
      });
    }
  };
  await Promise.all(Array.from({ length: s.batchConnections }, worker));
  return ids;
}

async function catchUp(s: ArchiveSettings, postgres: ArchivePostgres, redis: EmbeddedRedis,
  stats: Redis, keys: LedgerKeys, stops: Stops): Promise<{ product: Server;
  result: Omit<ArchiveCatchUp, 'postgresRows' | 'postgresBytes'> }> {
  const { head } = await archiveState(stats, keys);
  await waitForRewrite(stats);
  const t0 = performance.now();
  const product = await s.startProduct('archiveCatchUp', redis.url, s.dir,
    { LEDGER_ARCHIVE_URL: postgres.urls.memory });
  stops.push(() => product.stop());
  const productStartS = (performance.now() - t0) / 1000;
  const auth = s.headers.authorization ?? '';
  const m0 = await counters(product, auth, [ERRORS_TOTAL]);
  let first: { atMs: number; archived: number } | undefined;
  let before: Totals | undefined;
  let copiedMs: number | undefined;
  let freedMs: number | undefined;
  while (performance.now() - t0 < CATCH_UP_TIMEOUT_MS) {
    const { archived, freed } = await archiveState(stats, keys);
    const atMs = performance.now();
    if (archived > 0 && first === undefined) {
      first = { atMs, archived };
      before = await totals(stats, product, postgres.pid);
    }
    if (archived >= head && copiedMs === undefined) copiedMs = atMs;
    // LEDGER_ARCHIVE_KEEP=1: the newest record stays.
    if (freed >= head - 1) {
      freedMs = atMs;
      break;
    }
    await sleep(POSITION_SAMPLE_MS);
  }
  const after = await totals(stats, product, postgres.pid);
  const m1 = await counters(product, auth, [ERRORS_TOTAL]);
  const since = (ms: number | undefined) => (ms === undefined || first === undefined ? null
    : (ms - first.atMs) / 1000);
  const copiedS = since(copiedMs);
  const freedS = since(freedMs);
  const records = first === undefined ? 0 : head - first.archived;
  const result = { backlog: head, productStartS,
    firstPageS: first === undefined ? null : (first.atMs - t0) / 1000, copiedS, freedS,
    recordsPerS: freedS !== null && freedS > 0 ? records / freedS : null,
    copiedPerS: copiedS !== null && copiedS > 0 ? records / copiedS : null,
    finished: freedMs !== undefined,
    archiveErrors: (m1[ERRORS_TOTAL] as number) - (m0[ERRORS_TOTAL] as number),
    ...cores(before ?? after, after) };
  console.error(`  catch-up: ${result.finished ? 'copied and freed' : '**not** finished with'} ` +
    `${head.toLocaleString('en-US')} records; the product up in ${productStartS.toFixed(1)} s, ` +
    `its first page ${result.firstPageS?.toFixed(2) ?? '—'} s after its start, then all ` +
    `copied in ${copiedS?.toFixed(1) ?? '—'} s and freed in ${freedS?.toFixed(1) ?? '—'} s: ` +
    `${Math.round(result.recordsPerS ?? 0).toLocaleString('en-US')} records/s; cores service ` +
    `${result.serverCores.toFixed(2)} Redis ${result.redisCores.toFixed(2)} postgres ` +
    `${result.postgresCores.toFixed(2)} bench ${result.benchCores.toFixed(2)} machine ` +
    `${result.machineCores.toFixed(2)}` +
    (result.archiveErrors > 0 ? `  [${result.archiveErrors} archiver errors]` : ''));
  return { product, result };
}

const perTransfer = (a: MemoryInfo, b: MemoryInfo, n: number,
  key: MemoryFigure = 'usedMemory') => (b[key] - a[key]) / n;

function showMemory(what: string, m: MemoryInfo, base: MemoryInfo | undefined, n: number) {
  const per = (key: MemoryFigure) => (base === undefined ? ''
    : ` (${perTransfer(base, m, n, key).toFixed(1)} B/transfer)`);
  console.error(`  ${what}: used_memory ${m.usedMemory.toLocaleString('en-US')}` +
    `${per('usedMemory')}, dataset ${m.dataset.toLocaleString('en-US')}${per('dataset')}, ` +
    `allocator ${m.allocatorAllocated.toLocaleString('en-US')}${per('allocatorAllocated')}, ` +
    `${m.keys.toLocaleString('en-US')} keys`);
}

// ---------------------------------------------------------------------------------------------
// 3. The checks

/** npm run audit's script, as a process with the service's environment. */
async function runAudit(s: ArchiveSettings, redisUrl: string,
  archiveUrl: string): Promise<NonNullable<ArchiveChecks['audit']>> {
  const t0 = performance.now();
  const child = track(spawn(process.execPath, ['--import', 'tsx',
    join(ROOT, 'scripts/audit.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...s.env, REDIS_URL: redisUrl, LEDGER_ARCHIVE_URL: archiveUrl,
      LEDGER_KEY_PREFIX: s.keyPrefix, LEDGER_NAME: s.ledgerName } }));
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), AUDIT_TIMEOUT_MS);
  const exitCode = await new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  clearTimeout(timer);
  const lines = output.trimEnd().split('\n');
  const audit = { exitCode, seconds: (performance.now() - t0) / 1000,
    lastLines: lines.slice(-10) };
  console.error(`  audit (scripts/audit.ts): exit ${exitCode} after ` +
    `${audit.seconds.toFixed(1)} s: ${lines.slice(-3).join(' | ')}`);
  return audit;
}

/**
 * Each id in the index: its compact field '' (archived), else its own field and a seq (still in
 * Redis, a newest record kept); the second lookup only for ids the first did not find.
 */
async function checkIndex(stats: Redis, keys: LedgerKeys,
  ids: readonly string[]): Promise<ArchiveChecks['index']> {
  const t0 = performance.now();
  const lookup = async (list: readonly string[], field: (id: string) => string | Buffer,
    found: (reply: unknown) => boolean): Promise<string[]> => {
    const notFound: string[] = [];
    for (let i = 0; i < list.length; i += CHECK_CHUNK) {
      const chunk = list.slice(i, i + CHECK_CHUNK);
      const pipe = stats.pipeline();
      for (const id of chunk) pipe.hget(keys.transferBucket(id), field(id));
      const replies = (await pipe.exec()) ?? [];
      chunk.forEach((id, j) => {
        if (!found(replies[j]?.[1])) notFound.push(id);
      });
    }
    return notFound;
  };
  const notArchived = await lookup(ids, (id) => {
    const compact = compactId(id);
    if (compact === undefined) throw new Error(`archive bench: ${id} is not a UUID`);
    return compact;
  }, (reply) => reply === '');
  const missingIds = await lookup(notArchived, (id) => id,
    (reply) => typeof reply === 'string' && /^[0-9]+$/.test(reply));
  const index = { ids: ids.length, archived: ids.length - notArchived.length,
    inRedis: notArchived.length - missingIds.length, missing: missingIds.length,
    missingIds: missingIds.slice(0, LIST_MAX), seconds: (performance.now() - t0) / 1000 };
  console.error(`  id index: ${index.archived.toLocaleString('en-US')} archived, ` +
    `${index.inRedis} in Redis, ${index.missing} missing of ` +
    `${ids.length.toLocaleString('en-US')} ids (${index.seconds.toFixed(1)} s)`);
  return index;
}

async function checkPostgres(url: string, ledger: string,
  ids: readonly string[]): Promise<ArchiveChecks['postgres']> {
  const t0 = performance.now();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let found = 0;
  try {
    for (let i = 0; i < ids.length; i += CHECK_CHUNK) {
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM ' +
        'ledger.transfers WHERE ledger = $1 AND id = ANY($2::text[])',
      [ledger, ids.slice(i, i + CHECK_CHUNK)]);
      found += rows[0]?.n ?? 0;
    }
  } finally {
    await client.end();
  }
  const result = { ids: ids.length, found, seconds: (performance.now() - t0) / 1000 };
  console.error(`  PostgreSQL: ${found.toLocaleString('en-US')} of ` +
    `${ids.length.toLocaleString('en-US')} ids in ledger.transfers ` +
    `(${result.seconds.toFixed(1)} s)`);
  return result;
}

/** GET /transfers/{id} of `count` ids drawn at random (without repeats). */
async function readBack(s: ArchiveSettings, product: Server,
  ids: readonly string[]): Promise<ArchiveChecks['reads']> {
  const pool = [...ids];
  const count = Math.min(s.reads, pool.length);
  for (let i = 0; i < count; i++) {
    const j = i + randomInt(pool.length - i);
    [pool[i], pool[j]] = [pool[j] as string, pool[i] as string];
  }
  const sample = pool.slice(0, count);
  const latencies = new Samples();
  const failures: string[] = [];
  let ok = 0;
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < sample.length) {
      const id = sample[next++] as string;
      const started = performance.now();
      const response = await fetch(`${product.base}/transfers/${id}`,
        { headers: { authorization: s.headers.authorization ?? '' } });
      const text = await response.text();
      latencies.push(performance.now() - started);
      let same = false;
      try {
        same = (JSON.parse(text) as { id?: unknown }).id === id;
      } catch {
        // not JSON: a failure below
      }
      if (response.status === 200 && same) ok++;
      else failures.push(`${id}: ${response.status} ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: READ_CONNECTIONS }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = latencies.sorted();
  const reads = { requested: count, ok, failures: failures.slice(0, LIST_MAX), seconds,
    perS: count / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
  console.error(`  read back: ${ok.toLocaleString('en-US')} of ${count.toLocaleString('en-US')} ` +
    `GET /transfers/{id} answered 200 with the id, ${Math.round(reads.perS)}/s, p50 ` +
    `${reads.p50Ms.toFixed(2)} ms p99 ${reads.p99Ms.toFixed(2)} ms`);
  return reads;
}

// ---------------------------------------------------------------------------------------------
// The section

async function memoryAndCatchUp(s: ArchiveSettings, postgres: ArchivePostgres,
  keys: LedgerKeys): Promise<{ memory: ArchiveMemory; catchUp: ArchiveCatchUp;
  checks: ArchiveChecks }> {
  const stops: Stops = [];
  try {
    const redis = await s.startRedis(join(s.dir, 'memory'));
    const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    stops.push(async () => {
      stats.disconnect();
      await redis.stop();
    });
    const config = await redisConfig(stats);
    // Memory is read at each point with no product connected: their clients' buffers are not
    // a transfer's. So the accounts' product stops before the first point, the filler's before
    // the second, the archiver's before the third.
    const accounts = await s.startProduct('archiveFill', redis.url, s.dir, {});
    stops.push(() => accounts.stop());
    await s.createAccounts(accounts, s.pool);
    await accounts.stop();
    const baseline = await settledMemory(stats);
    const keysBaseline = await keyBreakdown(redis.url, keys);
    showMemory('after the accounts', baseline, undefined, s.transfers);
    const filler = await s.startProduct('archiveFill', redis.url, s.dir, {});
    stops.push(() => filler.stop());
    const t0 = performance.now();
    const ids = await fill(s, filler);
    const fillS = (performance.now() - t0) / 1000;
    await filler.stop();
    const n = ids.length;
    const filled = await settledMemory(stats);
    const keysFilled = await keyBreakdown(redis.url, keys);
    console.error(`  filled: ${n.toLocaleString('en-US')} transfers in ${fillS.toFixed(1)} s ` +
      `(batches of ${s.batchSize}, ${s.batchConnections} at a time)`);
    showMemory('before archiving', filled, baseline, n);
    const { product, result } = await catchUp(s, postgres, redis, stats, keys, stops);
    await product.stop();
    const archived = await settledMemory(stats);
    const keysArchived = await keyBreakdown(redis.url, keys);
    showMemory('archived and freed', archived, baseline, n);
    const client = new pg.Client({ connectionString: postgres.urls.memory });
    await client.connect();
    let postgresRows = 0;
    let postgresBytes = 0;
    try {
      postgresRows = Number((await client.query('SELECT count(*) AS n FROM ledger.transfers ' +
        'WHERE ledger = $1', [keys.ledger])).rows[0]?.n ?? 0);
      postgresBytes = Number((await client.query('SELECT pg_database_size(current_database()) ' +
        'AS n')).rows[0]?.n ?? 0);
    } finally {
      await client.end();
    }
    const memory: ArchiveMemory = { transfers: n, goalSize: n >= MEMORY_GOAL_TRANSFERS,
      idLength: ids[0]?.length ?? 0, accounts: s.pool.length, redisConfig: config, fillS,
      fillTransfersPerS: n / fillS, baseline, filled, archived,
      beforeBytesPerTransfer: perTransfer(baseline, filled, n),
      afterBytesPerTransfer: perTransfer(baseline, archived, n),
      afterDatasetBytesPerTransfer: perTransfer(baseline, archived, n, 'dataset'),
      afterAllocatorBytesPerTransfer: perTransfer(baseline, archived, n, 'allocatorAllocated'),
      keysBaseline, keysFilled, keysArchived };
    const reader = await s.startProduct('archiveRead', redis.url, s.dir,
      { LEDGER_ARCHIVE_URL: postgres.urls.memory });
    stops.push(() => reader.stop());
    const checks: ArchiveChecks = {
      index: await checkIndex(stats, keys, ids),
      postgres: await checkPostgres(postgres.urls.memory, keys.ledger, ids),
      reads: await readBack(s, reader, ids),
      audit: s.audit ? await runAudit(s, redis.url, postgres.urls.memory) : null,
    };
    return { memory, catchUp: { ...result, postgresRows, postgresBytes }, checks };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}

export async function measureArchive(s: ArchiveSettings): Promise<ArchiveSection> {
  const bin = findPostgresBin();
  if (bin === null) {
    return { available: false, appendfsync: s.appendfsync,
      reason: `not available: ${POSTGRES_INSTALL_HINT}` };
  }
  console.error(`\narchive: a PostgreSQL of its own; the product with the archiver and ` +
    `without (appendfsync ${s.appendfsync}); then ${s.transfers.toLocaleString('en-US')} ` +
    'transfers with UUID ids, archived and freed: memory before and after, and the catch-up\'s ' +
    'rate; then the archive checked');
  const t0 = performance.now();
  const postgres = await startArchivePostgres(bin);
  try {
    const startS = (performance.now() - t0) / 1000;
    console.error(`  PostgreSQL ${postgres.version} up in ${startS.toFixed(1)} s ` +
      `(${Object.entries(postgres.settings).map(([k, v]) => `${k}=${v}`).join(', ')})`);
    const keys = ledgerKeys(s.keyPrefix, s.ledgerName);
    const hot = await hotPath(s, postgres, keys);
    const { memory, catchUp, checks } = await memoryAndCatchUp(s, postgres, keys);
    return { available: true, appendfsync: s.appendfsync, connections: s.connections,
      batchConnections: s.batchConnections, batchSize: s.batchSize, accounts: s.pool.length,
      postgres: { version: postgres.version, settings: postgres.settings, startS },
      intervalMs: limits.ARCHIVE_INTERVAL_MS, pageRecords: limits.ARCHIVE_PAGE_RECORDS_MAX,
      chunkRecords: limits.JOURNAL_READ_CHUNK_MAX,
      keepDefault: limits.ARCHIVE_KEEP_RECORDS_DEFAULT,
      yieldS: s.yieldS ?? limits.ARCHIVE_YIELD_LAG_S_DEFAULT, hot, memory, catchUp,
      catchUpOverSingle: ratio(catchUp.recordsPerS, hot.off.median.transfersPerS), checks };
  } finally {
    await postgres.stop();
  }
}
