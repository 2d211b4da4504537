/**
 * The stored records' layout, and the one decoder of them. Lua writes and reads them through
 * lua/includes/journal.lua and lua/includes/account.lua; the loader substitutes the positions
 * below into the scripts (`{{J_AMOUNT}}`, `{{A_LAST_SEQ}}`…), so Lua never reads a record by a
 * bare number and the two languages share one layout.
 *
 * The field order is part of the data format (DATA_FORMAT_VERSION): a new field is appended at
 * the end of a record (a compatible change; docs/scripts-in-production.md), never inserted.
 */
import { readStoredSigned } from './amount.js';
import { LedgerInvariantError } from './errors.js';
import { isRejection, type ScriptStatus, statusName } from './status.js';
import type {
  Account, ArchiveChunk, ArchiveRecord, Entry, Metadata, PendingStatus, RecordKind,
  ReversalInput, SettleInput, Transfer,
  TransferInput, TransferOutcome,
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
  /**
   * The fields below are written by every record that is not a plain transfer, and by none
   * that is (a transfer record stays as short as before holds existed). KIND: RECORD_KINDS.
   */
  KIND: 'x',
  /** The hold a post or void settles, the transfer a reversal reverses; '' for a hold. */
  TARGET: 'o',
  /** A hold's expiry in ms since the epoch, '' without a timeout or for other kinds. */
  EXPIRES_AT: 'e',
  /** The amount a post or reversal asked for ('' = all there was); '' for other kinds. */
  REQUESTED: 'q',
} as const;

/**
 * What a journal record is. A hold or a void changes no posted balance, so it is not on its
 * accounts' entries chains (its FROM_PREVIOUS and TO_PREVIOUS are ''); the others are.
 */
export const RECORD_KINDS = {
  transfer: '',
  hold: 'h',
  post: 'p',
  void: 'v',
  reversal: 'r',
} as const;

const KIND_BY_CODE = new Map<string, RecordKind>(
  Object.entries(RECORD_KINDS).map(([kind, code]) => [code, kind as RecordKind]));

function kindOf(code: string | undefined): RecordKind {
  const kind = KIND_BY_CODE.get(code ?? '');
  if (kind === undefined) throw new LedgerInvariantError(`stored record of kind '${code}'`);
  return kind;
}

/** Where a journal record's KIND field name is, in its field list (it then has its value). */
const KIND_AT = 2 * Object.keys(JOURNAL_FIELDS).indexOf('KIND');

/** A journal record's field list is a hold's (a free pins an open one: lua/archive-7.lua). */
export function isHold(fields: readonly string[]): boolean {
  return fields[KIND_AT] === JOURNAL_FIELDS.KIND && fields[KIND_AT + 1] === RECORD_KINDS.hold;
}

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
  /** As JOURNAL_FIELDS, written only by a record that is not a plain transfer. */
  KIND: 'x',
  TARGET: 'o',
  /** A rejected hold's timeoutSeconds as asked ('' none). */
  TIMEOUT: 'e',
  /** A rejected post's or reversal's amount as asked ('' = all there was). */
  REQUESTED: 'q',
} as const;

/**
 * An account hash (a_create in account.lua writes every field but CLOSED_AT). The first nine
 * are what a transfer reads (`a_read`, in this order); the rest only account reads and creation
 * touch. (Hash fields have no stored order: this order is only a_read's.)
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
  /** Sums of the open holds debiting and crediting it. */
  DEBITS_PENDING: 'dp',
  CREDITS_PENDING: 'cp',
  /** When it was closed (ms); absent while open. */
  CLOSED_AT: 'cl',
  METADATA: 'm',
  CREATED_AT: 'at',
  CREATED_BY: 'by',
} as const;

/** How many ACCOUNT_FIELDS `a_read` returns. */
export const ACCOUNT_HOT_FIELDS = 9;

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
  for (const [name, code] of Object.entries(RECORD_KINDS)) {
    map.set(`K_${name.toUpperCase()}`, `'${code}'`);
  }
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
  kind: RecordKind;
  /** The hold a post or void settles, the record a reversal reverses ('' for none). */
  target: string;
  /** A committed hold's expiry in ms ('' none). */
  expiresAt: string;
  /** A rejected hold's timeout in seconds as asked ('0' none; '' for other kinds). */
  timeout: string;
  /** The amount a post or reversal asked for ('' = all there was). */
  requested: string;
  /**
   * A committed record's state (includes/holds.lua): a hold's 'p<amount>', 'v', 'e' or ''
   * (pending); a transfer's or post's reversed total ('' none). Read only by reads.
   */
  state: string;
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
  toId: unknown, state = ''): StoredTransfer {
  if (typeof ref !== 'string' || ref === '') {
    throw new LedgerInvariantError('script reply: a record without its reference');
  }
  const f = fieldsOf(stored);
  if (ref.startsWith('-')) {
    const R = REJECTION_FIELDS;
    return { status: statusName(Number(field(f, R.STATUS))), from: field(f, R.FROM),
      to: field(f, R.TO), amount: field(f, R.AMOUNT), currency: field(f, R.CURRENCY),
      accountsCurrency: field(f, R.ACCOUNTS_CURRENCY), metadata: field(f, R.METADATA),
      createdAt: field(f, R.CREATED_AT), createdBy: field(f, R.CREATED_BY),
      kind: kindOf(f[R.KIND]), target: f[R.TARGET] ?? '', expiresAt: '',
      timeout: f[R.TIMEOUT] ?? '', requested: f[R.REQUESTED] ?? '', state: '' };
  }
  if (typeof fromId !== 'string' || typeof toId !== 'string') {
    throw new LedgerInvariantError(`journal record ${ref} names an account with no id`);
  }
  const J = JOURNAL_FIELDS;
  return { status: 'OK', from: fromId, to: toId, amount: field(f, J.AMOUNT), currency: '',
    accountsCurrency: field(f, J.CURRENCY), metadata: field(f, J.METADATA),
    createdAt: field(f, J.CREATED_AT), createdBy: field(f, J.CREATED_BY), seq: ref,
    fromBalanceAfter: field(f, J.FROM_BALANCE_AFTER),
    toBalanceAfter: field(f, J.TO_BALANCE_AFTER), kind: kindOf(f[J.KIND]),
    target: f[J.TARGET] ?? '', expiresAt: f[J.EXPIRES_AT] ?? '', timeout: '',
    requested: f[J.REQUESTED] ?? '', state };
}

/**
 * The record of a transfer decided by this call, as it was stored, so that its view goes through
 * the same function as a stored record's and a replay's body is byte-identical. `rest`: the
 * script's reply after the status, accountsCurrency, and for a commit seq and both balances.
 */
export function decidedNow(input: TransferInput, metadata: string, nowMs: string,
  status: ScriptStatus, rest: readonly string[]): StoredTransfer {
  const [accountsCurrency = '', seq, fromBalanceAfter, toBalanceAfter] = rest;
  const hold = input.pending === true;
  const record: StoredTransfer = { status, from: input.from, to: input.to, amount: input.amount,
    currency: input.currency ?? '', accountsCurrency, metadata, createdAt: nowMs,
    createdBy: input.createdBy, kind: hold ? 'hold' : 'transfer', target: '',
    expiresAt: hold ? holdExpiry(nowMs, input.timeoutSeconds) : '',
    timeout: hold ? String(input.timeoutSeconds ?? 0) : '', requested: '', state: '' };
  if (status === 'OK') {
    record.currency = '';
    record.seq = seq;
    record.fromBalanceAfter = fromBalanceAfter;
    record.toBalanceAfter = toBalanceAfter;
  }
  return record;
}

/** A hold's expiry in ms, '' without a timeout: the `expires` argument of transfer-9.lua. */
export function holdExpiry(nowMs: string, timeoutSeconds: number | undefined): string {
  return timeoutSeconds === undefined ? '' : String(Number(nowMs) + timeoutSeconds * 1000);
}

/**
 * A post, void or reversal decided by this call, as stored: `reply` is the script's reply after
 * the status and id: currency, then for a commit seq, both balances and the amount moved; for a
 * rejection the amount recorded. `from`/`to` are the accounts it moved between ('' unknown).
 */
export function settledNow(kind: 'post' | 'void' | 'reversal',
  input: SettleInput | ReversalInput, target: string, from: string, to: string,
  metadata: string, nowMs: string, status: ScriptStatus, reply: readonly string[]): StoredTransfer {
  const [currency = '', a = '', b = '', c = '', moved = ''] = reply;
  const record: StoredTransfer = { status, from, to, amount: status === 'OK' ? moved : a,
    currency: '', accountsCurrency: currency, metadata, createdAt: nowMs,
    createdBy: input.createdBy, kind, target, expiresAt: '', timeout: '',
    requested: input.amount ?? '', state: '' };
  if (status === 'OK') {
    record.seq = a;
    record.fromBalanceAfter = b;
    record.toBalanceAfter = c;
  }
  return record;
}

/** Canonical JSON of metadata: sorted keys, so equal metadata compares equal as a string. */
export function canonicalMetadata(metadata: Metadata): string {
  const sorted: Metadata = {};
  for (const key of Object.keys(metadata).sort()) sorted[key] = metadata[key] as string;
  return JSON.stringify(sorted);
}

/** A ledger's record as the API shows it (`POST /ledgers`, `GET /ledgers/{ledger}`). */
export function ledgerView(record: { name: string; metadata: string; createdAt: string }):
  { name: string; metadata: Metadata; createdAt: string } {
  return { name: record.name, metadata: parseMetadata(record.metadata),
    createdAt: iso(record.createdAt) };
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
  // Accounts created before holds existed may lack the pending sums: none.
  const debitsPending = readStoredSigned(f[A.DEBITS_PENDING] ?? '0', 'debitsPending');
  const creditsPending = readStoredSigned(f[A.CREDITS_PENDING] ?? '0', 'creditsPending');
  const closed = f[A.CLOSED_AT];
  return {
    id,
    currency: field(f, A.CURRENCY),
    balance: (credits - debits).toString(),
    debits: debits.toString(),
    credits: credits.toString(),
    debitsPending: debitsPending.toString(),
    creditsPending: creditsPending.toString(),
    available: (credits - debits - debitsPending).toString(),
    overdraftLimit: field(f, A.OVERDRAFT),
    metadata: parseMetadata(field(f, A.METADATA)),
    createdAt: iso(field(f, A.CREATED_AT)),
    ...(f[A.CREATED_BY] === undefined ? {} : { createdBy: f[A.CREATED_BY] }),
    closedAt: closed === undefined ? null : iso(closed),
  };
}

/** The stored fields of an account this call created (create-account writes exactly these). */
export function newAccountFields(currency: string, overdraftLimit: string, metadata: string,
  nowMs: string, createdBy: string): Fields {
  const A = ACCOUNT_FIELDS;
  return { [A.CURRENCY]: currency, [A.DEBITS]: '0', [A.CREDITS]: '0',
    [A.OVERDRAFT]: overdraftLimit, [A.METADATA]: metadata, [A.CREATED_AT]: nowMs,
    [A.CREATED_BY]: createdBy, [A.DEBITS_PENDING]: '0', [A.CREDITS_PENDING]: '0' };
}

/**
 * An entries chunk from read-entries-4.lua: 6 values per entry (seq, transferId, amount,
 * balanceAfter, createdAt in ms, kind code) and one counterparty id per entry.
 */
export function entriesOf(flat: unknown, ids: unknown): Entry[] {
  if (!Array.isArray(flat) || !Array.isArray(ids) || flat.length !== ids.length * 6) {
    throw new LedgerInvariantError('read-entries: reply of an unexpected shape');
  }
  const entries: Entry[] = [];
  for (let i = 0; i < ids.length; i++) {
    const at = i * 6;
    const kind = kindOf(String(flat[at + 5]));
    if (kind !== 'transfer' && kind !== 'post' && kind !== 'reversal') {
      throw new LedgerInvariantError(`read-entries: a ${kind} on an entries chain`);
    }
    entries.push({ transferId: String(flat[at + 1]), kind, seq: String(flat[at]),
      amount: String(flat[at + 2]), balanceAfter: String(flat[at + 3]),
      counterparty: String(ids[i]), createdAt: iso(String(flat[at + 4])) });
  }
  return entries;
}

/** A committed hold's state at `nowMs` from its stored state (includes/holds.lua). */
function pendingStatusOf(r: StoredTransfer, nowMs: number): PendingStatus {
  if (r.state === 'v') return 'voided';
  if (r.state === 'e') return 'expired';
  if (r.state.startsWith('p')) return 'posted';
  if (r.state !== '') throw new LedgerInvariantError(`hold state '${r.state}'`);
  // Past its expiry, a hold the sweeper has not reached yet can no longer settle: expired.
  return r.expiresAt !== '' && nowMs >= Number(r.expiresAt) ? 'expired' : 'pending';
}

/**
 * A record as the API shows it. `nowMs` decides whether a pending hold has expired; a record
 * decided by this call or replayed shows its state as first decided (`state` '').
 */
export function transferView(id: string, r: StoredTransfer, nowMs = Number(r.createdAt)):
  Transfer {
  // One object of a fixed shape, its optional fields set after: on the hot path, spreads of
  // conditional objects cost more than the rest of the view (bench/ profile). An unknown
  // currency stays an undefined property, which JSON and the serializer leave out.
  const view: Transfer = { id, from: r.from, to: r.to, amount: r.amount,
    currency: r.currency || r.accountsCurrency || undefined, status: 'committed',
    metadata: parseMetadata(r.metadata), createdAt: iso(r.createdAt), kind: r.kind };
  view.createdBy = r.createdBy;
  if (r.kind === 'post' || r.kind === 'void') view.pendingId = r.target;
  else if (r.kind === 'reversal') view.reverses = r.target;
  if (r.status === 'OK') {
    view.seq = r.seq;
    view.fromBalanceAfter = r.fromBalanceAfter;
    view.toBalanceAfter = r.toBalanceAfter;
    if (r.kind === 'transfer' || r.kind === 'post') {
      view.reversedAmount = r.state === '' ? '0' : r.state;
    } else if (r.kind === 'hold') {
      view.pendingStatus = pendingStatusOf(r, nowMs);
      if (view.pendingStatus === 'posted') view.postedAmount = r.state.slice(1);
      view.expiresAt = r.expiresAt === '' ? null : iso(r.expiresAt);
    }
    return view;
  }
  if (!isRejection(r.status)) throw new LedgerInvariantError(`stored status ${r.status}`);
  view.status = 'rejected';
  view.reason = r.status;
  return view;
}

/**
 * Journal records (read-journal-2.lua, follow-5.lua: XRANGE's entries and two account ids per
 * entry) as the API shows them, each with its seq: the record as it was committed, i.e. the
 * body its POST answered (a hold `pending`, a transfer's `reversedAmount` "0"). Later changes
 * of state are records of their own further on (a post, a void, a reversal), so a record read
 * twice, or published twice, is the same bytes.
 */
export function journalRecords(entries: unknown, ids: unknown): Transfer[] {
  if (!Array.isArray(entries) || !Array.isArray(ids) || ids.length !== entries.length * 2) {
    throw new LedgerInvariantError('journal page: reply of an unexpected shape');
  }
  return entries.map((entry: unknown, i) => {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !entry[0].startsWith('0-')) {
      throw new LedgerInvariantError('journal page: an entry of an unexpected shape');
    }
    // The id is a record's first field (JOURNAL_FIELDS): read in place, not decoded twice.
    const flat = entry[1] as unknown[];
    if (flat[0] !== JOURNAL_FIELDS.ID || typeof flat[1] !== 'string') {
      throw new LedgerInvariantError(`journal record ${entry[0]} does not start with its id`);
    }
    const stored = storedTransfer(entry[0].slice(2), flat, ids[2 * i], ids[2 * i + 1]);
    return transferView(flat[1], stored);
  });
}

/** Archived committed records (ArchiveReader.journal) as the journal shows them. */
export function archivedJournalRecords(records: readonly ArchiveRecord[]): Transfer[] {
  return records.map((r) => transferView(r.fields[1] as string,
    storedTransfer(r.seq, r.fields, r.fromId, r.toId)));
}

/**
 * A decided id is final: the same fields replay the original outcome, any other field is a
 * conflict naming the fields. An omitted currency means the accounts' currency.
 */
export function compareWithRecord(input: TransferInput, metadata: string,
  r: StoredTransfer): TransferOutcome {
  const fields: string[] = [];
  const hold = input.pending === true;
  if (r.kind !== (hold ? 'hold' : 'transfer')) {
    fields.push(r.kind === 'hold' || r.kind === 'transfer' ? 'pending' : 'kind');
  } else if (hold && holdTimeout(r) !== String(input.timeoutSeconds ?? 0)) {
    fields.push('timeoutSeconds');
  }
  if (r.from !== input.from) fields.push('from');
  if (r.to !== input.to) fields.push('to');
  if (r.amount !== input.amount) fields.push('amount');
  const original = r.currency || r.accountsCurrency;
  if ((input.currency ?? r.accountsCurrency) !== original) fields.push('currency');
  if (r.metadata !== metadata) fields.push('metadata');
  if (fields.length > 0) return { kind: 'conflict', fields };
  return { kind: 'decided', transfer: transferView(input.id, r), replayed: true };
}

/** A stored hold's timeout in seconds as asked ('0': none). */
function holdTimeout(r: StoredTransfer): string {
  if (r.status !== 'OK') return r.timeout;
  if (r.expiresAt === '') return '0';
  return String((Number(r.expiresAt) - Number(r.createdAt)) / 1000);
}

/**
 * The same rule for a post, void or reversal: the same kind, target, amount as asked and
 * metadata replay the original outcome; anything else is a conflict naming the fields
 * (`targetField`: the path parameter that names the target, `holdId` or `transferId`).
 */
export function compareSettled(kind: 'post' | 'void' | 'reversal', target: string,
  targetField: string, input: SettleInput | ReversalInput, metadata: string,
  r: StoredTransfer): TransferOutcome {
  if (r.kind !== kind) return { kind: 'conflict', fields: ['kind'] };
  const fields: string[] = [];
  if (r.target !== target) fields.push(targetField);
  if (r.requested !== (input.amount ?? '')) fields.push('amount');
  if (r.metadata !== metadata) fields.push('metadata');
  if (fields.length > 0) return { kind: 'conflict', fields };
  return { kind: 'decided', transfer: transferView(input.id, r), replayed: true };
}

/** A flat list of strings (a stored record's fields, XRANGE's way). */
function stringsOf(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new LedgerInvariantError(`${what}: a list of strings expected`);
  }
  return value as string[];
}

/** Stream ids `0-<n>` with their entries (XRANGE's reply) as [n, fields]. */
function streamEntries(value: unknown, what: string): [string, string[]][] {
  if (!Array.isArray(value)) throw new LedgerInvariantError(`${what}: entries expected`);
  return value.map((entry: unknown) => {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !entry[0].startsWith('0-')) {
      throw new LedgerInvariantError(`${what}: an entry of an unexpected shape`);
    }
    return [entry[0].slice(2), stringsOf(entry[1], what)];
  });
}

/** What Ledger.archiveRead reads, as Redis answered it. */
export interface ArchiveReads {
  /** XRANGE of each stream after the archive's positions. */
  journal: unknown;
  rejections: unknown;
  /** XREVRANGE … COUNT 1 of each stream: its newest entry, if any. */
  journalTop: unknown;
  rejectionsTop: unknown;
  /** HMGET of the positions hash: `archive`, `archive:r`. */
  saved: readonly (string | null)[];
}

/**
 * The archiver's chunk (Ledger.archiveRead), the records as stored, for the archive to keep as
 * they are: their shape checked as includes/journal-page.lua checks a page's, and each
 * committed record's account ids looked up by `idsOf` (account number → id).
 */
export async function archiveChunkOf(reads: ArchiveReads,
  idsOf: (numbers: string[]) => Promise<(string | null)[]>): Promise<ArchiveChunk> {
  const journal = streamEntries(reads.journal, 'archive read');
  const rejections = streamEntries(reads.rejections, 'archive read: rejections');
  for (const [seq, f] of journal) {
    if (f[0] !== JOURNAL_FIELDS.ID || f[2] !== JOURNAL_FIELDS.FROM || f[4] !== JOURNAL_FIELDS.TO) {
      throw new LedgerInvariantError(`corrupt ledger: journal record ${seq} out of shape`);
    }
  }
  for (const [n, f] of rejections) {
    if (f[0] !== REJECTION_FIELDS.ID || f[2] !== REJECTION_FIELDS.STATUS) {
      throw new LedgerInvariantError(`corrupt ledger: rejection ${n} out of shape`);
    }
  }
  const head = (top: unknown) => streamEntries(top, 'archive read: head')[0]?.[0] ?? '0';
  const numbers = [...new Set(journal.flatMap(([, f]) => [f[3] as string, f[5] as string]))];
  const ids = numbers.length === 0 ? [] : await idsOf(numbers);
  const idOf = new Map(numbers.map((n, i) => [n, ids[i]]));
  const records = journal.map(([seq, fields]) => {
    const fromId = idOf.get(fields[3] as string);
    const toId = idOf.get(fields[5] as string);
    if (typeof fromId !== 'string' || typeof toId !== 'string') {
      throw new LedgerInvariantError(`journal record ${seq} names an account with no id`);
    }
    return { seq, fields, fromId, toId };
  });
  return { records, head: head(reads.journalTop), rejectionsHead: head(reads.rejectionsTop),
    rejections: rejections.map(([n, fields]) => ({ n, fields })),
    savedSeq: reads.saved[0] ?? '0', savedRejection: reads.saved[1] ?? '0' };
}
