/**
 * Batching policy and the batch script's wire format: how a non-atomic batch is cut into chunks,
 * the arguments of lua/transfer-batch-6.lua, and the decoding of its reply.
 */
import { limits } from '../config/limits.js';
import { LedgerInvariantError } from './errors.js';
import { compactId, type LedgerKeys } from './keys.js';
import type { ScriptArg } from './scripts.js';
import {
  compareWithRecord, decidedNow, holdExpiry, storedTransfer, transferView,
} from './records.js';
import { isRejection, type ScriptStatus, statusName } from './status.js';
import type { BatchRefusal, TransferInput, TransferOutcome } from './types.js';

/**
 * Splits a non-atomic batch into [start, end) chunks of at most BATCH_CHUNK_TRANSFERS_MAX
 * transfers and BATCH_CHUNK_BYTES_MAX of their fields (a script's time grows with both); a
 * transfer alone is always below the bytes bound.
 */
export function chunks(transfers: readonly TransferInput[],
  metadata: readonly string[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  let bytes = 0;
  for (const [i, t] of transfers.entries()) {
    const size = t.id.length + t.from.length + t.to.length + t.amount.length
      + (t.currency?.length ?? 0) + (metadata[i] as string).length;
    if (i > start && (i - start === limits.BATCH_CHUNK_TRANSFERS_MAX
      || bytes + size > limits.BATCH_CHUNK_BYTES_MAX)) {
      out.push([start, i]);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  out.push([start, transfers.length]);
  return out;
}

/** A transfer's `hold` and `expires` arguments (transfer-9.lua ARGV[9..10]). */
export function holdArgs(t: TransferInput, nowMs: string): [string, string] {
  if (t.pending !== true) return ['', ''];
  return [String(t.timeoutSeconds ?? 0), holdExpiry(nowMs, t.timeoutSeconds)];
}

/** KEYS and ARGV of one transfer-batch call, as its header documents them. */
export function batchCall(k: LedgerKeys, transfers: readonly TransferInput[],
  metadata: readonly string[], atomic: boolean, nowMs: string,
  createdBy: string): { keys: string[]; args: ScriptArg[] } {
  const keys = [k.meta(), k.journal(), k.rejections(), k.accountIds(), k.expiries(),
    k.holdStats()];
  const index = new Map<string, number>();
  const keyIndex = (key: string): string => {
    let i = index.get(key);
    if (i === undefined) {
      i = keys.push(key); // KEYS are 1-based in Lua: the new length is the index
      index.set(key, i);
    }
    return String(i);
  };
  const args: ScriptArg[] = [(transfers[0] as TransferInput).id, atomic ? '1' : '0', nowMs,
    createdBy, String(transfers.length)];
  for (const [i, t] of transfers.entries()) {
    args.push(t.id, t.from, t.to, t.amount, t.currency ?? '', metadata[i] as string,
      ...holdArgs(t, nowMs), keyIndex(k.account(t.from)), keyIndex(k.account(t.to)),
      keyIndex(k.transferBucket(t.id)), compactId(t.id) ?? '');
  }
  return { keys, args };
}

/** One item of a batch reply: `{ status, ... }` as documented in transfer-batch-6.lua. */
export function batchItem(input: TransferInput, metadata: string, nowMs: string,
  result: unknown): TransferOutcome {
  if (!Array.isArray(result) || typeof result[0] !== 'number') {
    throw new LedgerInvariantError('transfer-batch: a result is not { status, ... }');
  }
  const status = statusName(result[0]);
  const rest = result.slice(1);
  if (status === 'EXISTS') {
    return compareWithRecord(input, metadata, storedTransfer(rest[0], rest[1], rest[2], rest[3]));
  }
  if (status !== 'OK' && !isRejection(status)) {
    throw new LedgerInvariantError(`transfer-batch returned ${status} for an item`);
  }
  return { kind: 'decided', replayed: false,
    transfer: transferView(input.id,
      decidedNow(input, metadata, nowMs, status, rest.map(String))) };
}

/** An atomic batch that wrote nothing: `{ status, index (1-based), ... }` after the tag. */
export function atomicRefusal(transfers: readonly TransferInput[], metadata: readonly string[],
  status: ScriptStatus, rest: unknown[]): BatchRefusal {
  // FORMAT_UNSUPPORTED, INVALID_ARGUMENT: refused for no item (another release, or a bug).
  if (!isRejection(status) && status !== 'EXISTS') {
    throw new LedgerInvariantError(`transfer-batch returned ${status}`);
  }
  const index = Number(rest[0]) - 1;
  const input = transfers[index];
  if (!Number.isInteger(index) || input === undefined) {
    throw new LedgerInvariantError(`transfer-batch: ${status} for no item (${String(rest[0])})`);
  }
  if (isRejection(status)) return { kind: 'atomicRejected', index, reason: status };
  const outcome = compareWithRecord(input, metadata[index] as string,
    storedTransfer(rest[1], rest[2], rest[3], rest[4]));
  return { kind: 'atomicExists', index, fields: outcome.kind === 'conflict' ? outcome.fields : [] };
}

/**
 * An atomic batch whose every transfer was decided before, some with other fields: refused as a
 * whole, naming the first conflict (a whole replay answers every transfer as replayed).
 */
export function atomicReplayConflict(results: readonly TransferOutcome[]):
  BatchRefusal | undefined {
  if (!results.every((r) => r.kind === 'conflict' || r.replayed)) return undefined;
  const index = results.findIndex((r) => r.kind === 'conflict');
  const conflict = results[index];
  return conflict?.kind === 'conflict'
    ? { kind: 'atomicExists', index, fields: conflict.fields } : undefined;
}
