/**
 * Group commit: single transfers that arrive together share one script call. Transfers queued
 * in the same turn of the event loop (requests parsed from the same socket reads) are decided by
 * one non-atomic transfer-batch call, whose every item is decided exactly as transfer-9.lua
 * decides it alone (lua/includes/decide.lua is shared), so each keeps its own id, answer and
 * idempotency. It saves the fixed cost of a script call inside Redis and of a command in Node.
 *
 * One transfer's failure never changes another's answer: a group the batch script refuses as a
 * whole (a corrupt key, a bug) wrote nothing (it validates before its first write), and each of
 * its transfers is then decided alone. Redis unreachable is an unknown outcome for all of them,
 * as it would have been for each alone.
 */
import { isUnavailableError } from '../redis/errors.js';
import { chunks } from './batch.js';
import type { TransferInput, TransferOutcome } from './types.js';

interface Waiting {
  input: TransferInput;
  metadata: string;
  resolve(outcome: TransferOutcome): void;
  reject(error: unknown): void;
}

export interface GroupRunner {
  /** Decides one transfer alone (the single-transfer script). */
  single(input: TransferInput, metadata: string): Promise<TransferOutcome>;
  /** Decides a group as one non-atomic chunk: one outcome per transfer, in order. */
  group(inputs: TransferInput[], metadata: string[]): Promise<TransferOutcome[]>;
}

export class GroupCommit {
  private queue: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly runner: GroupRunner) {}

  decide(input: TransferInput, metadata: string): Promise<TransferOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, metadata, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the I/O callbacks of this turn: every request parsed meanwhile joins the group.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    this.scheduled = false;
    for (const group of groups(queue)) void this.run(group);
  }

  private async run(group: Waiting[]): Promise<void> {
    if (group.length === 1) {
      const only = group[0] as Waiting;
      await this.runner.single(only.input, only.metadata).then(only.resolve, only.reject);
      return;
    }
    let outcomes: TransferOutcome[];
    try {
      outcomes = await this.runner.group(group.map((w) => w.input), group.map((w) => w.metadata));
    } catch (error) {
      if (isUnavailableError(error)) {
        for (const w of group) w.reject(error);
        return;
      }
      // Refused whole, nothing written: each alone, so only the culprit fails.
      await Promise.all(group.map((w) =>
        this.runner.single(w.input, w.metadata).then(w.resolve, w.reject)));
      return;
    }
    group.forEach((w, i) => w.resolve(outcomes[i] as TransferOutcome));
  }
}

/**
 * Splits the queue into groups the batch script takes: one createdBy each (a script call
 * records one), distinct ids (a repeated id waits for a later group, where it finds the first
 * one decided: a replay), and chunks within BATCH_CHUNK_TRANSFERS_MAX and BATCH_CHUNK_BYTES_MAX.
 */
function groups(queue: readonly Waiting[]): Waiting[][] {
  const out: Waiting[][] = [];
  let rest = queue;
  while (rest.length > 0) {
    const by = (rest[0] as Waiting).input.createdBy;
    const taken: Waiting[] = [];
    const later: Waiting[] = [];
    const ids = new Set<string>();
    for (const w of rest) {
      if (w.input.createdBy !== by || ids.has(w.input.id)) {
        later.push(w);
      } else {
        ids.add(w.input.id);
        taken.push(w);
      }
    }
    const parts = chunks(taken.map((w) => w.input), taken.map((w) => w.metadata));
    for (const [start, end] of parts) out.push(taken.slice(start, end));
    rest = later;
  }
  return out;
}
