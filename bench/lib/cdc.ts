/**
 * Change data out (LEDGER_CDC_AMQP_URL, src/cdc/): what publishing every committed record to a
 * broker costs the service, and whether it keeps up. A RabbitMQ of the bench's own
 * (test/helpers/rabbitmq.ts: own temp dir and ports) and, in the bench process, a consumer that
 * drains a durable queue bound `#` to the service's exchange (noAck: the cheapest consumer, so
 * that it takes as little as it can from the load generator beside it).
 * 1. Single transfers, (c)'s load, and batches, (d)'s load, against the product twice: with
 *    the publisher (`on`) and without (`off`), each on a redis-server of its own started as
 *    (c)'s (one Redis for both would have the `on` publisher publish the `off` product's
 *    records too). Rounds interleave the two, alternating which goes first (position bias);
 *    medians are taken (the `on` Redis also holds the catch-up's ledger, below, idle during
 *    the rounds). After each `on` segment: how many committed records were not yet
 *    published (the journal's head minus the publisher's saved position, read from Redis; and
 *    the service's ledger_cdc_lag_records), and how long it took to publish them; the next
 *    segment starts once it has.
 * 2. Catch-up, after the rounds, by the `on` product: a ledger of its own (`cdc-backlog`) with
 *    a backlog of records, committed before the rounds while the bench held that ledger's
 *    publisher lock (`<prefix>:{<ledger>}:lock:cdc`, the lock another instance holds while it
 *    publishes the ledger: src/cdc/publisher.ts), so the service published none of them; the
 *    bench then lets go and times the service publishing the whole backlog, from its first
 *    page confirmed to its last. No restart is measured, no broker outage: publishing alone.
 *    (A product of its own would cost the smoke run another start after the broker's.)
 * Both are set against the batch endpoint's peak (its committed transfers/s, the higher of the
 * `on` and `off` medians): the publisher should keep up with the fastest way in.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { Redis } from 'ioredis';
import { CDC_FOLLOWER } from '../../src/cdc/publisher.js';
import { limits } from '../../src/config/limits.js';
import { type LedgerKeys, ledgerKeys } from '../../src/ledger/keys.js';
import type { EmbeddedRedis } from '../../src/redis/embedded.js';
import { declareExchange } from '../../test/cdc/consumer.js';
import { findRabbitmqServer, RABBITMQ_INSTALL_HINT, startBroker,
  type TestBroker } from '../../test/helpers/rabbitmq.js';
import { batchBody, type LoadResult, type LoadSpec, runLoad, transferBody } from './load.js';
import { cpuSeconds, machineBusySeconds, type Server, treeCpuSeconds } from './processes.js';
import { snapshot, waitForRewrite } from './redis-stats.js';
import { medianOf } from './results.js';
import { median, ratio } from './stats.js';

/**
 * run.ts's product variants for this section: the broker's address is given when it has
 * started, so the environment here is empty and the section passes the rest.
 */
export const CDC_VARIANTS = ['cdcOn', 'cdcOff'] as const;
export type CdcVariant = (typeof CDC_VARIANTS)[number];
export const CDC_VARIANT_ENV: Record<CdcVariant, Record<string, string>> = {
  cdcOn: {}, cdcOff: {} };

/** The catch-up's ledger (POST /ledgers), beside the default one the rounds use. */
export const BACKLOG_LEDGER = 'cdc-backlog';
/** The bench's consumer queue, bound `#`: every message, so nothing goes to `.unrouted`. */
export const DRAIN_QUEUE = 'bench.cdc.all';
/** A bound on waiting for the publisher to catch up (it takes well under a second at (c)'s). */
const CATCH_UP_WAIT_MS = 120_000;
/** A bound on the catch-up measurement itself: at 1,000 records/s, 100,000 take 100 s. */
const CATCH_UP_TIMEOUT_MS = 600_000;
/**
 * How often the catch-up reads the publisher's position. A HGET: nothing for Redis, and fine
 * enough that a page (250 records, a few ms) is seen by the sampler within one or two pages.
 */
const POSITION_SAMPLE_MS = 5;
/** The bench's hold on the catch-up ledger's lock: longer than any run; it is released. */
const BENCH_LOCK_TTL_MS = 3_600_000;

export interface CdcSettings {
  appendfsync: 'always' | 'everysec';
  durationS: number;
  rounds: number;
  warmupS: number;
  connections: number;
  batchConnections: number;
  batchSize: number;
  /** Committed records the catch-up starts with (BENCH_CDC_BACKLOG). */
  backlog: number;
  pool: readonly string[];
  /** Content type and an API key with the `write`, `metrics` and `admin` scopes. */
  headers: Record<string, string>;
  /** LEDGER_CDC_EXCHANGE as the product is given it. */
  exchange: string;
  /** LEDGER_KEY_PREFIX and LEDGER_NAME as the product has them: the ledgers' keys. */
  keyPrefix: string;
  ledgerName: string;
  startRedis: (dir: string) => Promise<EmbeddedRedis>;
  /** run.ts's startProduct in the variant, with this Redis and extra environment; stopped here. */
  startProduct: (variant: CdcVariant, redisUrl: string, dir: string,
    env: Record<string, string>) => Promise<Server>;
  createAccounts: (product: Server, ids: readonly string[]) => Promise<void>;
  /** Removed by the caller. */
  dir: string;
}

/** What one segment (or the catch-up) kept busy: CPU seconds per second, as run.ts's Figures. */
export interface CdcCores {
  serverCores: number;
  redisCores: number;
  /** The broker's VM (beam.smp). */
  brokerCores: number;
  /** The bench process: the load generator and the consumer. */
  benchCores: number;
  machineCores: number;
}

export interface CdcFigures extends CdcCores {
  /** Committed transfers per second (a batch: its items answered 201). */
  transfersPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** `on`: messages the broker confirmed per second (ledger_cdc_published_total). */
  publishedPerS: number | null;
  /** `on`: committed records not yet published when the load stopped (Redis: head − position). */
  lagRecords: number | null;
  /** `on`: seconds from the load's end until every record was published. */
  drainS: number | null;
  /**
   * The service's CPU (its process tree, /proc) ÷ committed transfers, over the load alone: what
   * publishing adds per transfer, whatever share of the machine's cores the service got.
   */
  serverCpuUsPerTransfer: number | null;
  /** The broker's CPU ÷ committed transfers, over the load alone. */
  brokerCpuUsPerTransfer: number | null;
}

const FIGURE_KEYS: ReadonlyArray<keyof CdcFigures> = ['transfersPerS', 'p50Ms', 'p99Ms',
  'publishedPerS', 'lagRecords', 'drainS', 'serverCpuUsPerTransfer', 'brokerCpuUsPerTransfer',
  'serverCores', 'redisCores', 'brokerCores', 'benchCores', 'machineCores'];

export type CdcLoad = 'single' | 'batch';
export type CdcSide = 'on' | 'off';

export interface CdcSegment extends CdcFigures,
  Pick<LoadResult, 'durationS' | 'non2xx' | 'errors' | 'statusCodes' | 'itemStatuses'> {
  round: number;
  /** 1: first of the pair in its round, 2: second. */
  position: number;
  transfers: number;
  /** `on`: ledger_cdc_published_total's increase over the segment. */
  published: number | null;
  /** `on`: the service's gauges when the load stopped (set after each publishing pass). */
  lagRecordsMetric: number | null;
  lagSecondsMetric: number | null;
  /** `on`: ledger_cdc_errors_total's increase (every reason). */
  cdcErrors: number | null;
  aofRewriteDuring: boolean;
}

export interface CdcSideResult { rounds: CdcSegment[]; median: CdcFigures }

/** Cores: from the first page saved to the last. */
export interface CdcCatchUp extends CdcCores {
  /** The ledger it publishes (BACKLOG_LEDGER). */
  ledger: string;
  /** Records committed before the publisher was let go: the journal's head. */
  backlog: number;
  /** Filling it: batches of (d), the publisher held off. */
  fillS: number;
  /**
   * From the bench's release of the lock to the first page confirmed and saved: mostly the
   * publisher's wait before it tries again a lock it found taken (src/ledger/follower.ts).
   */
  firstPageS: number | null;
  /** From the first page saved to the last. */
  durationS: number | null;
  /** Records published after the first page ÷ durationS: the publisher's steady rate. */
  recordsPerS: number | null;
  /** From the release to the last page: the whole backlog, the publisher's start included. */
  totalS: number | null;
  finished: boolean;
  /** ledger_cdc_published_total at the end (a page sent again counts again). */
  published: number;
  cdcErrors: number;
}

export interface CdcResult {
  available: true;
  appendfsync: string;
  connections: number;
  batchConnections: number;
  batchSize: number;
  accounts: number;
  exchange: string;
  brokerVersion: string;
  /** From startBroker() to AMQP answering. */
  brokerStartS: number;
  /** The publisher's page (JOURNAL_READ_CHUNK_MAX) and pass interval (CDC_INTERVAL_MS). */
  pageSize: number;
  intervalMs: number;
  single: { on: CdcSideResult; off: CdcSideResult;
    /** Median over rounds of each round's on ÷ off transfers/s. */
    onOverOff: number | null;
    /** Median over rounds of each round's on ÷ off service CPU per transfer. */
    serverCpuOnOverOff: number | null };
  batch: { on: CdcSideResult; off: CdcSideResult; onOverOff: number | null;
    /** The higher of the two medians' committed transfers/s. */
    peakTransfersPerS: number | null;
    /** The `on` median of confirmed messages/s while its batches ran ÷ the peak. */
    publishedOverPeak: number | null };
  catchUp: CdcCatchUp;
  /** catchUp.recordsPerS ÷ batch.peakTransfersPerS. */
  catchUpOverPeak: number | null;
  /** Messages the bench's consumer received, and left in its queue at the end. */
  consumed: number;
  queueDepth: number;
}

export type CdcSection = CdcResult
  | { available: false; appendfsync: string; reason: string };

// ---------------------------------------------------------------------------------------------
// The consumer, the product's counters, the publisher's position

interface Drain {
  readonly version: string;
  consumed(): number;
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** A durable queue bound `#` to the exchange (declared as the service declares it), drained. */
async function drain(url: string, exchange: string): Promise<Drain> {
  const connection: ChannelModel = await connect(url);
  connection.on('error', () => {});
  try {
    const channel: Channel = await connection.createChannel();
    channel.on('error', () => {});
    await declareExchange(channel, exchange);
    await channel.assertQueue(DRAIN_QUEUE, { durable: true });
    await channel.bindQueue(DRAIN_QUEUE, exchange, '#');
    let count = 0;
    await channel.consume(DRAIN_QUEUE, (m) => { if (m !== null) count++; }, { noAck: true });
    const version = connection.connection.serverProperties.version;
    return {
      version: typeof version === 'string' ? version : 'unknown',
      consumed: () => count,
      depth: async () => (await channel.checkQueue(DRAIN_QUEUE)).messageCount,
      close: () => connection.close().catch(() => {}),
    };
  } catch (error) {
    await connection.close().catch(() => {});
    throw error;
  }
}

interface CdcCounters { published: number; lagRecords: number; lagSeconds: number;
  errors: number }

async function cdcCounters(product: Server, authorization: string): Promise<CdcCounters> {
  const response = await fetch(`${product.base}/metrics`, { headers: { authorization } });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`cdc bench: GET /metrics answered ${response.status}: ${text.slice(0, 300)}`);
  }
  const values = (name: string) => [...text.matchAll(
    new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
  const one = (name: string) => values(name)[0] ?? Number.NaN;
  return { published: one('ledger_cdc_published_total'),
    lagRecords: one('ledger_cdc_lag_records'), lagSeconds: one('ledger_cdc_lag_seconds'),
    errors: values('ledger_cdc_errors_total').reduce((t, v) => t + v, 0) };
}

/** The journal's newest seq and the publisher's saved position, straight from Redis. */
async function journalState(stats: Redis, keys: LedgerKeys): Promise<{ head: number;
  position: number }> {
  const [top, position] = await Promise.all([
    stats.xrevrange(keys.journal(), '+', '-', 'COUNT', 1),
    stats.hget(keys.positions(), CDC_FOLLOWER)]);
  // Stream ids are `0-<seq>`; seqs count records (exact as numbers far beyond any run).
  return { head: Number(top[0]?.[0].slice(2) ?? 0), position: Number(position ?? 0) };
}

/** Seconds until the publisher has every committed record, or null past `timeoutMs`. */
async function caughtUp(stats: Redis, keys: LedgerKeys,
  timeoutMs = CATCH_UP_WAIT_MS): Promise<number | null> {
  const t0 = performance.now();
  for (;;) {
    const { head, position } = await journalState(stats, keys);
    if (position >= head) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > timeoutMs) return null;
    await sleep(POSITION_SAMPLE_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// CPU around a segment

interface Target { side: CdcSide; product: Server; redis: EmbeddedRedis; stats: Redis }

interface Totals { redisS: number; serverS: number; brokerS: number; benchS: number;
  machineS: number; atMs: number }

async function totals(t: Pick<Target, 'product' | 'stats'>, brokerPid: number | undefined):
  Promise<Totals> {
  const redisS = (await snapshot(t.stats)).cpuSeconds;
  const own = process.cpuUsage();
  let brokerS = Number.NaN;
  try {
    if (brokerPid !== undefined) brokerS = cpuSeconds(brokerPid);
  } catch {
    // the broker is gone: its figure is missing, not wrong
  }
  return { redisS, serverS: treeCpuSeconds(t.product.pid), brokerS,
    benchS: (own.user + own.system) / 1e6, machineS: machineBusySeconds(),
    atMs: performance.now() };
}

function cores(a: Totals, b: Totals): CdcCores {
  const wallS = (b.atMs - a.atMs) / 1000;
  return { serverCores: (b.serverS - a.serverS) / wallS, redisCores: (b.redisS - a.redisS) / wallS,
    brokerCores: (b.brokerS - a.brokerS) / wallS, benchCores: (b.benchS - a.benchS) / wallS,
    machineCores: (b.machineS - a.machineS) / wallS };
}

// ---------------------------------------------------------------------------------------------
// Segments

function spec(s: CdcSettings, product: Server, load: CdcLoad, durationS: number): LoadSpec {
  return load === 'single'
    ? { url: `${product.base}/transfers`, method: 'POST', headers: s.headers, durationS,
      connections: s.connections, expectStatus: 201, body: transferBody(s.pool) }
    : { url: `${product.base}/transfers/batch`, method: 'POST', headers: s.headers, durationS,
      connections: s.batchConnections, expectStatus: 200, countItems: true,
      body: batchBody(s.pool, s.batchSize, false) };
}

/** Transfers committed: single, answered 201; batch, its items whose status is 201. */
const committed = (load: CdcLoad, r: LoadResult) => (load === 'single' ? r.okRequests
  : r.itemStatuses?.['201'] ?? 0);

interface Context { s: CdcSettings; brokerPid: number | undefined; auth: string;
  /** The default ledger's keys: the rounds'. */
  keys: LedgerKeys }

async function measure(c: Context, t: Target, load: CdcLoad, round: number,
  position: number): Promise<CdcSegment> {
  const on = t.side === 'on';
  await waitForRewrite(t.stats);
  const [r0, m0] = [await snapshot(t.stats), on ? await cdcCounters(t.product, c.auth) : null];
  const before = await totals(t, c.brokerPid);
  const result = await runLoad(spec(c.s, t.product, load, c.s.durationS));
  const after = await totals(t, c.brokerPid);
  const [m1, state] = on ? await Promise.all([cdcCounters(t.product, c.auth),
    journalState(t.stats, c.keys)]) : [null, null];
  const r1 = await snapshot(t.stats);
  const drainS = on ? await caughtUp(t.stats, c.keys) : null;
  const n = committed(load, result);
  const published = m0 !== null && m1 !== null ? m1.published - m0.published : null;
  const segment: CdcSegment = { round, position, durationS: result.durationS, transfers: n,
    non2xx: result.non2xx, errors: result.errors, statusCodes: result.statusCodes,
    ...(result.itemStatuses ? { itemStatuses: result.itemStatuses } : {}),
    transfersPerS: n / result.durationS, p50Ms: result.p50Ms, p99Ms: result.p99Ms,
    published, publishedPerS: published === null ? null : published / result.durationS,
    lagRecords: state === null ? null : state.head - state.position, drainS,
    serverCpuUsPerTransfer: n > 0 ? (after.serverS - before.serverS) * 1e6 / n : null,
    brokerCpuUsPerTransfer: n > 0 ? (after.brokerS - before.brokerS) * 1e6 / n : null,
    lagRecordsMetric: m1?.lagRecords ?? null, lagSecondsMetric: m1?.lagSeconds ?? null,
    cdcErrors: m0 !== null && m1 !== null ? m1.errors - m0.errors : null,
    ...cores(before, after),
    aofRewriteDuring: r0.aofRewriting || r1.aofRewriting || r1.aofRewrites !== r0.aofRewrites };
  // A batch item not committed (any status but 201) is as suspect as a failed request.
  const items = Object.values(result.itemStatuses ?? {}).reduce((x, v) => x + v, 0);
  const bad = result.non2xx + result.errors > 0 || (load === 'batch' && items !== n);
  console.error(`  round ${round} ${load.padEnd(6)} ${t.side.padEnd(3)} ` +
    `${Math.round(segment.transfersPerS).toLocaleString('en-US').padStart(7)} transfers/s` +
    (on ? `, published ${Math.round(segment.publishedPerS ?? 0).toLocaleString('en-US')}/s, ` +
      `unpublished at the end ${segment.lagRecords} (gauge ${segment.lagRecordsMetric}), ` +
      `caught up ${drainS === null ? 'not within ' + CATCH_UP_WAIT_MS / 1000 + ' s'
        : `${drainS.toFixed(2)} s`} later` : '') +
    `; cores service ${segment.serverCores.toFixed(2)} Redis ${segment.redisCores.toFixed(2)} ` +
    `broker ${segment.brokerCores.toFixed(2)} bench ${segment.benchCores.toFixed(2)}` +
    (bad ? `  (${result.non2xx} non-2xx, ${result.errors} errors: ` +
      `${JSON.stringify(result.statusCodes)} ${JSON.stringify(result.itemStatuses ?? {})})` : '') +
    (segment.cdcErrors ? `  [${segment.cdcErrors} publisher errors]` : '') +
    (segment.aofRewriteDuring ? '  [AOF rewrite]' : ''));
  return segment;
}

// ---------------------------------------------------------------------------------------------
// Catch-up

/**
 * The bench takes the ledger's publisher lock as another instance would (the key lock-1.lua
 * keeps: a token, with a lease), so that the service's publisher finds the ledger taken and
 * publishes nothing while the backlog is committed.
 */
async function holdPublisherLock(stats: Redis, keys: LedgerKeys): Promise<string> {
  const token = randomBytes(16).toString('hex');
  const set = await stats.set(keys.lock(CDC_FOLLOWER), token, 'PX', BENCH_LOCK_TTL_MS, 'NX');
  if (set !== 'OK') throw new Error('cdc bench: the catch-up ledger\'s publisher lock was taken');
  return token;
}

interface Backlog { keys: LedgerKeys; token: string; fillS: number }

/**
 * The catch-up's ledger, its lock held by the bench before it exists, its accounts, and its
 * backlog: (d)'s batches of committed transfers.
 */
async function prepareBacklog(s: CdcSettings, product: Server, stats: Redis): Promise<Backlog> {
  const keys = ledgerKeys(s.keyPrefix, BACKLOG_LEDGER);
  const token = await holdPublisherLock(stats, keys);
  const response = await fetch(`${product.base}/ledgers`, { method: 'POST', headers: s.headers,
    body: JSON.stringify({ name: BACKLOG_LEDGER }) });
  const text = await response.text();
  if (response.status !== 201) {
    throw new Error(`cdc bench: POST /ledgers answered ${response.status}: ${text.slice(0, 300)}`);
  }
  const base = `${product.base}/ledgers/${BACKLOG_LEDGER}`;
  await s.createAccounts({ ...product, base }, s.pool);
  const t0 = performance.now();
  const size = Math.min(s.batchSize, s.backlog);
  const result = await runLoad({ url: `${base}/transfers/batch`, method: 'POST',
    headers: s.headers, amount: Math.ceil(s.backlog / size), connections: s.batchConnections,
    expectStatus: 200, countItems: true, body: batchBody(s.pool, size, false) });
  if (result.non2xx + result.errors > 0) {
    throw new Error(`cdc bench: filling the backlog: ${result.non2xx} non-2xx, ` +
      `${result.errors} errors ${JSON.stringify(result.statusCodes)}`);
  }
  const fillS = (performance.now() - t0) / 1000;
  const { head, position } = await journalState(stats, keys);
  if (position !== 0) {
    throw new Error(`cdc bench: the publisher published ${position} records of ` +
      `${BACKLOG_LEDGER} while the bench held its lock`);
  }
  console.error(`  catch-up: ${head.toLocaleString('en-US')} records committed to ` +
    `${BACKLOG_LEDGER} in ${fillS.toFixed(1)} s, the publisher held off`);
  return { keys, token, fillS };
}

async function catchUp(c: Context, t: Target, backlog: Backlog): Promise<CdcCatchUp> {
  const { keys, token } = backlog;
  const { head } = await journalState(t.stats, keys);
  await waitForRewrite(t.stats);
  const m0 = await cdcCounters(t.product, c.auth);
  // Released as its holder releases it (lock-1.lua: compare, then delete).
  const released = await t.stats.eval('if redis.call("GET", KEYS[1]) == ARGV[1] then ' +
    'return redis.call("DEL", KEYS[1]) end return 0', 1, keys.lock(CDC_FOLLOWER), token);
  if (released !== 1) throw new Error('cdc bench: the catch-up lock was no longer the bench\'s');
  const t0 = performance.now();
  let first: { atMs: number; position: number } | undefined;
  // CPU from the first page on: before it the publisher only waits to try the lock again.
  let before: Totals | undefined;
  let doneMs: number | undefined;
  while (performance.now() - t0 < CATCH_UP_TIMEOUT_MS) {
    const position = Number(await t.stats.hget(keys.positions(), CDC_FOLLOWER) ?? 0);
    const atMs = performance.now();
    if (position > 0 && first === undefined) {
      first = { atMs, position };
      before = await totals(t, c.brokerPid);
    }
    if (position >= head) {
      doneMs = atMs;
      break;
    }
    await sleep(POSITION_SAMPLE_MS);
  }
  const after = await totals(t, c.brokerPid);
  const m1 = await cdcCounters(t.product, c.auth);
  const finished = doneMs !== undefined;
  const durationS = finished && first !== undefined ? ((doneMs as number) - first.atMs) / 1000
    : null;
  const result: CdcCatchUp = { ledger: BACKLOG_LEDGER, backlog: head, fillS: backlog.fillS,
    firstPageS: first === undefined ? null : (first.atMs - t0) / 1000, durationS,
    recordsPerS: durationS !== null && first !== undefined && durationS > 0
      ? (head - first.position) / durationS : null,
    totalS: finished ? ((doneMs as number) - t0) / 1000 : null, finished,
    published: m1.published - m0.published, cdcErrors: m1.errors - m0.errors,
    ...cores(before ?? after, after) };
  console.error(`  catch-up: ${finished ? 'published' : '**not** published'} ` +
    `${head.toLocaleString('en-US')} records in ${result.totalS?.toFixed(2) ?? '—'} s ` +
    `(first page after ${result.firstPageS?.toFixed(2) ?? '—'} s), ` +
    `${Math.round(result.recordsPerS ?? 0).toLocaleString('en-US')} records/s after it; ` +
    `cores service ${result.serverCores.toFixed(2)} Redis ${result.redisCores.toFixed(2)} ` +
    `broker ${result.brokerCores.toFixed(2)} bench ${result.benchCores.toFixed(2)}` +
    (result.cdcErrors > 0 ? `  [${result.cdcErrors} publisher errors]` : ''));
  return result;
}

// ---------------------------------------------------------------------------------------------
// The section

type Stops = Array<() => Promise<void>>;

/** Every promise's value; settled first, so that whatever started is in `stops`. */
async function settled<T extends unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }):
  Promise<T> {
  return (await Promise.allSettled(promises)).map((x) => {
    if (x.status === 'rejected') throw x.reason;
    return x.value;
  }) as T;
}

function sideResult(rounds: CdcSegment[]): CdcSideResult {
  return { rounds, median: medianOf(rounds, FIGURE_KEYS) };
}

const perRound = (a: readonly CdcSegment[], b: readonly CdcSegment[],
  key: 'transfersPerS' | 'serverCpuUsPerTransfer' = 'transfersPerS') =>
  median(a.map((x, i) => ratio(x[key], b[i]?.[key])));

export async function measureCdc(s: CdcSettings): Promise<CdcSection> {
  if (findRabbitmqServer() === undefined) {
    return { available: false, appendfsync: s.appendfsync,
      reason: `not available: ${RABBITMQ_INSTALL_HINT}` };
  }
  console.error(`\ncdc: a RabbitMQ of its own; the product with the change-data publisher ` +
    `and without, each on a Redis of its own (appendfsync ${s.appendfsync}), ${s.rounds} ` +
    `round(s) of ${s.durationS} s of single transfers and of batches; then a catch-up of ` +
    `${s.backlog.toLocaleString('en-US')} records`);
  const stops: Stops = [];
  const started = <T>(value: T, stop: () => Promise<void>) => {
    stops.push(stop);
    return value;
  };
  const redisTarget = async (name: string) => {
    const redis = await s.startRedis(join(s.dir, name));
    const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    return started({ redis, stats }, async () => {
      stats.disconnect();
      await redis.stop();
    });
  };
  try {
    const t0 = performance.now();
    let brokerStartS = Number.NaN;
    const brokerUp = startBroker().then((b) => {
      brokerStartS = (performance.now() - t0) / 1000;
      return started(b, () => b.stop());
    });
    // The consumer's queue is bound before the service publishes anything.
    const drained = brokerUp.then(async (b) => {
      const d = await drain(b.url, s.exchange);
      return started(d, () => d.close());
    });
    const cdcEnv = async () => ({ LEDGER_CDC_AMQP_URL: (await brokerUp).url,
      LEDGER_CDC_EXCHANGE: s.exchange });
    const [broker, consumer, on, off] = await settled<[TestBroker, Drain, Target, Target]>([
      brokerUp, drained,
      redisTarget('on').then(async (r) => {
        await drained;
        const product = await s.startProduct('cdcOn', r.redis.url, s.dir, await cdcEnv());
        return started({ side: 'on' as const, product, ...r }, () => product.stop());
      }),
      redisTarget('off').then(async (r) => {
        const product = await s.startProduct('cdcOff', r.redis.url, s.dir, {});
        return started({ side: 'off' as const, product, ...r }, () => product.stop());
      })]);
    console.error(`  started in ${((performance.now() - t0) / 1000).toFixed(1)} s (the broker ` +
      `${brokerStartS.toFixed(1)} s, RabbitMQ ${consumer.version})`);
    const c: Context = { s, brokerPid: broker.pid(), auth: s.headers.authorization ?? '',
      keys: ledgerKeys(s.keyPrefix, s.ledgerName) };
    await Promise.all([on, off].map((t) => s.createAccounts(t.product, s.pool)));
    const backlog = await prepareBacklog(s, on.product, on.stats);
    for (const t of [on, off]) {
      if (s.warmupS <= 0) break;
      for (const load of ['single', 'batch'] as const) {
        await runLoad(spec(s, t.product, load, s.warmupS));
      }
    }
    await caughtUp(on.stats, c.keys);
    const rounds: Record<CdcLoad, Record<CdcSide, CdcSegment[]>> = {
      single: { on: [], off: [] }, batch: { on: [], off: [] } };
    for (let r = 1; r <= s.rounds; r++) {
      // Alternating which goes first, so that neither always follows the other.
      const order = r % 2 === 1 ? [on, off] : [off, on];
      for (const load of ['single', 'batch'] as const) {
        for (const [i, t] of order.entries()) {
          rounds[load][t.side].push(await measure(c, t, load, r, i + 1));
        }
      }
    }
    await off.product.stop(); // idle, but its timers are not the catch-up's
    const caught = await catchUp(c, on, backlog);
    const single = { on: sideResult(rounds.single.on), off: sideResult(rounds.single.off) };
    const batch = { on: sideResult(rounds.batch.on), off: sideResult(rounds.batch.off) };
    const peak = Math.max(batch.on.median.transfersPerS, batch.off.median.transfersPerS);
    const peakOrNull = Number.isFinite(peak) && peak > 0 ? peak : null;
    await sleep(200); // the consumer's last deliveries
    return { available: true, appendfsync: s.appendfsync, connections: s.connections,
      batchConnections: s.batchConnections, batchSize: s.batchSize, accounts: s.pool.length,
      exchange: s.exchange, brokerVersion: consumer.version, brokerStartS,
      pageSize: limits.CDC_PAGE_RECORDS_MAX, intervalMs: limits.CDC_INTERVAL_MS,
      single: { ...single, onOverOff: perRound(rounds.single.on, rounds.single.off),
        serverCpuOnOverOff: perRound(rounds.single.on, rounds.single.off,
          'serverCpuUsPerTransfer') },
      batch: { ...batch, onOverOff: perRound(rounds.batch.on, rounds.batch.off),
        peakTransfersPerS: peakOrNull,
        publishedOverPeak: ratio(batch.on.median.publishedPerS, peakOrNull) },
      catchUp: caught, catchUpOverPeak: ratio(caught.recordsPerS, peakOrNull),
      consumed: consumer.consumed(), queueDepth: await consumer.depth() };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}
