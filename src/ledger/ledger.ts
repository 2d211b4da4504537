/**
 * The ledger core's operations: accounts, transfers, batches and entries over Redis. It knows
 * nothing of HTTP; it returns outcomes as values, throws only for Redis failures
 * (src/redis/errors.ts) and bugs, and reports every decided outcome to its observer itself.
 * Transport is runner.ts, stored records records.ts, batching batch.ts, types types.ts.
 */
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import { asCluster } from '../redis/cluster.js';
import { type Mark, NodeAcks, ReplicaAcks } from '../redis/replica-acks.js';
import type { RedisLock } from '../redis/lock.js';
import type { ReadOptions } from '../redis/replicas.js';
import {
  atomicRefusal, atomicReplayConflict, batchCall, batchItem, chunks, holdArgs,
} from './batch.js';
import { ArchiveUnavailableError, LedgerInvariantError, StaleTargetError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { uuidv7 } from './ids.js';
import { compactArg, type LedgerKeys, ledgerKeys } from './keys.js';
import { missingAccounts } from './missing-accounts.js';
import {
  archiveChunkOf, archivedJournalRecords, journalRecords,
  ACCOUNT_FIELDS, JOURNAL_FIELDS, accountView, canonicalMetadata, compareSettled,
  compareWithRecord, decidedNow, isHold,
  entriesOf, fieldsOf, newAccountFields, settledNow, type StoredTransfer, storedTransfer,
  transferView,
} from './records.js';
import { replyStatus, ScriptRunner } from './runner.js';
import {
  DATA_FORMAT_UPGRADES_FROM, DATA_FORMAT_VERSION, loadScripts, type Script, type ScriptArg,
} from './scripts.js';
import { isRejection, statusCode } from './status.js';
import type {
  ArchiveChunk, ArchivedRecord, ArchiveReader, BalanceAt, KnownIds,
  FollowPage, JournalPage,
  Account, AccountInput, BatchInput, BatchOutcome, CloseAccountOutcome, CreateAccountOutcome,
  EntriesPage, Metadata, ExpiryOutcome, LedgerObserver, ReversalInput, SettleInput, Transfer,
  TransferInput, TransferOutcome, WriteOperation,
} from './types.js';

/**
 * A post, void or reversal names its target's accounts in KEYS, read just before; a target
 * decided between that read and the script makes the script refuse (STALE_KEYS) and the
 * ledger read again. Twice in a row would take a target decided twice: a bug.
 */
const STALE_KEYS_ATTEMPTS = 3;

/**
 * Holds this instance opened, and their accounts: a post or void of one needs no read before
 * its script (a hold's accounts never change, and the script refuses keys that are not its
 * accounts, STALE_KEYS, so a wrong entry costs a read, never a wrong answer). Bounded; the
 * oldest entries go first.
 */
const HOLD_ACCOUNTS_CACHED_MAX = 10_000;

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
  /**
   * Answer a write only once this many replicas have it (src/redis/replica-acks.ts); 0 or
   * unset: do not wait.
   */
  replicaAcks?: { required: number; timeoutMs: number };
  /**
   * The writes' own connection to the primary (default `redis`). With replica acks it should
   * be its own: WAIT blocks the connection it is sent on, and reads should not queue behind it.
   */
  writer?: Redis;
  /** Internal (sibling()): the acknowledgements' group commit of the first ledger. */
  sharedAcks?: ReplicaAcks | NodeAcks;
  /**
   * The PostgreSQL archive (LEDGER_ARCHIVE_URL), where records freed from Redis are read: a
   * replay of an archived id, a read of it, a post or reversal of an archived target.
   */
  archiveReader?: ArchiveReader;
}

/**
 * The outcome certainly wrote just now, on the writer connection (so WAIT covers it). Anything
 * else (a replay, a conflict, a not-found) may rest on a write made earlier or elsewhere, and
 * needs replica-acks.ts's mark before its WAIT.
 */
function wroteNow(outcome: unknown): boolean {
  const o = outcome as { kind?: string; replayed?: boolean; results?: unknown[] };
  switch (o.kind) {
    case 'created':
      return true;
    case 'decided':
      return o.results !== undefined ? o.results.every(wroteNow) : o.replayed === false;
    case 'closed':
      return o.replayed === false;
    default:
      return false;
  }
}

/** A ledger's own record (lua/create-ledger-1.lua): what `POST /ledgers` created. */
export interface LedgerRecord {
  name: string;
  /** Canonical metadata JSON. */
  metadata: string;
  /** ms since the epoch. */
  createdAt: string;
}

export type CreateLedgerOutcome =
  | { kind: 'created' | 'replayed'; record: LedgerRecord }
  | { kind: 'conflict'; fields: string[]; record: LedgerRecord };

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** An archived record in the shape of a script's EXISTS reply (after the status). */
function existsReply(r: ArchivedRecord): unknown[] {
  return [r.ref, r.fields, r.fromId, r.toId];
}

/** A post's, void's or reversal's archived target as script arguments (ref, record JSON). */
function givenArgs(given: ArchivedRecord | undefined): [string, string] {
  return given === undefined ? ['', ''] : [given.ref, JSON.stringify(given.fields)];
}

export class Ledger {
  readonly observer: LedgerObserver | undefined;
  private readonly options: LedgerOptions;
  private readonly redis: Redis;
  readonly keys: LedgerKeys;
  private readonly now: () => number;
  private readonly runner: ScriptRunner;
  private readonly group: GroupCommit | undefined;
  private readonly holdAccounts = new Map<string, [string, string]>();
  /** Replica acknowledgements this ledger waits for (LEDGER_REPLICA_ACKS), if any. */
  readonly acks: { readonly required: number } | undefined;
  /** Single-node modes: the writer connection's group commit, waited on in `write`. */
  private readonly replicaAcks: ReplicaAcks | undefined;
  /** A replay's mark: one field of the ledger's meta hash, the time of the last one. */
  private readonly mark: Mark = (on) => on.hset(this.keys.meta(), 'w', String(this.now()));

  constructor(options: LedgerOptions) {
    this.options = options;
    this.redis = options.redis;
    this.keys = options.keys;
    this.now = options.now ?? Date.now;
    this.observer = options.observer;
    const writer = options.writer ?? options.redis;
    const acks = options.replicaAcks;
    const observer = options.observer === undefined ? {} : { observer: options.observer };
    // One group commit per connection, shared by the siblings (sibling() passes it on).
    const shared = this.options.sharedAcks ?? (acks === undefined || acks.required === 0
      ? undefined
      : asCluster(writer) !== undefined
        ? new NodeAcks({ required: acks.required, timeoutMs: acks.timeoutMs, ...observer })
        : new ReplicaAcks({ redis: writer, required: acks.required, timeoutMs: acks.timeoutMs,
          ...observer }));
    this.options = { ...options, ...(shared === undefined ? {} : { sharedAcks: shared }) };
    this.acks = shared;
    this.replicaAcks = shared instanceof ReplicaAcks ? shared : undefined;
    this.runner = new ScriptRunner(options.redis, options.scripts ?? loadScripts(),
      options.replicas ?? [], options.observer, writer,
      shared instanceof NodeAcks ? shared : undefined);
    this.group = options.groupCommit === true ? new GroupCommit({
      single: (input, metadata) => this.decideAlone(input, metadata),
      group: (inputs, metadata) => this.decideGroup(inputs, metadata),
    }) : undefined;
  }

  /**
   * Another ledger on the same Redis, with this one's connections, scripts, observer and
   * settings: only the keys differ (its name is their hash tag).
   */
  sibling(name: string): Ledger {
    return new Ledger({ ...this.options, keys: ledgerKeys(this.keys.prefix, name),
      scripts: this.runner.scripts });
  }

  /** Records this ledger's existence, once (lua/create-ledger-1.lua). */
  createRecord(metadata: Metadata): Promise<CreateLedgerOutcome> {
    return this.write('ledger', async () => {
      const canonical = canonicalMetadata(metadata);
      const name = this.keys.ledger;
      const reply = await this.runner.run('create-ledger', [this.keys.meta()],
        [name, canonical, String(this.now())], 1, name);
      const [status, stored, createdAt] = replyStatus(reply);
      const record = { name, metadata: String(stored), createdAt: String(createdAt) };
      if (status === 'OK') return { kind: 'created', record };
      if (status !== 'EXISTS') throw new LedgerInvariantError(`create-ledger returned ${status}`);
      return record.metadata === canonical ? { kind: 'replayed', record }
        : { kind: 'conflict', fields: ['metadata'], record };
    });
  }

  /** This ledger's record, or undefined when it was never created. */
  async record(options?: ReadOptions): Promise<LedgerRecord | undefined> {
    const name = this.keys.ledger;
    const reply = await this.runner.read('read-hash', [this.keys.meta()], [name], 0, name,
      options);
    const fields = fieldsOf(reply[1]);
    if (fields.ln === undefined) return undefined;
    return { name, metadata: fields.lm ?? '{}', createdAt: fields.lc ?? '0' };
  }

  /** The ledger's clock (ms since the epoch): what its scripts are told the time is. */
  clock(): number {
    return this.now();
  }

  /** The connection for keyed commands of this ledger outside its scripts (its locks). */
  get connection(): Redis {
    return this.redis;
  }

  /** One of this ledger's scripts (the lock's, for src/redis/lock.ts). */
  script(name: string): Script {
    const script = this.runner.scripts.get(name);
    if (script === undefined) throw new Error(`no script ${name}`);
    return script;
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

  /**
   * Runs a write and reports a failure (unknown outcome, refused, or a bug), then rethrows.
   * With replica acks, the outcome is returned only once enough replicas have it: a client's
   * answer (201, 422, a replay, a 409) never rests on a write only the primary holds. The
   * sweeper's expiry answers no client and does not wait.
   */
  private async write<T>(operation: WriteOperation, body: () => Promise<T>): Promise<T> {
    try {
      const outcome = await body();
      if (this.replicaAcks !== undefined && operation !== 'expire') {
        await this.replicaAcks.covered(!wroteNow(outcome), this.mark);
      }
      return outcome;
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
      if (input.pending === true) this.rememberHold(outcome);
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
        k.journal(), k.rejections(), k.accountIds(), k.expiries(), k.holdStats()],
      [input.id, input.from, input.to, input.amount, input.currency ?? '', metadata, nowMs,
        input.createdBy, ...holdArgs(input, nowMs), compactArg(input.id)],
      1, input.id);
    const [status, ...rest] = replyStatus(reply);
    if (status === 'ARCHIVED') {
      return compareWithRecord(input, metadata, await this.archivedStored(input.id));
    }
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
        for (const result of outcome.results) {
          this.observer?.transferDecided?.(result);
          this.rememberHold(result);
        }
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
    if (status === 'ARCHIVED') { // a decided id among new ones, its record archived
      const input = transfers[Number(rest[0]) - 1];
      if (input === undefined) throw new LedgerInvariantError('transfer-batch: ARCHIVED, no item');
      return atomicRefusal(transfers, metadata, 'EXISTS',
        [rest[0], ...existsReply(await this.archivedRecord(input.id))]);
    }
    if (status !== 'OK') return atomicRefusal(transfers, metadata, status, rest);
    const results = rest[0];
    if (!Array.isArray(results) || results.length !== transfers.length) {
      throw new LedgerInvariantError('transfer-batch: not one result per transfer');
    }
    // Items decided before whose records were archived: read back, as if Redis had them.
    for (const [i, result] of results.entries()) {
      if (Array.isArray(result) && result[0] === statusCode.ARCHIVED) {
        const input = transfers[i] as TransferInput;
        results[i] = [statusCode.EXISTS, ...existsReply(await this.archivedRecord(input.id))];
      }
    }
    return { kind: 'decided', results: results.map((result, i) =>
      batchItem(transfers[i] as TransferInput, metadata[i] as string, nowMs, result)) };
  }

  /**
   * The accounts of a transfer rejected for ACCOUNT_NOT_FOUND that did not exist
   * (missing-accounts.ts); `recorded`: its rejection is stored under `t.id` (not an atomic batch
   * refused whole). Undefined when that cannot be told, Redis failing included: the transfer is
   * decided already, and its answer must not become a 503 for want of a name.
   */
  async missingAccounts(t: { id: string; from: string; to: string },
    recorded: boolean): Promise<string[] | undefined> {
    const primary = { from: 'primary' } as const;
    const read = async (id: string) => fieldsOf((await this.runner.read('read-hash',
      [this.keys.account(id)], [id], 0, id, primary))[1]);
    try {
      const record = recorded ? await this.storedRecord(t.id, primary) : undefined;
      if (recorded && record?.status !== 'ACCOUNT_NOT_FOUND') return undefined;
      return await missingAccounts(t.from, t.to,
        record === undefined ? undefined : record.accountsCurrency === '', read);
    } catch {
      return undefined;
    }
  }

  async getAccount(id: string, options?: ReadOptions): Promise<Account | undefined> {
    const reply = await this.runner.read('read-hash', [this.keys.account(id)], [id], 0, id,
      options);
    const fields = fieldsOf(reply[1]);
    return Object.keys(fields).length === 0 ? undefined : accountView(id, fields);
  }

  async getTransfer(id: string, options?: ReadOptions): Promise<Transfer | undefined> {
    const stored = await this.storedRecord(id, options);
    return stored === undefined ? undefined : transferView(id, stored, this.now());
  }

  /** A decided record as stored, with its state (a hold's, a transfer's reversed total). */
  private async storedRecord(id: string, options?: ReadOptions):
    Promise<StoredTransfer | undefined> {
    const k = this.keys;
    const reply = await this.runner.read('read-transfer',
      [k.transferBucket(id), k.journal(), k.rejections(), k.accountIds(), k.state()],
      [id, compactArg(id)], 0, id, options);
    if (reply[1] === '') {
      if (reply[2] !== 'archived') return undefined;
      const archived = await this.archivedRecord(id);
      // The state (a hold's, a reversed total) stays in Redis: it changes after archiving.
      const state = archived.ref.startsWith('-') ? ''
        : await this.redis.hget(k.state(), archived.ref) ?? '';
      return storedTransfer(archived.ref, archived.fields, archived.fromId, archived.toId, state);
    }
    return storedTransfer(reply[1], reply[2], reply[3], reply[4], String(reply[5] ?? ''));
  }

  /**
   * An id's record that Redis no longer holds (archived: src/archive/), from the archive. The
   * index says it was decided, so the archive must have it: without one, or if it does not
   * answer, this is a 503 and the client retries.
   */
  private async archivedRecord(id: string): Promise<ArchivedRecord> {
    const found = await this.fromArchive((reader) => reader.record(this.keys.ledger, id));
    if (found === undefined) {
      throw new ArchiveUnavailableError(`${id} is archived, and the archive does not have it ` +
        '(restored from an older backup? npm run audit names what is missing)');
    }
    return found;
  }

  private async archivedStored(id: string): Promise<StoredTransfer> {
    const r = await this.archivedRecord(id);
    return storedTransfer(r.ref, r.fields, r.fromId, r.toId);
  }

  /** Posts (`mode` post, optional amount) or voids a hold, once (lua/settle-11.lua). */
  settle(mode: 'post' | 'void', input: SettleInput): Promise<TransferOutcome> {
    return this.write('settle', async () => {
      const metadata = canonicalMetadata(input.metadata);
      const outcome = await this.decideTargeted(mode, input.holdId, input, metadata,
        (stored) => stored?.kind === 'hold' && stored.status === 'OK'
          ? [stored.from, stored.to] : undefined,
        (nowMs, from, to, given) => this.runner.run('settle',
          [this.keys.meta(), this.keys.transferBucket(input.id),
            this.keys.transferBucket(input.holdId), this.accountKey(from),
            this.accountKey(to), this.keys.journal(), this.keys.rejections(),
            this.keys.accountIds(), this.keys.state(), this.keys.expiries(),
            this.keys.holdStats()],
          [mode, input.id, input.holdId, input.amount ?? '', metadata, nowMs, input.createdBy,
            from, to, compactArg(input.id), compactArg(input.holdId), ...givenArgs(given)],
          1, input.id));
      this.observer?.transferDecided?.(outcome);
      return outcome;
    });
  }

  /** Reverses (part of) a committed transfer or post (lua/reverse-9.lua). */
  reverse(input: ReversalInput): Promise<TransferOutcome> {
    return this.write('reversal', async () => {
      const metadata = canonicalMetadata(input.metadata);
      const outcome = await this.decideTargeted('reversal', input.transferId, input, metadata,
        // The reversal runs the other way: from the original's `to`, to its `from`.
        (stored) => stored?.status === 'OK' && (stored.kind === 'transfer'
          || stored.kind === 'post') ? [stored.to, stored.from] : undefined,
        (nowMs, from, to, given) => this.runner.run('reverse',
          [this.keys.meta(), this.keys.transferBucket(input.id),
            this.keys.transferBucket(input.transferId), this.accountKey(from),
            this.accountKey(to), this.keys.journal(), this.keys.rejections(),
            this.keys.accountIds(), this.keys.state()],
          [input.id, input.transferId, input.amount ?? '', metadata, nowMs, input.createdBy,
            from, to, compactArg(input.id), compactArg(input.transferId), ...givenArgs(given)],
          1, input.id));
      this.observer?.transferDecided?.(outcome);
      return outcome;
    });
  }

  private rememberHold(outcome: TransferOutcome): void {
    if (outcome.kind !== 'decided' || outcome.transfer.kind !== 'hold'
      || outcome.transfer.status !== 'committed') return;
    const { id, from, to } = outcome.transfer;
    if (this.holdAccounts.size >= HOLD_ACCOUNTS_CACHED_MAX) {
      const oldest = this.holdAccounts.keys().next().value;
      if (oldest !== undefined) this.holdAccounts.delete(oldest);
    }
    this.holdAccounts.set(id, [from, to]);
  }

  /** An account's key, or for an unknown one ('') a key of this ledger the script ignores. */
  private accountKey(id: string): string {
    return id === '' ? this.keys.meta() : this.keys.account(id);
  }

  /**
   * A post, void or reversal: reads its target to learn the accounts it moves between (KEYS
   * must name them), then runs the script; `accountsOf` gives [from, to] of this movement
   * for a target it can apply to, else undefined (the script then rejects it, recorded).
   */
  private async decideTargeted(kind: 'post' | 'void' | 'reversal', target: string,
    input: SettleInput | ReversalInput, metadata: string,
    accountsOf: (stored: StoredTransfer | undefined) => [string, string] | undefined,
    call: (nowMs: string, from: string, to: string, given?: ArchivedRecord) =>
      Promise<unknown[]>):
    Promise<TransferOutcome> {
    const targetField = kind === 'reversal' ? 'transferId' : 'holdId';
    let cached = kind === 'reversal' ? undefined : this.holdAccounts.get(target);
    // The target's record, once the script said it is archived (read from the archive).
    let given: ArchivedRecord | undefined;
    for (let attempt = 1; attempt <= STALE_KEYS_ATTEMPTS; attempt++) {
      // On the writes' connection: a replica that lags may not have the target yet, and every
      // retry would then name stale keys again; and during a failover the reads' connection
      // may still be on the old primary while the writes' is on the new one.
      const [from, to] = cached
        ?? accountsOf(await this.storedRecord(target, { from: 'writer' })) ?? ['', ''];
      cached = undefined;
      const nowMs = String(this.now());
      const [status, ...rest] = replyStatus(await call(nowMs, from, to, given));
      if (status === 'STALE_KEYS') continue;
      if (status === 'ARCHIVED' && rest[0] === 'target' && given === undefined) {
        given = await this.archivedRecord(target);
        attempt--; // not a stale read: the same accounts, now with the target's record
        continue;
      }
      if (status === 'ARCHIVED') {
        return compareSettled(kind, target, targetField, input, metadata,
          await this.archivedStored(input.id));
      }
      if (status === 'EXISTS') {
        return compareSettled(kind, target, targetField, input, metadata,
          storedTransfer(rest[0], rest[1], rest[2], rest[3]));
      }
      if (status !== 'OK' && !isRejection(status)) {
        throw new LedgerInvariantError(`${kind} returned ${status}`);
      }
      return { kind: 'decided', replayed: false, transfer: transferView(input.id,
        settledNow(kind, input, target, from, to, metadata, nowMs, status, rest.map(String))) };
    }
    throw new StaleTargetError(`${kind} ${input.id}: its target's accounts kept changing`);
  }

  /** Closes an account, once (lua/close-account-2.lua). */
  closeAccount(id: string): Promise<CloseAccountOutcome> {
    return this.write('close', async () => {
      const reply = await this.runner.run('close-account', [this.keys.meta(),
        this.keys.account(id)], [id, String(this.now())], 1, id);
      const [status, stored] = replyStatus(reply);
      if (status === 'ACCOUNT_NOT_FOUND') return { kind: 'notFound' };
      if (status !== 'OK' && status !== 'EXISTS') {
        throw new LedgerInvariantError(`close-account returned ${status}`);
      }
      return { kind: 'closed', account: accountView(id, fieldsOf(stored)),
        replayed: status === 'EXISTS' };
    });
  }

  /**
   * One call of the expiry sweep: up to HOLDS_EXPIRE_BATCH_MAX holds whose expiry is at or
   * before now, oldest first, released (lua/expire-holds-6.lua). Safe to run anywhere, any
   * number of times at once: a hold is released once whoever gets there first.
   */
  expireHolds(max: number = limits.HOLDS_EXPIRE_BATCH_MAX): Promise<ExpiryOutcome> {
    return this.write('expire', async () => {
      const k = this.keys;
      const nowMs = String(this.now());
      const seqs = await this.redis.zrangebyscore(k.expiries(), '-inf', nowMs, 'LIMIT', 0, max);
      if (seqs.length === 0) return { released: [], skipped: 0 };
      // Each hold's accounts, by number from its journal record, then by id.
      const records = await Promise.all(seqs.map((seq) =>
        this.redis.xrange(k.journal(), `0-${seq}`, `0-${seq}`)));
      const numbers = records.map((r) => {
        const fields = fieldsOf(r[0]?.[1] ?? []);
        return [fields.f ?? '', fields.t ?? ''];
      });
      const ids = await this.redis.hmget(k.accountIds(), ...numbers.flat().map((n) => n || '-'));
      const keys = [k.meta(), k.journal(), k.accountIds(), k.state(), k.expiries(),
        k.holdStats()];
      const index = new Map<string, number>();
      const keyIndex = (id: string | null): string => {
        const key = id === null ? k.meta() : k.account(id);
        let i = index.get(key);
        if (i === undefined) {
          i = keys.push(key);
          index.set(key, i);
        }
        return String(i);
      };
      const args = [seqs[0] as string, nowMs, String(seqs.length)];
      seqs.forEach((seq, i) => {
        args.push(seq, keyIndex(ids[2 * i] ?? null), keyIndex(ids[2 * i + 1] ?? null));
      });
      const reply = await this.runner.run('expire-holds', keys, args, 1, args[0] as string);
      const [status, released, skipped] = replyStatus(reply);
      if (status !== 'OK' || !Array.isArray(released)) {
        throw new LedgerInvariantError(`expire-holds returned ${status}`);
      }
      const outcome: ExpiryOutcome = {
        released: released.map((r: unknown) => {
          const [seq, expiresAt, amount, currency] = (r as unknown[]).map(String);
          return { seq: seq ?? '', expiresAt: expiresAt ?? '', amount: amount ?? '',
            currency: currency ?? '' };
        }),
        skipped: Number(skipped),
      };
      this.observer?.holdsExpired?.(outcome, Number(nowMs));
      return outcome;
    });
  }

  /** The open holds' expiry index's oldest entry at or before now: its expiry (ms), or null. */
  async oldestExpiredHold(): Promise<number | null> {
    const oldest = await this.redis.zrangebyscore(this.keys.expiries(), '-inf',
      String(this.now()), 'WITHSCORES', 'LIMIT', 0, 1);
    return oldest[1] === undefined ? null : Number(oldest[1]);
  }

  /**
   * Committed records after seq `after`, oldest first, at most `limit` (GET /journal), read in
   * calls of JOURNAL_READ_CHUNK_MAX on one connection (the journal only grows at its end, so
   * the calls together are one consistent page).
   */
  async readJournal(after: string, limit: number, options?: ReadOptions): Promise<JournalPage> {
    if (!Number.isInteger(limit) || limit < 1 || limit > limits.JOURNAL_PAGE_LIMIT_MAX) {
      throw new Error(`readJournal: limit ${limit} out of range`);
    }
    const k = this.keys;
    return this.runner.readOn(options, async (on) => {
      const page: JournalPage = { records: [], head: '0' };
      let from = after;
      for (;;) {
        const count = Math.min(limit - page.records.length, limits.JOURNAL_READ_CHUNK_MAX);
        const tag = `journal:${from}`;
        const [, entries, ids, head] = await this.runner.run('read-journal',
          [k.journal(), k.accountIds()], [tag, from, String(count)], 0, tag, on);
        const records = journalRecords(entries, ids);
        page.head = String(head);
        const first = records[0]?.seq;
        if (first !== undefined && BigInt(first) !== BigInt(from) + 1n) {
          // The records in between were freed (archived; the newest record never is): they
          // come from PostgreSQL, which has every one of them, in order.
          const archived = await this.fromArchive((reader) => reader.journal(this.keys.ledger,
            from, String(BigInt(first) - 1n), count));
          if (archived.length === 0) {
            throw new ArchiveUnavailableError(`the archive lacks the records after ${from}`);
          }
          page.records.push(...archivedJournalRecords(archived));
          if (page.records.length >= limit) return page;
          from = archived.at(-1)?.seq as string;
          continue;
        }
        page.records.push(...records);
        if (records.length < count || page.records.length >= limit) return page;
        from = records.at(-1)?.seq as string;
      }
    });
  }

  /**
   * The journal's newest seq on the primary ('0': empty): what a long poll watches, ~50 times
   * a second, so it is not counted as a read (ledger_reads_total counts clients' reads).
   */
  async journalHead(): Promise<string> {
    const top = await this.redis.xrevrange(this.keys.journal(), '+', '-', 'COUNT', 1);
    return top[0]?.[0].slice(2) ?? '0';
  }

  /**
   * A journal follower's next chunk (lua/follow-5.lua), after its saved position or after
   * `after`, if `lock` is still its holder's: undefined when it is not (someone else follows
   * now). With replica acks, the chunk is returned only once enough replicas have everything
   * in it: a follower hands records to the world outside Redis, and a record handed on and
   * then lost in a failover would leave its seq to a different record.
   */
  async follow(lock: RedisLock, name: string, count: number, after = ''):
    Promise<FollowPage | undefined> {
    const reply = await this.runner.run('follow', this.followKeys(lock),
      [lock.token, name, 'read', String(count), after], 0, lock.token);
    if (reply[1] !== 1) return undefined;
    // (In a cluster the runner has already waited: every writing script is acknowledged.)
    if (this.replicaAcks !== undefined) await this.replicaAcks.covered(true, this.mark);
    const position = String(reply[2]);
    const records = journalRecords(reply[3], reply[4]);
    const from = after === '' ? position : after;
    const first = records[0]?.seq;
    if (first !== undefined && BigInt(first) !== BigInt(from) + 1n) {
      // The archive freed records after this follower's position: it started after they were
      // (freeing waits for followers it knows). They come from PostgreSQL, in order.
      const archived = await this.fromArchive((reader) => reader.journal(this.keys.ledger,
        from, String(BigInt(first) - 1n), count));
      if (archived.length === 0) {
        throw new ArchiveUnavailableError(`the archive lacks the records after ${from}`);
      }
      return { position, records: archivedJournalRecords(archived), head: String(reply[5]) };
    }
    return { position, records, head: String(reply[5]) };
  }

  /** Saves a follower's position (it handed on every record up to `seq`); false: lock lost. */
  async saveFollowPosition(lock: RedisLock, name: string, seq: string): Promise<boolean> {
    const reply = await this.runner.run('follow', this.followKeys(lock),
      [lock.token, name, 'save', seq], 0, lock.token);
    return reply[1] === 1;
  }

  /** lua/follow-5.lua's KEYS. */
  private followKeys(lock: RedisLock): string[] {
    const k = this.keys;
    return [k.meta(), lock.key, k.positions(), k.journal(), k.accountIds()];
  }

  /**
   * The archiver's next chunk of both streams after the archive's own positions, if `lock` is
   * still its holder's (undefined: it is not). Plain reads, not a script: a script hands every
   * field of every record to Lua and back, which cost Redis ~4 µs per record against ~1.5 for
   * the XRANGE alone (measured over 250 records of 30 fields). Nothing here needs them read
   * at once: a record never changes once written, and the heads and positions read after it
   * (same connection, in order) are at least as new. The data format is checked as the scripts
   * check it. Like follow(), with replica acks it waits until enough replicas have everything
   * read: a record copied out and then lost in a failover would leave its seq to another.
   */
  async archiveRead(lock: RedisLock, count: number, afterSeq: string, afterRejection: string):
    Promise<ArchiveChunk | undefined> {
    const k = this.keys;
    const r = this.redis;
    const [holder, format, journal, rejections, journalTop, rejectionsTop, saved] =
      await Promise.all([r.get(lock.key), r.hget(k.meta(), 'fmt'),
        r.xrange(k.journal(), `(0-${afterSeq}`, '+', 'COUNT', count),
        r.xrange(k.rejections(), `(0-${afterRejection}`, '+', 'COUNT', count),
        r.xrevrange(k.journal(), '+', '-', 'COUNT', 1),
        r.xrevrange(k.rejections(), '+', '-', 'COUNT', 1),
        r.hmget(k.positions(), 'archive', 'archive:r')]);
    if (holder !== lock.token) return undefined;
    if (format !== null && format !== DATA_FORMAT_VERSION
      && format !== DATA_FORMAT_UPGRADES_FROM) {
      throw new LedgerInvariantError(`archive: the ledger's data format ${format} is not one ` +
        'this release reads');
    }
    const chunk = await archiveChunkOf({ journal, rejections, journalTop, rejectionsTop, saved },
      (numbers) => r.hmget(k.accountIds(), ...numbers));
    if (this.replicaAcks !== undefined) await this.replicaAcks.covered(true, this.mark);
    return chunk;
  }

  /** Notes in Redis how far PostgreSQL has committed the archive; false: lock lost. */
  async archiveSave(lock: RedisLock, seq: string, rejection: string, journalHash: string,
    rejectionsHash: string): Promise<boolean> {
    const reply = await this.runner.run('archive', this.archiveKeys(lock),
      [lock.token, 'save', seq, rejection, journalHash, rejectionsHash], 0, lock.token);
    return reply[1] === 1;
  }

  /** How far Redis has noted the archive: [seq, rejection number] ('0': nothing yet). */
  async archivedInRedis(): Promise<[string, string]> {
    const [seq, rejection] = await this.redis.hmget(this.keys.positions(), 'archive',
      'archive:r');
    return [seq ?? '0', rejection ?? '0'];
  }

  /**
   * Frees what PostgreSQL has (lua/archive-7.lua 'free'), one call of at most
   * JOURNAL_READ_CHUNK_MAX records: first pinned open holds to look at again (`pinnedToo`),
   * then the records after the freed positions, up to seq `upto` and rejection `uptoN`.
   * Returns what it freed and pinned, and whether records up to there remain; undefined: the
   * lock is lost.
   */
  async archiveFree(lock: RedisLock, upto: bigint, uptoN: bigint, pinnedToo: boolean,
    known: { journal?: KnownIds; rejections?: KnownIds } = {}):
    Promise<{ freed: number; pinned: number; more: boolean; seq: bigint; rejection: bigint }
      | undefined> {
    const k = this.keys;
    const budget = limits.JOURNAL_READ_CHUNK_MAX;
    const [f, fr] = await this.redis.hmget(k.positions(), 'archive:f', 'archive:fr');
    // The script's stream codes: 'h' is a journal record that is a hold.
    const items: Array<{ stream: 'j' | 'h' | 'r'; number: string; id: string }> = [];
    const add = (stream: 'j' | 'r', entries: Array<[string, string[]]>) => {
      for (const [sid, fields] of entries) {
        items.push({ stream: stream === 'j' && isHold(fields) ? 'h' : stream,
          number: sid.slice(2), id: fields[1] as string });
      }
    };
    if (pinnedToo) {
      const pinned = await this.redis.zrange(k.pinned(), 0, limits.ARCHIVE_PINNED_CHECK_MAX - 1);
      for (const seq of pinned) {
        add('j', await this.redis.xrange(k.journal(), `0-${seq}`, `0-${seq}`));
      }
    }
    // The ids come from what the archiver holds when it holds them all, else from the stream
    // (the script checks each against the index either way).
    const next = async (stream: 'j' | 'r', after: bigint, upto: bigint,
      ids: KnownIds | undefined): Promise<bigint> => {
      const count = budget - items.length;
      if (upto <= after || count <= 0) return after;
      const last = after + BigInt(count) < upto ? after + BigInt(count) : upto;
      if (ids !== undefined && ids.first <= after + 1n
        && ids.first + BigInt(ids.ids.length) > last) {
        for (let number = after + 1n; number <= last; number++) {
          const i = Number(number - ids.first);
          items.push({ stream: stream === 'j' && ids.holds[i] === true ? 'h' : stream,
            number: String(number), id: ids.ids[i] as string });
        }
        return last;
      }
      const entries = await this.redis.xrange(stream === 'j' ? k.journal() : k.rejections(),
        `(0-${after}`, `0-${upto}`, 'COUNT', count);
      add(stream, entries);
      return entries.length > 0 ? BigInt((entries.at(-1) as [string, string[]])[0].slice(2))
        : after;
    };
    const seq = await next('j', BigInt(f ?? '0'), upto, known.journal);
    const n = await next('r', BigInt(fr ?? '0'), uptoN, known.rejections);
    const more = seq < upto || n < uptoN;
    const keys = this.archiveKeys(lock);
    const index = new Map<string, number>();
    const args: ScriptArg[] = [lock.token, 'free', String(seq), String(n), String(items.length)];
    for (const item of items) {
      const bucket = k.transferBucket(item.id);
      let i = index.get(bucket);
      if (i === undefined) {
        i = keys.push(bucket);
        index.set(bucket, i);
      }
      args.push(item.stream, item.number, String(i), item.id, compactArg(item.id));
    }
    const reply = await this.runner.run('archive', keys, args, 0, lock.token);
    if (reply[1] !== 1) return undefined;
    return { freed: Number(reply[2]), pinned: Number(reply[3]), more, seq, rejection: n };
  }

  /** lua/archive-7.lua's KEYS (without the buckets that a free adds). */
  private archiveKeys(lock: RedisLock): string[] {
    const k = this.keys;
    return [k.meta(), lock.key, k.positions(), k.journal(), k.rejections(), k.state(),
      k.pinned()];
  }

  /** A follower's saved position ('0': none yet). */
  async followPosition(name: string): Promise<string> {
    return (await this.redis.hget(this.keys.positions(), name)) ?? '0';
  }

  /** Open holds per currency: count and amount (hold-stats hash). */
  async openHolds(): Promise<Map<string, { count: number; amount: string }>> {
    const flat = await this.redis.hgetall(this.keys.holdStats());
    const out = new Map<string, { count: number; amount: string }>();
    for (const [name, value] of Object.entries(flat)) {
      const currency = name.slice(2);
      const entry = out.get(currency) ?? { count: 0, amount: '0' };
      if (name.startsWith('n:')) entry.count = Number(value);
      else if (name.startsWith('a:')) entry.amount = value;
      out.set(currency, entry);
    }
    return out;
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
      [k.account(accountId), k.journal(), k.accountIds(), k.positions()],
      [accountId, start, String(count)], 0, accountId, on);
    const [, exists, cursorOk, flat, next, ids, archive] = reply;
    if (exists !== 1) return undefined;
    if (cursorOk !== 1) return 'badCursor';
    if (typeof next !== 'string') {
      throw new LedgerInvariantError('read-entries: reply of an unexpected shape');
    }
    const entries = entriesOf(flat, ids);
    if (archive !== 'archive') return { entries, nextSeq: next === '0' ? null : next };
    // The rest is in the archive: every entry at or before `next` (the record there was freed).
    const rest = await this.fromArchive((reader) => reader.entries(this.keys.ledger, accountId,
      next, count - entries.length));
    if (entries.length === 0 && start !== '' && rest.entries[0]?.seq !== start) {
      return 'badCursor';
    }
    return { entries: [...entries, ...rest.entries], nextSeq: rest.nextSeq };
  }

  /**
   * An account's balance and totals as they stood after the ledger's record at `point`: a seq
   * (past the newest: the newest), or a time (the newest record committed at or before it).
   * Undefined when the account does not exist. From Redis while the entries after the point
   * are there (a walk back from the newest, ENTRIES_READ_CHUNK_MAX a call), else PostgreSQL.
   */
  async balanceAt(accountId: string, point: { seq: string } | { atMs: number },
    options?: ReadOptions): Promise<BalanceAt | undefined> {
    const k = this.keys;
    return this.runner.readOn(options, async (on) => {
      const head = BigInt((await on.xrevrange(k.journal(), '+', '-', 'COUNT', 1))[0]?.[0]
        .slice(2) ?? '0');
      const seq = 'seq' in point ? min(BigInt(point.seq), head) : await this.seqAt(point.atMs,
        head, on);
      let cursor = '';
      let totals = { debits: '0', credits: '0' };
      for (;;) {
        const tag = accountId;
        const reply = await this.runner.run('read-balance',
          [k.account(accountId), k.journal(), k.positions()],
          [tag, String(seq), String(limits.ENTRIES_READ_CHUNK_MAX), cursor, totals.debits,
            totals.credits], 0, tag, on);
        const [, exists, state, debits, credits, next] = reply.map(String);
        if (exists !== '1') return undefined;
        if (state === 'archive') {
          totals = await this.fromArchive((reader) => reader.totalsAt(k.ledger, accountId,
            String(seq)));
          break;
        }
        totals = { debits: debits as string, credits: credits as string };
        if (state === 'done') break;
        cursor = next as string;
      }
      return { balance: (BigInt(totals.credits) - BigInt(totals.debits)).toString(),
        debits: totals.debits, credits: totals.credits, seq: String(seq) };
    });
  }

  /**
   * The newest seq committed at or before `atMs` ('0': none): the records in Redis newest
   * first (those after the freed seq; the newest always stays), then the archive, which has
   * every record at or before the freed seq.
   */
  private async seqAt(atMs: number, head: bigint, on: Redis): Promise<bigint> {
    const k = this.keys;
    const freed = BigInt(await on.hget(k.positions(), 'archive:f') ?? '0');
    let end = '+';
    for (;;) {
      const chunk = await on.xrevrange(k.journal(), end, `(0-${freed}`, 'COUNT',
        limits.JOURNAL_READ_CHUNK_MAX);
      for (const [sid, fields] of chunk) {
        const at = fields[fields.indexOf(JOURNAL_FIELDS.CREATED_AT) + 1];
        if (Number(at) <= atMs) return BigInt(sid.slice(2));
      }
      if (chunk.length < limits.JOURNAL_READ_CHUNK_MAX) break;
      end = `(${(chunk.at(-1) as [string, string[]])[0]}`;
    }
    if (freed === 0n) return 0n;
    const found = BigInt(await this.fromArchive((reader) => reader.seqAt(k.ledger, atMs)));
    return found > head ? head : found;
  }

  /** A read of the archive: a 503 (ArchiveUnavailableError) without one, or if it fails. */
  private async fromArchive<T>(read: (reader: ArchiveReader) => Promise<T>): Promise<T> {
    const archive = this.options.archiveReader;
    if (archive === undefined) {
      throw new ArchiveUnavailableError('records were archived, and LEDGER_ARCHIVE_URL is not set');
    }
    try {
      return await read(archive);
    } catch (error) {
      throw new ArchiveUnavailableError(`archive: ${(error as Error).message}`, { cause: error });
    }
  }
}
