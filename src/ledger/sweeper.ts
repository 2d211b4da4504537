/**
 * Releases expired holds without anyone asking: every HOLDS_SWEEP_INTERVAL_MS, the instance
 * holding the sweeper lock (src/redis/lock.ts) calls `expireHolds` until nothing expired is
 * left. Each call is bounded (HOLDS_EXPIRE_BATCH_MAX holds) and idempotent, so the lock only
 * saves duplicate work: two sweepers at once (a holder paused past its lease) release each hold
 * once all the same.
 *
 * Time: the ledger's clock (the caller's, as for every script). A hold expires at `expiresAt`
 * by the clock of whichever instance posts, voids or sweeps it, so instances whose clocks
 * disagree by d move a hold's effective expiry by up to d; keep hosts on NTP (docs/holds.md).
 * A released hold stays released whatever a slower clock says later.
 */
import { limits } from '../config/limits.js';
import { RedisLock } from '../redis/lock.js';
import type { LedgerDirectory } from './directory.js';
import { EveryLedger, Repeat } from './every-ledger.js';
import type { Ledger } from './ledger.js';

export interface SweeperOptions {
  ledger: Ledger;
  lock: RedisLock;
  intervalMs?: number;
  /** A sweep that failed (Redis down): logged; the next interval tries again. */
  onError?: (error: unknown) => void;
}

export class HoldSweeper {
  private readonly repeat: Repeat;
  private stopped = false;

  constructor(private readonly options: SweeperOptions) {
    this.repeat = new Repeat(options.intervalMs ?? limits.HOLDS_SWEEP_INTERVAL_MS,
      () => this.sweepOnce(), (error) => this.options.onError?.(error));
  }

  start(): void {
    this.stopped = false;
    this.repeat.start();
  }

  /** Stops sweeping, waits for a sweep in progress and releases the lock if held. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.repeat.stop();
    await this.options.lock.release().catch(() => false);
  }

  /** One sweep, if this instance holds (or takes) the lock: the holds it released. */
  async sweepOnce(): Promise<number> {
    const { ledger, lock } = this.options;
    if (!(await lock.take())) return 0;
    let released = 0;
    const started = Date.now();
    for (;;) {
      const outcome = await ledger.expireHolds();
      released += outcome.released.length;
      if (outcome.released.length + outcome.skipped < limits.HOLDS_EXPIRE_BATCH_MAX) break;
      // A long backlog: renew the lease as we go, and stop if another instance took it.
      if (Date.now() - started > lock.ttlMs / 2 && !(await lock.take())) break;
      if (this.stopped) break;
    }
    return released;
  }
}

/**
 * Every ledger's expired holds (issue 15: ledgers), on one timer: each interval, every ledger
 * the directory knows is asked for its oldest expired hold (one read of its own slot), and
 * only a ledger that has one is swept, under its own lock (`<prefix>:{<ledger>}:lock:sweeper`),
 * so the instances share the work ledger by ledger and no key is shared by all ledgers.
 */
export class LedgersSweeper {
  private readonly every: EveryLedger<HoldSweeper, number>;

  constructor(directory: LedgerDirectory, onError: (error: unknown) => void,
    intervalMs: number = limits.HOLDS_SWEEP_INTERVAL_MS) {
    this.every = new EveryLedger({ directory, intervalMs, onError,
      make: (ledger) => new HoldSweeper({ ledger, lock: new RedisLock(ledger.connection,
        ledger.script('lock'), ledger.keys.lock('sweeper'), limits.HOLDS_SWEEP_LOCK_TTL_MS) }),
      work: async (sweeper, ledger) => {
        if (await ledger.oldestExpiredHold() === null) return 0;
        return sweeper.sweepOnce();
      } });
  }

  start(): void {
    this.every.start();
  }

  stop(): Promise<void> {
    return this.every.stop();
  }

  /** One pass over every ledger: the holds it released. */
  async sweepOnce(): Promise<number> {
    return (await this.every.runOnce()).reduce((sum, n) => sum + n, 0);
  }
}
