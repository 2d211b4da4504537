/**
 * A lease held by one instance at a time (lua/lock-1.lua): Redis's `SET NX PX` with a random
 * token, renewed and released only by its holder through compare-then-act in one script, never
 * a plain DEL (a holder paused past its lease must not release its successor's lock).
 *
 * The one lock mechanism of the service: the hold sweeper uses it, and so should any other
 * "one instance does this" work. It only saves duplicate work: whatever it guards must stay
 * correct when two instances do it at once (a paused holder wakes up still believing it holds
 * the lock until its next `take`).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ReplyMismatchError } from '../ledger/errors.js';
import { runScript, type Script } from '../ledger/scripts.js';

export class RedisLock {
  /** 128 random bits, hex: unguessable and unique per holder. */
  readonly token = randomBytes(16).toString('hex');

  constructor(private readonly redis: Redis, private readonly script: Script,
    readonly key: string, readonly ttlMs: number) {
    if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new Error(`lock ttl ${ttlMs}`);
  }

  /** Renews the lease if this holder has it, else takes it if free: whether it holds it now. */
  take(): Promise<boolean> {
    return this.call('take');
  }

  /** Releases the lock if this holder still has it: whether it did. */
  release(): Promise<boolean> {
    return this.call('release');
  }

  private async call(mode: 'take' | 'release'): Promise<boolean> {
    const reply = await runScript(this.redis, this.script, [this.key],
      [this.token, mode, String(this.ttlMs)]);
    if (!Array.isArray(reply) || reply[0] !== this.token) {
      throw new ReplyMismatchError(`lock ${this.key}: a reply that is not this command's`);
    }
    return reply[1] === 1;
  }
}
