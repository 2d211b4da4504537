/**
 * Replica acknowledgements with group commit (LEDGER_REPLICA_ACKS): a write is answered only
 * once that many replicas have it in memory, so a failover to one of them cannot forget it.
 *
 * Redis's `WAIT n timeout` waits for the writes of the connection that sends it (its last write
 * offset), and blocks that connection meanwhile: commands sent after it are executed only when
 * it returns. So one WAIT is sent for every write whose reply has arrived since the last one
 * (group commit): writes that arrive while a WAIT is out queue behind it in Redis, and the next
 * WAIT covers them all. The writes' connection is the ledger's writer (src/server.ts gives it its
 * own connection in this mode, so reads and metrics never queue behind a WAIT).
 *
 * Two ways an acknowledgement could be claimed for a write no replica has, and what stops them:
 * - The connection dropped between the write and the WAIT (or ioredis re-sent the WAIT on a new
 *   connection, whose last write offset is 0, so WAIT answers at once): every waiter remembers
 *   the connection's epoch (bumped on each `close`); a WAIT answer reaching waiters of another
 *   epoch is not theirs, and they fail as unknown outcomes (503; retrying with the id is safe).
 * - A replay (the id was decided earlier, maybe by another connection or instance, maybe just
 *   before a crash) writes nothing, so this connection's offset may not reach that earlier
 *   write. Such a waiter asks for a `mark`: a one-field write on this connection right before
 *   the WAIT, which lifts the connection's offset to the primary's current one, past every
 *   earlier write.
 * Measured on Redis 7.0.15: a WAIT after any command (a read, CLIENT SETNAME) already waits for
 * the primary's offset at that command, so neither case shows there (test/ops/replica-acks
 * checks the behaviour, which holds with or without these guards). WAIT is documented only for
 * the connection's own writes; the guards make that documented meaning enough.
 */
import type { Redis } from 'ioredis';

/** Fewer replicas than required acknowledged in time: the write's outcome is unknown (503). */
export class ReplicaAckError extends Error {
  override readonly name = 'ReplicaAckError';
}

export interface ReplicaAckObserver {
  /**
   * One WAIT answered (or failed): how long it took, how many writes it covered, and how many
   * of those are answered 503 for want of acknowledgements. Must not throw.
   */
  acksWaited?(seconds: number, writes: number, failed: number): void;
}

export interface ReplicaAcksOptions {
  /** The ledger's writer connection: WAIT must go where the writes went. */
  redis: Redis;
  /** LEDGER_REPLICA_ACKS (at least 1; with 0 there is nothing to wait for). */
  required: number;
  /** LEDGER_REPLICA_ACK_TIMEOUT_MS. */
  timeoutMs: number;
  observer?: ReplicaAckObserver;
}

/**
 * Writes a mark on `redis`: a propagated write of the waiter's own ledger (in a cluster, a key
 * of its ledger's slot, which that node owns).
 */
export type Mark = (redis: Redis) => Promise<unknown>;

interface Waiter {
  epoch: number;
  mark: boolean;
  markWith: Mark;
  resolve(): void;
  reject(error: unknown): void;
}

export class ReplicaAcks {
  private waiting: Waiter[] = [];
  private sending = false;
  private scheduled = false;
  private epoch = 0;

  constructor(private readonly options: ReplicaAcksOptions) {
    options.redis.on('close', () => { this.epoch += 1; });
  }

  get required(): number {
    return this.options.required;
  }

  /**
   * Resolves once `required` replicas have every write this connection's replies have shown
   * so far; call it after the write's reply. `mark`: the write may have written nothing now
   * (a replay, a conflict), so lift the connection's offset first. Rejects with
   * ReplicaAckError (too few in time) or the connection's error: both unknown outcomes.
   */
  covered(mark: boolean, markWith: Mark): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ epoch: this.epoch, mark, markWith, resolve, reject });
      if (this.sending || this.scheduled) return;
      this.scheduled = true;
      // After this turn's other replies: a group commit's transfers resolve in one turn.
      setImmediate(() => {
        this.scheduled = false;
        void this.send();
      });
    });
  }

  /**
   * Writes one mark: the waiters' own, one ledger's after another, until one is written (in a
   * cluster a slot being moved refuses a key of its own: MOVED or ASK). Any one lifts the
   * connection's offset past every earlier write.
   */
  private async writeMark(group: readonly Waiter[]): Promise<void> {
    const marks = new Set(group.map((w) => w.markWith));
    let failure: unknown;
    for (const mark of marks) {
      try {
        await mark(this.options.redis);
        return;
      } catch (error) {
        failure = error;
      }
    }
    throw failure;
  }

  private async send(): Promise<void> {
    if (this.sending || this.waiting.length === 0) return;
    this.sending = true;
    const group = this.waiting;
    this.waiting = [];
    const started = process.hrtime.bigint();
    let failed = group.length;
    try {
      const { redis, required, timeoutMs } = this.options;
      const epoch = this.epoch;
      if (group.some((w) => w.mark)) await this.writeMark(group);
      const replicas = await redis.wait(required, timeoutMs);
      const current = this.epoch;
      const acknowledged = replicas >= required;
      failed = 0;
      for (const w of group) {
        if (w.epoch !== epoch || current !== epoch) {
          w.reject(new ReplicaAckError('the connection to Redis was lost between the write ' +
            'and its replica acknowledgement'));
          failed += 1;
        } else if (!acknowledged) {
          w.reject(new ReplicaAckError(`${replicas} of ${required} replica(s) acknowledged ` +
            `the write within ${timeoutMs} ms`));
          failed += 1;
        } else {
          w.resolve();
        }
      }
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      try {
        this.options.observer?.acksWaited?.(seconds, group.length, failed);
      } catch { /* a metrics failure never changes an answer */ }
      this.sending = false;
      if (this.waiting.length > 0) void this.send();
    }
  }
}

/**
 * Replica acks in a Redis Cluster: one group commit per primary, on that primary's connection
 * (a WAIT counts the replicas of the node it is sent to). Keyed by the connection, which
 * ioredis replaces when a node goes away, so a new primary starts with a fresh epoch.
 */
export class NodeAcks {
  private readonly byNode = new WeakMap<Redis, ReplicaAcks>();

  constructor(private readonly options: Omit<ReplicaAcksOptions, 'redis'>) {}

  get required(): number {
    return this.options.required;
  }

  /**
   * Resolves once `required` replicas of `node` have the write `node` just ran; `mark` writes a
   * key of that write's slot first (always: a cluster's answers are not sorted into replays).
   */
  covered(node: Redis, mark: Mark): Promise<void> {
    let acks = this.byNode.get(node);
    if (acks === undefined) {
      acks = new ReplicaAcks({ ...this.options, redis: node });
      this.byNode.set(node, acks);
    }
    return acks.covered(true, mark);
  }
}
