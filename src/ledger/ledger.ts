/**
 * The ledger core's operations: accounts, transfers, batches and entries over Redis. It knows
 * nothing of HTTP; it returns outcomes as values, throws only for Redis failures
 * (src/redis/errors.ts) and bugs, and reports every decided outcome to its observer itself.
 * Transport is runner.ts, stored records records.ts, batching batch.ts, types types.ts.
 */
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import type { ReadOptions } from '../redis/replicas.js';
import { atomicRefusal, atomicReplayConflict, batchCall, batchItem, chunks } from './batch.js';
import { LedgerInvariantError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { uuidv7 } from './ids.js';
import type { LedgerKeys } from './keys.js';
import {
  ACCOUNT_FIELDS, accountView, canonicalMetadata, compareWithRecord, decidedNow, entriesOf,
  fieldsOf, newAccountFields, storedTransfer, transferView,
} from './records.js';
import { replyStatus, ScriptRunner } from './runner.js';
import { loadScripts, type Script } from './scripts.js';
import { isRejection } from './status.js';
import type {
  Account, AccountInput, BatchInput, BatchOutcome, CreateAccountOutcome, EntriesPage,
  LedgerObserver, Transfer, TransferInput, TransferOutcome, WriteOperation,
} from './types.js';

export type * from './types.js';
export { canonicalMetadata } from './records.js';

export interface LedgerOptions {
  redis: Redis;
  keys: LedgerKeys;
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number;
  /** Told of every script call and every decided outcome (metrics), for the ledger's life. */
  observer?: LedgerObserver;
  /** The scripts to run; default: this build's `lua/`. Tests pass another release's. */
  scripts?: Map<string, Script>;
  /** Read replicas (src/redis/replicas.ts): reads may go there; writes never do. */
  replicas?: readonly Redis[];
  /** Single transfers arriving together share one script call (group-commit.ts). */
  groupCommit?: boolean;
}

export class Ledger {
  readonly observer: LedgerObserver | undefined;
  private readonly redis: Redis;
  private readonly keys: LedgerKeys;
  private readonly now: () => number;
  private readonly runner: ScriptRunner;
  private readonly group: GroupCommit | undefined;

  constructor(options: LedgerOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.now = options.now ?? Date.now;
    this.observer = options.observer;
    this.runner = new ScriptRunner(options.redis, options.scripts ?? loadScripts(),
      options.replicas ?? [], options.observer);
    this.group = options.groupCommit === true ? new GroupCommit({
      single: (input, metadata) => this.decideAlone(input, metadata),
      group: (inputs, metadata) => this.decideGroup(inputs, metadata),
    }) : undefined;
  }

  get scripts(): Map<string, Script> {
    return this.runner.scripts;
  }

  /** The read replicas' connections (readiness reports their health). */
  get replicas(): readonly Redis[] {
    return this.runner.reads.replicas;
  }

  /** Puts every script into Redis's cache; used at start-up and by the readiness check. */
  ensureScripts(): Promise<boolean> {
    return this.runner.ensureScripts();
  }

  /** The data-format version the ledger's data carries (undefined: nothing written yet). */
  async dataFormat(): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.meta(), 'fmt')) ?? undefined;
  }

  /** Runs a write and reports a failure (unknown outcome, refused, or a bug), then rethrows. */
  private async write<T>(operation: WriteOperation, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      this.observer?.writeFailed?.(operation, error);
      throw error;
    }
  }

  createAccount(input: AccountInput): Promise<CreateAccountOutcome> {
    return this.write('account', async () => {
      const outcome = await this.decideAccount(input);
      this.observer?.accountDecided?.(outcome);
      return outcome;
    });
  }

  private async decideAccount(input: AccountInput): Promise<CreateAccountOutcome> {
    const nowMs = String(this.now());
    const id = input.id ?? uuidv7(Number(nowMs));
    const metadata = canonicalMetadata(input.metadata);
    const reply = await this.runner.run('create-account',
      [this.keys.meta(), this.keys.account(id), this.keys.accountIds()],
      [id, input.currency, input.overdraftLimit, metadata, nowMs, input.createdBy], 1, id);
    const [status, stored] = replyStatus(reply);
    if (status === 'OK') {
      return { kind: 'created', account: accountView(id, newAccountFields(input.currency,
        input.overdraftLimit, metadata, nowMs, input.createdBy)) };
    }
    if (status !== 'EXISTS') throw new LedgerInvariantError(`create-account returned ${status}`);
    const record = fieldsOf(stored);
    const A = ACCOUNT_FIELDS;
    const fields: string[] = [];
    if (record[A.CURRENCY] !== input.currency) fields.push('currency');
    if (record[A.OVERDRAFT] !== input.overdraftLimit) fields.push('overdraftLimit');
    if (record[A.METADATA] !== metadata) fields.push('metadata');
    if (fields.length > 0) return { kind: 'conflict', fields };
    return { kind: 'replayed', account: accountView(id, record) };
  }

  transfer(input: TransferInput): Promise<TransferOutcome> {
    return this.write('transfer', async () => {
      const outcome = await this.decideTransfer(input);
      this.observer?.transferDecided?.(outcome);
      return outcome;
    });
  }

  private decideTransfer(input: TransferInput): Promise<TransferOutcome> {
    const metadata = canonicalMetadata(input.metadata);
    return this.group === undefined ? this.decideAlone(input, metadata)
      : this.group.decide(input, metadata);
  }

  /** Transfers queued together (group commit), as one non-atomic chunk. */
  private async decideGroup(inputs: TransferInput[],
    metadata: string[]): Promise<TransferOutcome[]> {
    const outcome = await this.batchChunk(inputs, metadata, false, String(this.now()),
      (inputs[0] as TransferInput).createdBy);
    if (outcome.kind !== 'decided') throw new LedgerInvariantError('a group refused whole');
    return outcome.results;
  }

  private async decideAlone(input: TransferInput, metadata: string): Promise<TransferOutcome> {
    const nowMs = String(this.now());
    const k = this.keys;
    const reply = await this.runner.run('transfer',
      [k.meta(), k.transferBucket(input.id), k.account(input.from), k.account(input.to),
        k.journal(), k.rejections(), k.accountIds()],
      [input.id, input.from, input.to, input.amount, input.currency ?? '', metadata, nowMs,
        input.createdBy],
      1, input.id);
    const [status, ...rest] = replyStatus(reply);
    if (status === 'EXISTS') {
      return compareWithRecord(input, metadata, storedTransfer(rest[0], rest[1], rest[2],
        rest[3]));
    }
    if (status !== 'OK' && !isRejection(status)) {
      throw new LedgerInvariantError(`transfer returned ${status}`);
    }
    return { kind: 'decided', replayed: false,
      transfer: transferView(input.id, decidedNow(input, metadata, nowMs, status,
        rest.map(String))) };
  }

  /**
   * Decides a batch. Atomic: one script, all or nothing. Otherwise chunks of
   * BATCH_CHUNK_TRANSFERS_MAX, one script each and one after another, so no script holds Redis
   * longer than BATCH_CHUNK_BUDGET_MS; a failure (503) leaves earlier chunks decided and later
   * ones untouched, and a retry of the whole batch with the same ids is safe.
   */
  transferBatch(batch: BatchInput): Promise<BatchOutcome> {
    return this.write('batch', async () => {
      const outcome = await this.decideBatch(batch);
      if (outcome.kind === 'decided') {
        for (const result of outcome.results) this.observer?.transferDecided?.(result);
      } else {
        this.observer?.batchRefused?.(outcome);
      }
      return outcome;
    });
  }

  private async decideBatch(batch: BatchInput): Promise<BatchOutcome> {
    const { transfers, atomic } = batch;
    const max = atomic ? limits.BATCH_ATOMIC_TRANSFERS_MAX : limits.BATCH_TRANSFERS_MAX;
    if (transfers.length < 1 || transfers.length > max) {
      throw new Error(`transferBatch: ${transfers.length} transfers (atomic: ${atomic})`);
    }
    const createdBy = (transfers[0] as TransferInput).createdBy;
    if (transfers.some((t) => t.createdBy !== createdBy)) {
      throw new Error('transferBatch: one batch, one createdBy');
    }
    const nowMs = String(this.now());
    const metadata = transfers.map((t) => canonicalMetadata(t.metadata));
    const results: TransferOutcome[] = [];
    for (const [start, end] of atomic ? [[0, transfers.length]] : chunks(transfers, metadata)) {
      const outcome = await this.batchChunk(transfers.slice(start, end),
        metadata.slice(start, end), atomic, nowMs, createdBy);
      if (outcome.kind !== 'decided') return outcome;
      results.push(...outcome.results);
    }
    return (atomic && atomicReplayConflict(results)) || { kind: 'decided', results };
  }

  private async batchChunk(transfers: TransferInput[], metadata: string[], atomic: boolean,
    nowMs: string, createdBy: string): Promise<BatchOutcome> {
    const { keys, args } = batchCall(this.keys, transfers, metadata, atomic, nowMs, createdBy);
    const reply = await this.runner.run('transfer-batch', keys, args, 1, args[0] as string);
    const [status, ...rest] = replyStatus(reply);
    if (status !== 'OK') return atomicRefusal(transfers, metadata, status, rest);
    const results = rest[0];
    if (!Array.isArray(results) || results.length !== transfers.length) {
      throw new LedgerInvariantError('transfer-batch: not one result per transfer');
    }
    return { kind: 'decided', results: results.map((result, i) =>
      batchItem(transfers[i] as TransferInput, metadata[i] as string, nowMs, result)) };
  }

  async getAccount(id: string, options?: ReadOptions): Promise<Account | undefined> {
    const reply = await this.runner.read('read-hash', [this.keys.account(id)], [id], 0, id,
      options);
    const fields = fieldsOf(reply[1]);
    return Object.keys(fields).length === 0 ? undefined : accountView(id, fields);
  }

  async getTransfer(id: string, options?: ReadOptions): Promise<Transfer | undefined> {
    const k = this.keys;
    const reply = await this.runner.read('read-transfer',
      [k.transferBucket(id), k.journal(), k.rejections(), k.accountIds()], [id], 0, id, options);
    if (reply[1] === '') return undefined;
    return transferView(id, storedTransfer(reply[1], reply[2], reply[3], reply[4]));
  }

  /**
   * Newest first; `startSeq` (a previous page's `nextSeq`) continues a listing. Undefined when
   * the account does not exist; `badCursor` when `startSeq` is not one of its entries. Read in
   * calls of ENTRIES_READ_CHUNK_MAX on one connection: below the newest entry an account's
   * chain never changes, so the calls together are one consistent page.
   */
  async listEntries(accountId: string, limit: number, startSeq?: string,
    options?: ReadOptions): Promise<EntriesPage | 'badCursor' | undefined> {
    if (!Number.isInteger(limit) || limit < 1 || limit > limits.ENTRIES_PAGE_LIMIT_MAX) {
      throw new Error(`listEntries: limit ${limit} out of range`);
    }
    return this.runner.readOn(options, async (on) => {
      const page: EntriesPage = { entries: [], nextSeq: null };
      let start = startSeq ?? '';
      do {
        const count = Math.min(limit - page.entries.length, limits.ENTRIES_READ_CHUNK_MAX);
        const part = await this.entriesChunk(accountId, start, count, on);
        if (part === undefined || part === 'badCursor') return part;
        page.entries.push(...part.entries);
        page.nextSeq = part.nextSeq;
        if (part.nextSeq !== null) start = part.nextSeq;
      } while (page.nextSeq !== null && page.entries.length < limit);
      return page;
    });
  }

  private async entriesChunk(accountId: string, start: string, count: number,
    on: Redis): Promise<EntriesPage | 'badCursor' | undefined> {
    const k = this.keys;
    const reply = await this.runner.run('read-entries',
      [k.account(accountId), k.journal(), k.accountIds()], [accountId, start, String(count)],
      0, accountId, on);
    const [, exists, cursorOk, flat, next, ids] = reply;
    if (exists !== 1) return undefined;
    if (cursorOk !== 1) return 'badCursor';
    if (typeof next !== 'string') {
      throw new LedgerInvariantError('read-entries: reply of an unexpected shape');
    }
    return { entries: entriesOf(flat, ids), nextSeq: next === '0' ? null : next };
  }
}
