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
import type { Ledger } from './ledger.js';

export interface SweeperOptions {
  ledger: Ledger;
  lock: RedisLock;
  intervalMs?: number;
  /** A sweep that failed (Redis down): logged; the next interval tries again. */
  onError?: (error: unknown) => void;
}

/** Runs `run` every `intervalMs`, one run at a time, from start() until stop(). */
class Repeat {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly intervalMs: number, private readonly run: () => Promise<unknown>,
    private readonly onError: (error: unknown) => void) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops, and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.run().then(() => undefined, this.onError).finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }
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
  /** By ledger name: handles come and go (the directory's LRU), locks stay. */
  private readonly sweepers = new Map<string, HoldSweeper>();
  private readonly repeat: Repeat;

  constructor(private readonly directory: LedgerDirectory,
    private readonly onError: (error: unknown) => void,
    intervalMs: number = limits.HOLDS_SWEEP_INTERVAL_MS) {
    this.repeat = new Repeat(intervalMs, () => this.sweepOnce(), onError);
  }

  start(): void {
    this.repeat.start();
  }

  async stop(): Promise<void> {
    await this.repeat.stop();
    await Promise.all([...this.sweepers.values()].map((s) => s.stop()));
  }

  /** One pass over every ledger: the holds it released. */
  async sweepOnce(): Promise<number> {
    let released = 0;
    const ledgers = await this.directory.all();
    // A ledger's failure (its node down) must not stop the others' sweep.
    await Promise.all(ledgers.map(async (ledger) => {
      try {
        if (await ledger.oldestExpiredHold() === null) return;
        released += await this.sweeperOf(ledger).sweepOnce();
      } catch (error) {
        this.onError(error);
      }
    }));
    return released;
  }

  private sweeperOf(ledger: Ledger): HoldSweeper {
    let sweeper = this.sweepers.get(ledger.keys.ledger);
    if (sweeper === undefined) {
      const lock = new RedisLock(ledger.connection, ledger.script('lock'),
        ledger.keys.lock('sweeper'), limits.HOLDS_SWEEP_LOCK_TTL_MS);
      sweeper = new HoldSweeper({ ledger, lock });
      this.sweepers.set(ledger.keys.ledger, sweeper);
    }
    return sweeper;
  }
}
