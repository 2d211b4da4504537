/**
 * Reads through read replicas (REDIS_REPLICA_URLS): where a read goes, and what happens when a
 * replica cannot serve it. Writes never come here; they always go to the primary.
 *
 * - A read goes to the next replica (round-robin) whose connection is ready; with none ready, or
 *   when the caller asks for the primary, it goes to the primary.
 * - A replica that fails a read as "unavailable" (timeout, connection lost, LOADING during a
 *   resync, MASTERDOWN when `replica-serve-stale-data no`, BUSY) gets the read retried once on
 *   the primary: a read changes nothing, so retrying it is always safe.
 * - A replica lags its primary (asynchronous replication): a read there may miss the latest
 *   writes. Callers that must see their own writes ask for the primary.
 * Our read scripts are flagged `no-writes`, so a read-only replica runs them (EVALSHA, or EVAL
 * after NOSCRIPT: SCRIPT LOAD on the primary does not reach replicas in Redis 7).
 */
import type { Redis } from 'ioredis';
import { isUnavailableError } from './errors.js';

/**
 * `primary`: read the primary (sees every acknowledged write); `any`: a replica if one is up;
 * `writer`: the writes' own connection, so that a read and the write that depends on it reach
 * the same node even while a failover moves connections one by one.
 */
export type ReadFrom = 'primary' | 'any' | 'writer';

export interface ReadOptions {
  /** Default `any`. */
  from?: ReadFrom;
}

/**
 * Where a read was served, as the metrics count it: `primary` (no replicas, or asked for),
 * `replica`, `fallback_down` (no replica connection ready), `fallback_error` (a replica failed
 * the read; the primary answered it).
 */
export const READ_ROUTES = ['primary', 'replica', 'fallback_down', 'fallback_error'] as const;
export type ReadRoute = (typeof READ_ROUTES)[number];

export interface ReadObserver {
  /** Must not throw (see ScriptObserver). */
  readRouted?(route: ReadRoute): void;
}

export class ReadRouting {
  private next = 0;

  constructor(readonly replicas: readonly Redis[]) {}

  /** The next ready replica, round-robin; undefined when none is ready. */
  private pick(): Redis | undefined {
    const count = this.replicas.length;
    for (let i = 0; i < count; i++) {
      const index = (this.next + i) % count;
      const replica = this.replicas[index] as Redis;
      if (replica.status === 'ready') {
        this.next = (index + 1) % count;
        return replica;
      }
    }
    return undefined;
  }

  /** Runs `read` on a replica or the primary (`undefined`), as the options and health say. */
  async run<T>(options: ReadOptions | undefined, read: (on: Redis | undefined) => Promise<T>,
    observer: ReadObserver | undefined): Promise<T> {
    if (options?.from === 'primary' || this.replicas.length === 0) {
      observer?.readRouted?.('primary');
      return read(undefined);
    }
    const replica = this.pick();
    if (replica === undefined) {
      observer?.readRouted?.('fallback_down');
      return read(undefined);
    }
    let value: T;
    try {
      value = await read(replica);
    } catch (error) {
      if (!isUnavailableError(error)) throw error;
      observer?.readRouted?.('fallback_error');
      return read(undefined);
    }
    observer?.readRouted?.('replica');
    return value;
  }
}
