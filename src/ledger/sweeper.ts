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
import type { RedisLock } from '../redis/lock.js';
import type { Ledger } from './ledger.js';

export interface SweeperOptions {
  ledger: Ledger;
  lock: RedisLock;
  intervalMs?: number;
  /** A sweep that failed (Redis down): logged; the next interval tries again. */
  onError?: (error: unknown) => void;
}

export class HoldSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops sweeping, waits for a sweep in progress and releases the lock if held. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
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

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweepOnce().then(() => undefined, (error: unknown) => {
        this.options.onError?.(error);
      }).finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.options.intervalMs ?? limits.HOLDS_SWEEP_INTERVAL_MS);
    this.timer.unref();
  }
}
