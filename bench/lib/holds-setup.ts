/**
 * What the holds runs (bench/lib/holds.ts, bench/lib/holds-storage.ts) share: a Redis of their
 * own with a ledger as the service builds it (its default key names, group commit off), the
 * accounts, and the operations, checked as they complete: a figure per operation is only worth
 * something if every operation did what it is counted as.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/env.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger, type TransferInput, type TransferOutcome } from '../../src/ledger/ledger.js';
import type { EmbeddedRedis } from '../../src/redis/embedded.js';

/** The holds of the Redis-time and RAM runs: a timeout, so each is in the expiry index too. */
export const HOLD_TIMEOUT_S = 3600;
/** Calls in flight at once: Redis's time per call does not depend on it; the wall time does. */
const IN_FLIGHT = 32;
export const BY = 'bench';

export interface HoldsSettings {
  appendfsync: 'always' | 'everysec';
  accounts: number;
  /** Per kind and round of the Redis-time runs. */
  operations: number;
  rounds: number;
  sweeps: number;
  /** Per RAM run. */
  stored: number;
  /** A fresh redis-server in `dir`, tracked by the bench, stopped here. */
  startRedis: (dir: string) => Promise<EmbeddedRedis>;
  dir: string;
}

export async function inFlight(count: number, each: (i: number) => Promise<void>):
  Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await each(next++);
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, worker));
}

export function committed(outcome: TransferOutcome, what: string): void {
  if (outcome.kind !== 'decided' || outcome.replayed
    || outcome.transfer.status !== 'committed') {
    throw new Error(`holds bench: ${what} not committed: ${JSON.stringify(outcome)
      .slice(0, 300)}`);
  }
}

/** The i-th transfer or hold over the pool: distinct accounts, every pair in turn. */
export function movement(pool: readonly string[], i: number,
  hold: 'timeout' | 'none' | false): TransferInput {
  const from = i % pool.length;
  const to = (from + 1 + (Math.floor(i / pool.length) % (pool.length - 1))) % pool.length;
  return { id: randomUUID(), from: pool[from] as string, to: pool[to] as string,
    amount: String(randomInt(1, 100_000)), metadata: {}, createdBy: BY,
    ...(hold === false ? {} : { pending: true }),
    ...(hold === 'timeout' ? { timeoutSeconds: HOLD_TIMEOUT_S } : {}) };
}

/** `size` accounts, as the bench's HTTP runs create theirs. */
export async function createAccounts(ledger: Ledger, size: number): Promise<string[]> {
  const pool = Array.from({ length: size }, () => randomUUID());
  await inFlight(pool.length, async (i) => {
    const outcome = await ledger.createAccount({ id: pool[i] as string, currency: 'USD',
      overdraftLimit: 'unlimited', metadata: {}, createdBy: BY });
    if (outcome.kind !== 'created') throw new Error(`holds bench: account ${pool[i]}`);
  });
  return pool;
}

/** A batch of transfers or holds (non-atomic: chunks), every one committed. */
export async function batchCommitted(ledger: Ledger, transfers: TransferInput[],
  what: string): Promise<void> {
  const outcome = await ledger.transferBatch({ atomic: false, transfers });
  if (outcome.kind !== 'decided') throw new Error(`holds bench: ${what}: batch refused`);
  for (const result of outcome.results) committed(result, what);
}

/** A fresh Redis in `name`, the ledger's connection and the bench's own, for `body`. */
export async function withRedis<T>(s: Pick<HoldsSettings, 'startRedis' | 'dir'>, name: string,
  now: (() => number) | undefined, body: (ledger: Ledger, stats: Redis) => Promise<T>):
  Promise<T> {
  const redis = await s.startRedis(join(s.dir, name));
  const connection = new Redis(redis.url);
  const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  try {
    const config = loadConfig({});
    const ledger = new Ledger({ redis: connection,
      keys: ledgerKeys(config.keyPrefix, config.ledgerName), ...(now ? { now } : {}) });
    await ledger.ensureScripts();
    return await body(ledger, stats);
  } finally {
    connection.disconnect();
    stats.disconnect();
    await redis.stop();
  }
}
