/**
 * A background worker's hold on its ledger (a RedisLock, lua/lock-1.lua), kept cheaply: the
 * journal followers (src/ledger/follower.ts) and the archiver (src/archive/archiver.ts) run a
 * pass every ~100 ms for every ledger, so the holder renews its lease only every third of it,
 * and an instance without the lock tries to take it four times per lease: a dead holder's
 * ledger is taken over within about 1.25 leases.
 */
import type { RedisLock } from './lock.js';

/** Before a pass: another instance holds it; held since the last pass; newly taken. */
export type LeaseState = 'none' | 'kept' | 'taken';

export class Lease {
  /** Whether the last pass held the lock. */
  holding = false;
  private renewedAt = 0;
  private triedAt = Number.NEGATIVE_INFINITY;

  constructor(readonly lock: RedisLock) {}

  /**
   * Before a pass. 'taken' means this instance did not hold the lock since its last pass:
   * whatever it remembered of the ledger's progress may be stale (someone else moved on).
   */
  async before(now = Date.now()): Promise<LeaseState> {
    if (this.holding && now - this.renewedAt <= this.lock.ttlMs / 3) return 'kept';
    if (!this.holding && now - this.triedAt < this.lock.ttlMs / 4) return 'none';
    this.triedAt = now;
    const held = this.holding;
    this.holding = await this.lock.take();
    if (!this.holding) return 'none';
    this.renewedAt = now;
    return held ? 'kept' : 'taken';
  }

  /** During a long pass: renews once a third of the lease has gone. False: the lock is lost. */
  async during(): Promise<boolean> {
    if (Date.now() - this.renewedAt <= this.lock.ttlMs / 3) return true;
    this.renewedAt = Date.now();
    this.holding = await this.lock.take();
    return this.holding;
  }

  /** A fenced script said another instance holds the lock now. */
  lost(): void {
    this.holding = false;
  }

  async release(): Promise<void> {
    this.holding = false;
    await this.lock.release().catch(() => false);
  }
}
