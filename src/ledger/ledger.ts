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
import { isRejection, type RejectionReason, statusCode, statusName } from './status.js';

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

export interface EntriesPage {
  entries: Entry[];
  /** Seq of the last entry returned when older entries exist. */
  nextBeforeSeq: string | null;
}

export interface LedgerOptions {
  redis: Redis;
  keys: LedgerKeys;
  /** Milliseconds since the epoch; injectable so tests control time. */
  now?: () => number;
  /** Told of every script call (metrics); see `setObserver` for one attached later. */
  observer?: LedgerObserver;
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
    this.scripts = loadScripts();
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

  async createAccount(input: AccountInput): Promise<CreateAccountOutcome> {
    const nowMs = this.now();
    const id = input.id ?? uuidv7(nowMs);
    const metadata = canonicalMetadata(input.metadata);
    const reply = await this.run('create-account', [this.keys.meta(), this.keys.account(id)],
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
      [k.meta(), k.transfer(input.id), k.account(input.from), k.account(input.to),
        k.entries(input.from), k.entries(input.to)],
      [input.id, input.from, input.to, input.amount, input.currency ?? '', metadata, nowMs,
        input.createdBy],
      1, input.id);
    const [status, ...rest] = replyStatus(reply);
    if (status === 'EXISTS') return compareWithRecord(input, metadata, hashReply(rest[0]));
    if (status !== 'OK' && !isRejection(status)) {
      throw new LedgerInvariantError(`transfer returned ${status}`);
    }
    // Built through the same view as a stored record, so a replay's body is byte-identical.
    const [accountsCurrency, q, fb, tb] = rest.map(String);
    const record: Record_ = { s: String(statusCode[status]), f: input.from, t: input.to,
      a: input.amount, c: input.currency ?? '', k: accountsCurrency ?? '', m: metadata, at: nowMs,
      by: input.createdBy };
    if (status === 'OK') Object.assign(record, { q, fb, tb });
    return { kind: 'decided', transfer: transferView(input.id, record), replayed: false };
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
    const record = await this.readHash(this.keys.transfer(id), id, options);
    return record && transferView(id, record);
  }

  /** Newest first; `beforeSeq` (exclusive) continues a previous page. */
  async listEntries(
    accountId: string,
    limit: number,
    beforeSeq?: string,
    options?: ReadOptions,
  ): Promise<EntriesPage | undefined> {
    if (!Number.isInteger(limit) || limit < 1 || limit > limits.ENTRIES_PAGE_LIMIT_MAX) {
      throw new Error(`listEntries: limit ${limit} out of range`);
    }
    const end = beforeSeq === undefined ? '+' : `(${beforeSeq}-0`;
    const reply = await this.read('read-entries',
      [this.keys.account(accountId), this.keys.entries(accountId)],
      [accountId, end, String(limit + 1)], 0, accountId, options);
    const [, exists, range] = reply as [string, number, Array<[string, string[]]>];
    if (exists !== 1) return undefined;
    if (!Array.isArray(range)) throw new LedgerInvariantError('read-entries: no range in reply');
    const entries = range.slice(0, limit).map(([streamId, fields]) => entryView(streamId, fields));
    const last = entries[entries.length - 1];
    return { entries, nextBeforeSeq: range.length > limit && last ? last.seq : null };
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

function field(record: Record_, name: string): string {
  const value = record[name];
  if (value === undefined) throw new LedgerInvariantError(`stored record lacks '${name}'`);
  return value;
}

function parseMetadata(text: string): Metadata {
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
  const currency = record.c || record.k || undefined;
  const base = {
    id,
    from: field(record, 'f'),
    to: field(record, 't'),
    amount: field(record, 'a'),
    ...(currency === undefined ? {} : { currency }),
    metadata: parseMetadata(field(record, 'm')),
    createdAt: iso(field(record, 'at')),
    ...(record.by === undefined ? {} : { createdBy: record.by }),
  };
  if (status === 'OK') {
    return { ...base, status: 'committed', seq: field(record, 'q'),
      fromBalanceAfter: field(record, 'fb'), toBalanceAfter: field(record, 'tb') };
  }
  if (!isRejection(status)) throw new LedgerInvariantError(`stored transfer status ${status}`);
  return { ...base, status: 'rejected', reason: status };
}

function entryView(streamId: string, fields: string[]): Entry {
  const record = hashReply(fields);
  return {
    transferId: field(record, 't'),
    seq: streamId.slice(0, streamId.indexOf('-')),
    amount: field(record, 'a'),
    balanceAfter: field(record, 'b'),
    counterparty: field(record, 'c'),
    createdAt: iso(field(record, 'at')),
  };
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
