/**
 * The stored records' layout, and the one decoder of them. Lua writes and reads them through
 * lua/includes/journal.lua and lua/includes/account.lua; the loader substitutes the positions
 * below into the scripts (`{{J_AMOUNT}}`, `{{A_LAST_SEQ}}`…), so Lua never reads a record by a
 * bare number and the two languages share one layout.
 *
 * The field order is part of the data format (DATA_FORMAT_VERSION): a new field is appended at
 * the end of a record (a compatible change; README "Changing the scripts"), never inserted.
 */
import { readStoredSigned } from './amount.js';
import { LedgerInvariantError } from './errors.js';
import { isRejection, type ScriptStatus, statusName } from './status.js';
import type {
  Account, Entry, Metadata, Transfer, TransferInput, TransferOutcome,
} from './types.js';

/** A committed transfer: one journal stream entry, stream id `0-<seq>`, fields in this order. */
export const JOURNAL_FIELDS = {
  ID: 'i',
  /** Accounts by number (shorter than an id); the account-number hash names them. */
  FROM: 'f',
  TO: 't',
  AMOUNT: 'a',
  /** The accounts' currency (a committed transfer's currency is always theirs). */
  CURRENCY: 'k',
  METADATA: 'm',
  CREATED_AT: 'w',
  CREATED_BY: 'b',
  FROM_BALANCE_AFTER: 'fb',
  TO_BALANCE_AFTER: 'tb',
  /** The previous seq of each account's entries chain ('0': none): entries walk it. */
  FROM_PREVIOUS: 'pf',
  TO_PREVIOUS: 'pt',
} as const;

/** A rejected transfer: one rejections stream entry, stream id `0-<n>`, fields in this order. */
export const REJECTION_FIELDS = {
  ID: 'i',
  STATUS: 's',
  /** Accounts by id (a rejected transfer may name accounts that do not exist). */
  FROM: 'f',
  TO: 't',
  AMOUNT: 'a',
  /** As the client gave it ('' when omitted). */
  CURRENCY: 'c',
  ACCOUNTS_CURRENCY: 'k',
  METADATA: 'm',
  CREATED_AT: 'w',
  CREATED_BY: 'b',
} as const;

/**
 * An account hash (a_create in account.lua writes every field). The first six are what a
 * transfer reads (`a_read`, in this order); the rest only account reads and creation touch.
 */
export const ACCOUNT_FIELDS = {
  CURRENCY: 'cur',
  DEBITS: 'dr',
  CREDITS: 'cr',
  OVERDRAFT: 'od',
  /** Seq of the account's newest entry ('0' before any): the head of its entries chain. */
  LAST_SEQ: 'lseq',
  /** Its account number, which journal records use instead of the id. */
  NUMBER: 'n',
  METADATA: 'm',
  CREATED_AT: 'at',
  CREATED_BY: 'by',
  /** Pending debits and credits, for two-phase holds ('0' until those exist). */
  DEBITS_PENDING: 'dp',
  CREDITS_PENDING: 'cp',
} as const;

/** How many ACCOUNT_FIELDS `a_read` returns. */
export const ACCOUNT_HOT_FIELDS = 6;

/**
 * The loader's placeholders: `J_<NAME>` and `R_<NAME>` are the positions of a field's value in
 * a journal or rejection record as XRANGE returns it (a flat field, value list, 1-based in Lua);
 * `A_<NAME>` the position of a hot account field in `a_read`'s reply.
 */
export function layoutPlaceholders(): Map<string, string> {
  const map = new Map<string, string>();
  const flat = (prefix: string, fields: Record<string, string>) => {
    Object.keys(fields).forEach((name, i) => map.set(`${prefix}_${name}`, String(2 * i + 2)));
  };
  flat('J', JOURNAL_FIELDS);
  flat('R', REJECTION_FIELDS);
  Object.keys(ACCOUNT_FIELDS).slice(0, ACCOUNT_HOT_FIELDS)
    .forEach((name, i) => map.set(`A_${name}`, String(i + 1)));
  return map;
}

/** A decided transfer as stored, in one vocabulary whichever stream it came from. */
export interface StoredTransfer {
  status: ScriptStatus;
  from: string;
  to: string;
  amount: string;
  /** As the client gave it ('' when omitted; always '' for a committed transfer). */
  currency: string;
  accountsCurrency: string;
  /** Canonical JSON. */
  metadata: string;
  /** Milliseconds since the epoch. */
  createdAt: string;
  createdBy: string;
  seq?: string;
  fromBalanceAfter?: string;
  toBalanceAfter?: string;
}

type Fields = Record<string, string>;

/** A flat `field, value, …` list (HGETALL, a stream entry) as an object. */
export function fieldsOf(value: unknown): Fields {
  if (!Array.isArray(value) || value.length % 2 !== 0) {
    throw new LedgerInvariantError('script reply: expected a flat field/value list');
  }
  const fields: Fields = {};
  for (let i = 0; i < value.length; i += 2) fields[String(value[i])] = String(value[i + 1]);
  return fields;
}

function field(fields: Fields, name: string): string {
  const value = fields[name];
  if (value === undefined) throw new LedgerInvariantError(`stored record lacks '${name}'`);
  return value;
}

/**
 * A decided transfer's stored record from `t_find`'s reply (journal.lua): its reference (a seq,
 * or '-<n>' for a rejection), its fields, and for a committed one its accounts' ids.
 */
export function storedTransfer(ref: unknown, stored: unknown, fromId: unknown,
  toId: unknown): StoredTransfer {
  if (typeof ref !== 'string' || ref === '') {
    throw new LedgerInvariantError('script reply: a record without its reference');
  }
  const f = fieldsOf(stored);
  if (ref.startsWith('-')) {
    const R = REJECTION_FIELDS;
    return { status: statusName(Number(field(f, R.STATUS))), from: field(f, R.FROM),
      to: field(f, R.TO), amount: field(f, R.AMOUNT), currency: field(f, R.CURRENCY),
      accountsCurrency: field(f, R.ACCOUNTS_CURRENCY), metadata: field(f, R.METADATA),
      createdAt: field(f, R.CREATED_AT), createdBy: field(f, R.CREATED_BY) };
  }
  if (typeof fromId !== 'string' || typeof toId !== 'string') {
    throw new LedgerInvariantError(`journal record ${ref} names an account with no id`);
  }
  const J = JOURNAL_FIELDS;
  return { status: 'OK', from: fromId, to: toId, amount: field(f, J.AMOUNT), currency: '',
    accountsCurrency: field(f, J.CURRENCY), metadata: field(f, J.METADATA),
    createdAt: field(f, J.CREATED_AT), createdBy: field(f, J.CREATED_BY), seq: ref,
    fromBalanceAfter: field(f, J.FROM_BALANCE_AFTER),
    toBalanceAfter: field(f, J.TO_BALANCE_AFTER) };
}

/**
 * The record of a transfer decided by this call, as it was stored, so that its view goes through
 * the same function as a stored record's and a replay's body is byte-identical. `rest`: the
 * script's reply after the status, accountsCurrency, and for a commit seq and both balances.
 */
export function decidedNow(input: TransferInput, metadata: string, nowMs: string,
  status: ScriptStatus, rest: readonly string[]): StoredTransfer {
  const [accountsCurrency = '', seq, fromBalanceAfter, toBalanceAfter] = rest;
  const record: StoredTransfer = { status, from: input.from, to: input.to, amount: input.amount,
    currency: input.currency ?? '', accountsCurrency, metadata, createdAt: nowMs,
    createdBy: input.createdBy };
  if (status === 'OK') {
    record.currency = '';
    record.seq = seq;
    record.fromBalanceAfter = fromBalanceAfter;
    record.toBalanceAfter = toBalanceAfter;
  }
  return record;
}

/** Canonical JSON of metadata: sorted keys, so equal metadata compares equal as a string. */
export function canonicalMetadata(metadata: Metadata): string {
  const sorted: Metadata = {};
  for (const key of Object.keys(metadata).sort()) sorted[key] = metadata[key] as string;
  return JSON.stringify(sorted);
}

function parseMetadata(text: string): Metadata {
  if (text === '{}') return {}; // most transfers carry none
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new LedgerInvariantError('stored metadata is not an object');
  }
  return parsed as Metadata;
}

export function iso(ms: string): string {
  return new Date(Number(ms)).toISOString();
}

export function accountView(id: string, f: Fields): Account {
  const A = ACCOUNT_FIELDS;
  const debits = readStoredSigned(field(f, A.DEBITS), 'debits');
  const credits = readStoredSigned(field(f, A.CREDITS), 'credits');
  return {
    id,
    currency: field(f, A.CURRENCY),
    balance: (credits - debits).toString(),
    debits: debits.toString(),
    credits: credits.toString(),
    overdraftLimit: field(f, A.OVERDRAFT),
    metadata: parseMetadata(field(f, A.METADATA)),
    createdAt: iso(field(f, A.CREATED_AT)),
    ...(f[A.CREATED_BY] === undefined ? {} : { createdBy: f[A.CREATED_BY] }),
  };
}

/** The stored fields of an account this call created (create-account writes exactly these). */
export function newAccountFields(currency: string, overdraftLimit: string, metadata: string,
  nowMs: string, createdBy: string): Fields {
  const A = ACCOUNT_FIELDS;
  return { [A.CURRENCY]: currency, [A.DEBITS]: '0', [A.CREDITS]: '0',
    [A.OVERDRAFT]: overdraftLimit, [A.METADATA]: metadata, [A.CREATED_AT]: nowMs,
    [A.CREATED_BY]: createdBy };
}

/**
 * An entries chunk from read-entries-3.lua: 5 values per entry (seq, transferId, amount,
 * balanceAfter, createdAt in ms) and one counterparty id per entry.
 */
export function entriesOf(flat: unknown, ids: unknown): Entry[] {
  if (!Array.isArray(flat) || !Array.isArray(ids) || flat.length !== ids.length * 5) {
    throw new LedgerInvariantError('read-entries: reply of an unexpected shape');
  }
  const entries: Entry[] = [];
  for (let i = 0; i < ids.length; i++) {
    const at = i * 5;
    entries.push({ transferId: String(flat[at + 1]), seq: String(flat[at]),
      amount: String(flat[at + 2]), balanceAfter: String(flat[at + 3]),
      counterparty: String(ids[i]), createdAt: iso(String(flat[at + 4])) });
  }
  return entries;
}

export function transferView(id: string, r: StoredTransfer): Transfer {
  // One object of a fixed shape, its optional fields set after: on the hot path, spreads of
  // conditional objects cost more than the rest of the view (bench/ profile). An unknown
  // currency stays an undefined property, which JSON and the serializer leave out.
  const view: Transfer = { id, from: r.from, to: r.to, amount: r.amount,
    currency: r.currency || r.accountsCurrency || undefined, status: 'committed',
    metadata: parseMetadata(r.metadata), createdAt: iso(r.createdAt) };
  view.createdBy = r.createdBy;
  if (r.status === 'OK') {
    view.seq = r.seq;
    view.fromBalanceAfter = r.fromBalanceAfter;
    view.toBalanceAfter = r.toBalanceAfter;
    return view;
  }
  if (!isRejection(r.status)) throw new LedgerInvariantError(`stored status ${r.status}`);
  view.status = 'rejected';
  view.reason = r.status;
  return view;
}

/**
 * A decided id is final: the same fields replay the original outcome, any other field is a
 * conflict naming the fields. An omitted currency means the accounts' currency.
 */
export function compareWithRecord(input: TransferInput, metadata: string,
  r: StoredTransfer): TransferOutcome {
  const fields: string[] = [];
  if (r.from !== input.from) fields.push('from');
  if (r.to !== input.to) fields.push('to');
  if (r.amount !== input.amount) fields.push('amount');
  const original = r.currency || r.accountsCurrency;
  if ((input.currency ?? r.accountsCurrency) !== original) fields.push('currency');
  if (r.metadata !== metadata) fields.push('metadata');
  if (fields.length > 0) return { kind: 'conflict', fields };
  return { kind: 'decided', transfer: transferView(input.id, r), replayed: true };
}
