/**
 * The ledger core: accounts, transfers and entries over Redis. It knows nothing of HTTP; it
 * returns outcomes as values, and throws only for Redis failures (see errors.ts) and bugs.
 */
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import { readStoredSigned } from './amount.js';
import { LedgerInvariantError, ReplyMismatchError } from './errors.js';
import { uuidv7 } from './ids.js';
import type { LedgerKeys } from './keys.js';
import { type ReadObserver, type ReadOptions, ReadRouting } from './replicas.js';
import {
  ensureScriptsLoaded, loadScripts, runScript, type Script, type ScriptObserver,
} from './scripts.js';
import {
  isRejection, type RejectionReason, type ScriptStatus, statusCode, statusName,
} from './status.js';

export type Metadata = Record<string, string>;


export interface AccountInput {
  id?: string;
  currency: string;
  /** Canonical decimal or 'unlimited'. */
  overdraftLimit: string;
  metadata: Metadata;
  /** The API key's name (never a secret). */
  createdBy: string;
}

export interface Account {
  id: string;
  currency: string;
  balance: string;
  debits: string;
  credits: string;
  overdraftLimit: string;
  metadata: Metadata;
  createdAt: string;
  createdBy?: string;
}

export interface TransferInput {
  id: string;
  from: string;
  to: string;
  /** Canonical decimal 1 .. 2^128−1. */
  amount: string;
  currency?: string;
  metadata: Metadata;
  /** The API key's name (never a secret). */
  createdBy: string;
}

export interface Transfer {
  id: string;
  from: string;
  to: string;
  amount: string;
  /** Absent only on a rejection where neither the client nor an account named one. */
  currency?: string;
  status: 'committed' | 'rejected';
  reason?: RejectionReason;
  seq?: string;
  fromBalanceAfter?: string;
  toBalanceAfter?: string;
  metadata: Metadata;
  createdAt: string;
  createdBy?: string;
}

export interface Entry {
  transferId: string;
  seq: string;
  amount: string;
  balanceAfter: string;
  counterparty: string;
  createdAt: string;
}

export type CreateAccountOutcome =
  | { kind: 'created'; account: Account }
  | { kind: 'replayed'; account: Account }
  | { kind: 'conflict'; fields: string[] };

export type TransferOutcome =
  /** Decided now (committed or rejected) or, when `replayed`, decided before. */
  | { kind: 'decided'; transfer: Transfer; replayed: boolean }
  | { kind: 'conflict'; fields: string[] };

export interface BatchInput {
  transfers: TransferInput[];
  /** All or nothing (one script) rather than each transfer on its own (chunked scripts). */
  atomic: boolean;
}

export type BatchOutcome =
  /** Every transfer's outcome, in order (for an atomic batch: all committed, or all replayed). */
  | { kind: 'decided'; results: TransferOutcome[] }
  /** Atomic only, nothing written: transfer `index` (0-based) would be rejected for `reason`. */
  | { kind: 'atomicRejected'; index: number; reason: RejectionReason }
  /**
   * Atomic only, nothing written: transfer `index` has a decided id, among new ones (`fields`
   * empty) or with other fields than decided (`fields` names them).
   */
  | { kind: 'atomicExists'; index: number; fields: string[] };

export interface EntriesPage {
  entries: Entry[];
  /** Seq of the newest entry of the next page (older than this one), null at the end. */
  nextSeq: string | null;
}

export interface LedgerOptions {
  redis: Redis;
  keys: LedgerKeys;
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number;
  /** Told of every script call (metrics); see `setObserver` for one attached later. */
  observer?: LedgerObserver;
  /** The scripts to run; default: this build's `lua/`. Tests pass another release's. */
  scripts?: Map<string, Script>;
  /** Read replicas (replicas.ts): reads may go there; writes never do. */
  replicas?: readonly Redis[];
}

/** What the ledger reports as it works; the metrics plugin implements it (no Fastify here). */
export interface LedgerObserver extends ScriptObserver, ReadObserver {}

/** Canonical JSON of metadata: sorted keys, so equal metadata compares equal as a string. */
export function canonicalMetadata(metadata: Metadata): string {
  const sorted: Metadata = {};
  for (const key of Object.keys(metadata).sort()) sorted[key] = metadata[key] as string;
  return JSON.stringify(sorted);
}

export class Ledger {
  readonly scripts: Map<string, Script>;
  private readonly redis: Redis;
  private readonly keys: LedgerKeys;
  private readonly now: () => number;
  private observer: LedgerObserver | undefined;
  private readonly reads: ReadRouting;

  constructor(options: LedgerOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.now = options.now ?? Date.now;
    this.observer = options.observer;
    this.scripts = options.scripts ?? loadScripts();
    this.reads = new ReadRouting(options.replicas ?? []);
  }

  /** The read replicas' connections (readiness reports their health). */
  get replicas(): readonly Redis[] {
    return this.reads.replicas;
  }

  /**
   * The app's metrics are created with the app, after the ledger (server.ts builds the ledger
   * first), so the observer can be attached, and detached when the app closes.
   */
  setObserver(observer: LedgerObserver | undefined): void {
    this.observer = observer;
  }

  getObserver(): LedgerObserver | undefined {
    return this.observer;
  }

  /**
   * Runs a script and proves the reply is its own: element `echoAt` must echo `tag`. Replies on
   * one connection come back in order, so a lost or extra reply (a broken proxy, a desynced
   * stream) would hand every later command another's reply; and a timed-out command leaves the
   * connection in an unknown state. Both reset the connection and answer 503 (outcome unknown):
   * the client retries with the same id, which is always safe.
   * A BUSY reply (another script past busy-reply-threshold) or READONLY (the primary became a
   * replica; ioredis reconnects, see client.ts) is thrown as it is: 503, retry with the same id.
   * `on` is a read replica's connection (reads only); the primary by default.
   */
  private async run(name: string, keys: string[], args: string[], echoAt: number,
    tag: string, on: Redis = this.redis): Promise<unknown[]> {
    let reply: unknown;
    try {
      reply = await runScript(on, this.script(name), keys, args, this.observer);
    } catch (error) {
      if (error instanceof Error && /Command timed out/.test(error.message)) {
        this.resetConnection(on);
      }
      throw error;
    }
    if (!Array.isArray(reply) || reply[echoAt] !== tag) {
      this.resetConnection(on);
      throw new ReplyMismatchError(`${name}: a reply that is not this command's (tag ${tag})`);
    }
    return reply;
  }

  /** A read, on a replica or the primary as `options` and the replicas' health decide. */
  private read(name: string, keys: string[], args: string[], echoAt: number, tag: string,
    options: ReadOptions | undefined): Promise<unknown[]> {
    return this.reads.run(options,
      (on) => this.run(name, keys, args, echoAt, tag, on ?? this.redis), this.observer);
  }

  private readonly lastResetMs = new Map<Redis, number>();

  /** Drops the connection and reconnects (ioredis re-sends what was in flight); once per burst. */
  private resetConnection(redis: Redis): void {
    const now = Date.now();
    if (now - (this.lastResetMs.get(redis) ?? 0) < limits.REDIS_CONNECTION_RESET_INTERVAL_MS) {
      return;
    }
    this.lastResetMs.set(redis, now);
    redis.disconnect(true);
  }

  private script(name: string): Script {
    const script = this.scripts.get(name);
    if (!script) throw new Error(`no script ${name}`);
    return script;
  }

  /** Puts every script into Redis's cache; used at start-up and by the readiness check. */
  ensureScripts(): Promise<boolean> {
    return ensureScriptsLoaded(this.redis, this.scripts.values());
  }

  /** The data-format version the ledger's data carries (undefined: nothing written yet). */
  async dataFormat(): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.meta(), 'fmt')) ?? undefined;
  }

  async createAccount(input: AccountInput): Promise<CreateAccountOutcome> {
    const nowMs = this.now();
    const id = input.id ?? uuidv7(nowMs);
    const metadata = canonicalMetadata(input.metadata);
    const reply = await this.run('create-account',
      [this.keys.meta(), this.keys.account(id), this.keys.accountIds()],
      [id, input.currency, input.overdraftLimit, metadata, String(nowMs), input.createdBy], 1, id);
    const [status, stored] = replyStatus(reply);
    if (status === 'OK') {
      return { kind: 'created', account: accountView(id, { cur: input.currency, dr: '0', cr: '0',
        od: input.overdraftLimit, m: metadata, at: String(nowMs), by: input.createdBy }) };
    }
    if (status !== 'EXISTS') throw new LedgerInvariantError(`create-account returned ${status}`);
    const record = hashReply(stored);
    const fields: string[] = [];
    if (record.cur !== input.currency) fields.push('currency');
    if (record.od !== input.overdraftLimit) fields.push('overdraftLimit');
    if (record.m !== metadata) fields.push('metadata');
    if (fields.length > 0) return { kind: 'conflict', fields };
    return { kind: 'replayed', account: accountView(id, record) };
  }

  async transfer(input: TransferInput): Promise<TransferOutcome> {
    const nowMs = String(this.now());
    const metadata = canonicalMetadata(input.metadata);
    const k = this.keys;
    const reply = await this.run('transfer',
      [k.meta(), k.transferBucket(input.id), k.account(input.from), k.account(input.to),
        k.journal(), k.rejections(), k.accountIds()],
      [input.id, input.from, input.to, input.amount, input.currency ?? '', metadata, nowMs,
        input.createdBy],
      1, input.id);
    const [status, ...rest] = replyStatus(reply);
    if (status === 'EXISTS') {
      return compareWithRecord(input, metadata, storedRecord(rest[0], rest[1], rest[2], rest[3]));
    }
    if (status !== 'OK' && !isRejection(status)) {
      throw new LedgerInvariantError(`transfer returned ${status}`);
    }
    return { kind: 'decided', replayed: false,
      transfer: decidedNow(input, metadata, nowMs, status, rest.map(String)) };
  }

  /**
   * Decides a batch. Atomic: one script, all or nothing. Otherwise chunks of
   * BATCH_CHUNK_TRANSFERS_MAX, one script each and one after another, so no script holds Redis
   * longer than BATCH_CHUNK_BUDGET_MS; a failure (503) leaves earlier chunks decided and later
   * ones untouched, and a retry of the whole batch with the same ids is safe.
   */
  async transferBatch(batch: BatchInput): Promise<BatchOutcome> {
    const { transfers, atomic } = batch;
    if (transfers.length < 1 || transfers.length > limits.BATCH_TRANSFERS_MAX) {
      throw new Error(`transferBatch: ${transfers.length} transfers`);
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
    if (atomic && results.every((r) => r.kind === 'conflict' || r.replayed)) {
      const index = results.findIndex((r) => r.kind === 'conflict');
      const conflict = results[index];
      if (conflict?.kind === 'conflict') {
        return { kind: 'atomicExists', index, fields: conflict.fields };
      }
    }
    return { kind: 'decided', results };
  }

  private async batchChunk(transfers: TransferInput[], metadata: string[], atomic: boolean,
    nowMs: string, createdBy: string): Promise<BatchOutcome> {
    const k = this.keys;
    const keys = [k.meta(), k.journal(), k.rejections(), k.accountIds()];
    const index = new Map<string, number>();
    const keyIndex = (key: string): string => {
      let i = index.get(key);
      if (i === undefined) {
        i = keys.push(key); // KEYS are 1-based in Lua: the new length is the index
        index.set(key, i);
      }
      return String(i);
    };
    const args = [(transfers[0] as TransferInput).id, atomic ? '1' : '0', nowMs, createdBy,
      String(transfers.length)];
    for (const [i, t] of transfers.entries()) {
      args.push(t.id, t.from, t.to, t.amount, t.currency ?? '', metadata[i] as string,
        keyIndex(k.account(t.from)), keyIndex(k.account(t.to)),
        keyIndex(k.transferBucket(t.id)));
    }
    const reply = await this.run('transfer-batch', keys, args, 1, args[0] as string);
    const [status, ...rest] = replyStatus(reply);
    if (status !== 'OK') return atomicFailure(transfers, metadata, status, rest);
    const results = rest[0];
    if (!Array.isArray(results) || results.length !== transfers.length) {
      throw new LedgerInvariantError('transfer-batch: not one result per transfer');
    }
    return { kind: 'decided', results: results.map((result, i) =>
      batchItem(transfers[i] as TransferInput, metadata[i] as string, nowMs, result)) };
  }

  private async readHash(key: string, id: string,
    options?: ReadOptions): Promise<Record_ | undefined> {
    const reply = await this.read('read-hash', [key], [id], 0, id, options);
    const record = hashReply((reply as unknown[])[1]);
    return Object.keys(record).length === 0 ? undefined : record;
  }

  async getAccount(id: string, options?: ReadOptions): Promise<Account | undefined> {
    const record = await this.readHash(this.keys.account(id), id, options);
    return record && accountView(id, record);
  }

  async getTransfer(id: string, options?: ReadOptions): Promise<Transfer | undefined> {
    const k = this.keys;
    const reply = await this.read('read-transfer',
      [k.transferBucket(id), k.journal(), k.rejections(), k.accountIds()], [id], 0, id, options);
    if (reply[1] === '') return undefined;
    return transferView(id, storedRecord(reply[1], reply[2], reply[3], reply[4]));
  }

  /**
   * Newest first; `startSeq` (a previous page's `nextSeq`) continues a listing. Undefined when
   * the account does not exist; `badCursor` when `startSeq` is not one of its entries. Read in
   * calls of ENTRIES_READ_CHUNK_MAX on one connection: below the newest entry an account's
   * chain never changes, so the calls together are one consistent page.
   */
  async listEntries(
    accountId: string,
    limit: number,
    startSeq?: string,
    options?: ReadOptions,
  ): Promise<EntriesPage | 'badCursor' | undefined> {
    if (!Number.isInteger(limit) || limit < 1 || limit > limits.ENTRIES_PAGE_LIMIT_MAX) {
      throw new Error(`listEntries: limit ${limit} out of range`);
    }
    return this.reads.run(options, async (on) => {
      const entries: Entry[] = [];
      let start = startSeq ?? '';
      let next: string | null = null;
      do {
        const count = Math.min(limit - entries.length, limits.ENTRIES_READ_CHUNK_MAX);
        const part = await this.entriesChunk(accountId, start, count, on ?? this.redis);
        if (part === undefined || part === 'badCursor') return part;
        entries.push(...part.entries);
        next = part.nextSeq;
        if (next !== null) start = next;
      } while (next !== null && entries.length < limit);
      return { entries, nextSeq: next };
    }, this.observer);
  }

  private async entriesChunk(accountId: string, start: string, count: number,
    on: Redis): Promise<EntriesPage | 'badCursor' | undefined> {
    const k = this.keys;
    const reply = await this.run('read-entries',
      [k.account(accountId), k.journal(), k.accountIds()], [accountId, start, String(count)],
      0, accountId, on);
    const [, exists, cursorOk, flat, next, ids] = reply as [string, number, number, unknown,
      unknown, unknown];
    if (exists !== 1) return undefined;
    if (cursorOk !== 1) return 'badCursor';
    if (!Array.isArray(flat) || !Array.isArray(ids) || flat.length !== ids.length * 5
      || typeof next !== 'string') {
      throw new LedgerInvariantError('read-entries: reply of an unexpected shape');
    }
    const entries: Entry[] = [];
    for (let i = 0; i < ids.length; i++) {
      const at = i * 5;
      entries.push({ transferId: String(flat[at + 1]), seq: String(flat[at]),
        amount: String(flat[at + 2]), balanceAfter: String(flat[at + 3]),
        counterparty: String(ids[i]), createdAt: iso(String(flat[at + 4])) });
    }
    return { entries, nextSeq: next === '0' ? null : next };
  }
}

type Record_ = Record<string, string>;

/** `{ status, id, ... }` of a writing script (the id already checked by `run`) → status, rest. */
function replyStatus(reply: unknown[]): [ReturnType<typeof statusName>, ...unknown[]] {
  if (typeof reply[0] !== 'number') {
    // The reply's content stays out of the message: it can hold metadata, which is not logged.
    throw new LedgerInvariantError(
      `script reply is not { status, id, ... } (first: ${typeof reply[0]})`,
    );
  }
  return [statusName(reply[0]), ...reply.slice(2)];
}

function hashReply(value: unknown): Record_ {
  if (!Array.isArray(value) || value.length % 2 !== 0) {
    throw new LedgerInvariantError('script reply: expected a flat field/value list');
  }
  const record: Record_ = {};
  for (let i = 0; i < value.length; i += 2) record[String(value[i])] = String(value[i + 1]);
  return record;
}

/**
 * A stored record (a journal or rejections stream entry, see keys.ts) in the shape the views
 * read: s status, f/t account ids, a amount, c currency as given, k the accounts' currency, m
 * metadata, at createdAt, by createdBy; committed ones add q seq and fb/tb balances after.
 */
function storedRecord(ref: unknown, fields: unknown, fromId: unknown, toId: unknown): Record_ {
  if (typeof ref !== 'string' || ref === '') {
    throw new LedgerInvariantError('script reply: a record without its reference');
  }
  const stored = hashReply(fields);
  if (ref.startsWith('-')) {
    return { s: field(stored, 's'), f: field(stored, 'f'), t: field(stored, 't'),
      a: field(stored, 'a'), c: field(stored, 'c'), k: field(stored, 'k'),
      m: field(stored, 'm'), at: field(stored, 'w'), by: field(stored, 'b') };
  }
  if (typeof fromId !== 'string' || typeof toId !== 'string') {
    throw new LedgerInvariantError(`journal record ${ref} names an account with no id`);
  }
  // A committed transfer's currency is its accounts' (`c` equal to it, or omitted).
  return { s: String(statusCode.OK), f: fromId, t: toId, a: field(stored, 'a'), c: '',
    k: field(stored, 'k'), m: field(stored, 'm'), at: field(stored, 'w'), by: field(stored, 'b'),
    q: ref, fb: field(stored, 'fb'), tb: field(stored, 'tb') };
}

/**
 * The view of a transfer decided by this call, built through the same function as a stored
 * record's so that a replay's body is byte-identical. `rest` is the script's reply after the
 * status and id: accountsCurrency, and for a commit seq and both balances after.
 */
function decidedNow(input: TransferInput, metadata: string, nowMs: string,
  status: ScriptStatus, rest: string[]): Transfer {
  const [accountsCurrency, q, fb, tb] = rest;
  const committed = status === 'OK';
  const record: Record_ = { s: String(statusCode[status]), f: input.from, t: input.to,
    a: input.amount, c: committed ? '' : input.currency ?? '', k: accountsCurrency ?? '',
    m: metadata, at: nowMs, by: input.createdBy };
  if (committed) Object.assign(record, { q, fb, tb });
  return transferView(input.id, record);
}

function field(record: Record_, name: string): string {
  const value = record[name];
  if (value === undefined) throw new LedgerInvariantError(`stored record lacks '${name}'`);
  return value;
}

function parseMetadata(text: string): Metadata {
  if (text === '{}') return {}; // most transfers carry none
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new LedgerInvariantError('stored metadata is not an object');
  }
  return parsed as Metadata;
}

function iso(ms: string): string {
  return new Date(Number(ms)).toISOString();
}

function accountView(id: string, record: Record_): Account {
  const debits = readStoredSigned(field(record, 'dr'), 'debits');
  const credits = readStoredSigned(field(record, 'cr'), 'credits');
  return {
    id,
    currency: field(record, 'cur'),
    balance: (credits - debits).toString(),
    debits: debits.toString(),
    credits: credits.toString(),
    overdraftLimit: field(record, 'od'),
    metadata: parseMetadata(field(record, 'm')),
    createdAt: iso(field(record, 'at')),
    ...(record.by === undefined ? {} : { createdBy: record.by }),
  };
}

function transferView(id: string, record: Record_): Transfer {
  const status = statusName(Number(field(record, 's')));
  // One object of a fixed shape, its optional fields set after: on the hot path, spreads of
  // conditional objects cost more than the rest of the view (bench/ profile). An unknown
  // currency stays an undefined property, which JSON and the serializer leave out.
  const view: Transfer = { id, from: field(record, 'f'), to: field(record, 't'),
    amount: field(record, 'a'), currency: record.c || record.k || undefined,
    status: 'committed', metadata: parseMetadata(field(record, 'm')),
    createdAt: iso(field(record, 'at')) };
  if (record.by !== undefined) view.createdBy = record.by;
  if (status === 'OK') {
    view.seq = field(record, 'q');
    view.fromBalanceAfter = field(record, 'fb');
    view.toBalanceAfter = field(record, 'tb');
    return view;
  }
  if (!isRejection(status)) throw new LedgerInvariantError(`stored transfer status ${status}`);
  view.status = 'rejected';
  view.reason = status;
  return view;
}

/**
 * Splits a non-atomic batch into [start, end) chunks of at most BATCH_CHUNK_TRANSFERS_MAX
 * transfers and BATCH_CHUNK_BYTES_MAX of their fields (a script's time grows with both); a
 * transfer alone is always below the bytes bound.
 */
function chunks(transfers: TransferInput[], metadata: string[]): Array<[number, number]> {
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

/** One item of a batch reply: `{ status, ... }` as documented in transfer-batch-4.lua. */
function batchItem(input: TransferInput, metadata: string, nowMs: string,
  result: unknown): TransferOutcome {
  if (!Array.isArray(result) || typeof result[0] !== 'number') {
    throw new LedgerInvariantError('transfer-batch: a result is not { status, ... }');
  }
  const status = statusName(result[0]);
  const rest = result.slice(1);
  if (status === 'EXISTS') {
    return compareWithRecord(input, metadata, storedRecord(rest[0], rest[1], rest[2], rest[3]));
  }
  if (status !== 'OK' && !isRejection(status)) {
    throw new LedgerInvariantError(`transfer-batch returned ${status} for an item`);
  }
  return { kind: 'decided', replayed: false,
    transfer: decidedNow(input, metadata, nowMs, status, rest.map(String)) };
}

/** An atomic batch that wrote nothing: `{ status, index (1-based), ... }` after the tag. */
function atomicFailure(transfers: TransferInput[], metadata: string[], status: ScriptStatus,
  rest: unknown[]): BatchOutcome {
  const index = Number(rest[0]) - 1;
  const input = transfers[index];
  if (!Number.isInteger(index) || input === undefined) {
    throw new LedgerInvariantError(`transfer-batch: ${status} for no item (${String(rest[0])})`);
  }
  if (isRejection(status)) return { kind: 'atomicRejected', index, reason: status };
  if (status !== 'EXISTS') throw new LedgerInvariantError(`transfer-batch returned ${status}`);
  const outcome = compareWithRecord(input, metadata[index] as string,
    storedRecord(rest[1], rest[2], rest[3], rest[4]));
  return { kind: 'atomicExists', index, fields: outcome.kind === 'conflict' ? outcome.fields : [] };
}

/**
 * A decided id is final: the same fields replay the original outcome, any other field is a
 * conflict naming the fields. An omitted currency means the accounts' currency (`k`).
 */
function compareWithRecord(
  input: TransferInput,
  metadata: string,
  record: Record_,
): TransferOutcome {
  const fields: string[] = [];
  if (field(record, 'f') !== input.from) fields.push('from');
  if (field(record, 't') !== input.to) fields.push('to');
  if (field(record, 'a') !== input.amount) fields.push('amount');
  const accountsCurrency = record.k ?? '';
  const original = record.c || accountsCurrency;
  if ((input.currency ?? accountsCurrency) !== original) fields.push('currency');
  if (field(record, 'm') !== metadata) fields.push('metadata');
  if (fields.length > 0) return { kind: 'conflict', fields };
  return { kind: 'decided', transfer: transferView(input.id, record), replayed: true };
}
