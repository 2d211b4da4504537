/**
 * Gauges read from Redis on a timer: readiness (the same checks as /readyz), persistence health
 * from INFO, the slow log, memory. The timer never overlaps itself (the next poll is scheduled
 * only when one ends), tolerates Redis being down, and never keeps the process alive (unref).
 */
import type { Redis } from 'ioredis';
import { parseInfo, type Readiness } from '../redis/readiness.js';
import { METRICS_CURRENCIES_MAX, SLOWLOG_RECENT_ENTRIES } from './constants.js';
import type { Metrics } from './registry.js';

export interface Poller {
  /** Polls now, then every interval until stopped. */
  start(): void;
  /** One poll now, shared with one in flight (never two at once); resolves when it is done. */
  refresh(): Promise<void>;
  /** No poll starts after this; resolves when one in flight has finished. */
  stop(): Promise<void>;
}

export function createPoller(poll: () => Promise<void>, intervalMs: number): Poller {
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> | undefined;
  let running = false;
  const schedule = () => {
    clearTimeout(timer);
    if (!running) return;
    timer = setTimeout(run, intervalMs);
    timer.unref();
  };
  function run(): Promise<void> {
    inflight ??= poll().catch(() => {}).finally(() => {
      inflight = undefined;
      schedule();
    });
    return inflight;
  }
  return {
    start() {
      running = true;
      void run();
    },
    refresh: () => (running ? run() : Promise.resolve()),
    async stop() {
      running = false;
      clearTimeout(timer);
      await inflight;
    },
  };
}

/** Between polls: the last aof_delayed_fsync seen, so the counter only ever adds increases. */
export interface PollState {
  delayedFsync: number | undefined;
}

function infoNumber(info: Map<string, string>, name: string): number {
  const value = Number(info.get(name));
  if (!Number.isFinite(value)) throw new Error(`INFO has no numeric ${name}`);
  return value;
}

export function recordPersistence(m: Metrics, info: Map<string, string>, state: PollState): void {
  m.aofEnabled.set(infoNumber(info, 'aof_enabled'));
  m.aofLastWriteOk.set(info.get('aof_last_write_status') === 'ok' ? 1 : 0);
  m.aofRewriteInProgress.set(infoNumber(info, 'aof_rewrite_in_progress'));
  m.usedMemory.set(infoNumber(info, 'used_memory'));
  // aof_delayed_fsync is absent while AOF is off; 0 then.
  const delayed = info.has('aof_delayed_fsync') ? infoNumber(info, 'aof_delayed_fsync') : 0;
  const last = state.delayedFsync;
  // The first value is the baseline (delays before we started are not ours to count); a smaller
  // value means Redis restarted and counts from zero again.
  if (last !== undefined) m.aofDelayedFsync.inc(delayed >= last ? delayed - last : delayed);
  state.delayedFsync = delayed;
}

/**
 * Replication as the primary reports it (INFO replication): replicas online, and each one's
 * lag. `slaveN:ip=…,port=…,state=online,offset=…,lag=…` per replica.
 */
export function recordReplication(m: Metrics, info: Map<string, string>): void {
  let online = 0;
  m.replicaLag.reset(); // a replica gone is a series gone, not a frozen last value
  for (const [name, value] of info) {
    if (!/^slave[0-9]+$/.test(name)) continue;
    const fields = new Map(value.split(',').map((kv) => kv.split('=') as [string, string]));
    if (fields.get('state') === 'online') online += 1;
    const lag = Number(fields.get('lag'));
    if (Number.isFinite(lag)) {
      m.replicaLag.labels({ replica: `${fields.get('ip')}:${fields.get('port')}` }).set(lag);
    }
  }
  m.replicasConnected.set(online);
}

/** SLOWLOG GET replies [id, unix time, duration µs, args, …] per entry; only durations are read. */
export function slowestSeconds(entries: unknown): number {
  if (!Array.isArray(entries)) throw new Error('SLOWLOG GET reply is not a list');
  let slowest = 0;
  for (const entry of entries) {
    const micros = Array.isArray(entry) ? entry[2] : undefined;
    if (typeof micros !== 'number') throw new Error('SLOWLOG GET entry has no duration');
    slowest = Math.max(slowest, micros);
  }
  return slowest / 1e6;
}

export async function pollRedis(
  redis: Redis,
  m: Metrics,
  readiness: () => Promise<Readiness>,
  state: PollState,
): Promise<void> {
  // Not connected: say so without sending anything (a lazy client would start connecting).
  if (redis.status !== 'ready') {
    m.redisUp.set(0);
    m.ready.set(0);
    return;
  }
  const result = await readiness(); // never throws: a failure is a failed check
  m.ready.set(result.ready ? 1 : 0);
  try {
    // The readiness check has just read INFO; read it again only if it could not.
    let info = result.info;
    if (info === undefined) {
      const [persistence, memory, replication] = await Promise.all([
        redis.info('persistence'), redis.info('memory'), redis.info('replication')]);
      info = parseInfo(`${persistence}\r\n${memory}\r\n${replication}`);
    }
    recordPersistence(m, info, state);
    recordReplication(m, info);
    m.redisUp.set(1);
  } catch {
    m.redisUp.set(0); // the persistence gauges keep their last known values
    return;
  }
  try {
    const [length, entries] = await Promise.all([
      redis.slowlog('LEN'), redis.slowlog('GET', SLOWLOG_RECENT_ENTRIES)]);
    m.slowlogLength.set(Number(length));
    m.slowlogSlowest.set(slowestSeconds(entries));
  } catch {
    // A least-privilege ACL may forbid SLOWLOG; its gauges then stay at their last values.
  }
}

/** What the holds gauges read of the ledger (src/ledger/ledger.ts). */
export interface HoldsSource {
  openHolds(): Promise<Map<string, { count: number; amount: string }>>;
  /** Expiry (ms) of the oldest hold past its expiry and not yet released, or null. */
  oldestExpiredHold(): Promise<number | null>;
}

/**
 * Open holds per currency (the largest METRICS_CURRENCIES_MAX by count, the rest as "other")
 * and the age of the oldest expired hold not yet released. Gauges are doubles: an amount is
 * exact up to 2^53 and approximate above (display only; the API has exact figures).
 */
export async function pollHolds(source: HoldsSource, m: Metrics, nowMs: number): Promise<void> {
  const [open, oldest] = await Promise.all([source.openHolds(), source.oldestExpiredHold()]);
  const sorted = [...open].sort((a, b) => b[1].count - a[1].count);
  const shown = new Map<string, { count: number; amount: bigint }>();
  for (const [i, [currency, { count, amount }]] of sorted.entries()) {
    const label = i < METRICS_CURRENCIES_MAX - 1 || sorted.length <= METRICS_CURRENCIES_MAX
      ? currency : 'other';
    const entry = shown.get(label) ?? { count: 0, amount: 0n };
    entry.count += count;
    entry.amount += BigInt(amount);
    shown.set(label, entry);
  }
  m.openHolds.reset();
  m.openHoldAmount.reset();
  for (const [currency, { count, amount }] of shown) {
    m.openHolds.set({ currency }, count);
    m.openHoldAmount.set({ currency }, Number(amount));
  }
  m.oldestExpiredHoldAge.set(oldest === null ? 0 : Math.max(0, nowMs - oldest) / 1000);
}
