/**
 * TypeBox schemas of the HTTP contract (docs/api.md, openapi/), built from the limits module.
 * Bodies are validated without coercion and with unknown fields rejected; see app.ts.
 *
 * Responses are written by the serializer with the schemas below as they always were (flat, in
 * the field order clients have seen); the OpenAPI document states more precisely what each
 * answer holds (`documentedAs`, src/http/document.ts): a committed transfer always has its seq
 * and balances, a rejected one its reason. test/openapi-responses.test.ts checks real answers
 * against the documented schemas.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { AMOUNT_MAX_STRING, limits } from '../config/limits.js';
import { UNSIGNED_PATTERN } from '../ledger/amount.js';
import { RECORD_KINDS } from '../ledger/records.js';
import { REJECTION_REASONS, type RejectionReason } from '../ledger/status.js';
import type { PendingStatus, RecordKind } from '../ledger/types.js';
import { component, documentedAs, namedComponent } from './document.js';

const L = limits;
const RECORD_KIND_NAMES = Object.keys(RECORD_KINDS) as RecordKind[];
/** `.` and `..` are excluded: HTTP clients drop such path segments, so they could not be read. */
export const ID_PATTERN = `^(?!\\.{1,2}$)[A-Za-z0-9_.-]{1,${L.ID_LENGTH_MAX}}$`;
const DIGITS = L.AMOUNT_DIGITS_MAX;
const POSITIVE_PATTERN = `^[1-9][0-9]{0,${DIGITS - 1}}$`;

export const Id = Type.String({
  pattern: ID_PATTERN,
  maxLength: L.ID_LENGTH_MAX,
  description: `1–${L.ID_LENGTH_MAX} characters of A–Z a–z 0–9 _ - . (not \`.\` nor \`..\`)`,
});
export const Currency = Type.String({
  pattern: `^[A-Z0-9_]{1,${L.CURRENCY_LENGTH_MAX}}$`,
  maxLength: L.CURRENCY_LENGTH_MAX,
  description: 'ISO 4217 code or any asset code',
  examples: ['USD'],
});

const SafeInteger = (minimum: number) =>
  Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER,
    description: 'accepted only up to 2^53−1; prefer strings' });

/**
 * A pattern can say 39 digits, not "at most 2^128−1": the exact bound is checked after the
 * schema (input.ts), and a larger 39-digit amount is a 400 VALIDATION_ERROR like any other.
 */
const AMOUNT_RANGE = `1 … 2^128−1 (${AMOUNT_MAX_STRING}) in minor units (cents for USD), as ` +
  'a decimal string; a 39-digit value above 2^128−1 is refused with 400 `VALIDATION_ERROR`';

export const AmountInput = Type.Union([
  Type.String({ pattern: POSITIVE_PATTERN, maxLength: DIGITS, description: AMOUNT_RANGE,
    examples: ['2500'] }),
  SafeInteger(1),
], { description: 'A decimal string (preferred), or a JSON integer up to 2^53−1' });
export const OverdraftInput = Type.Union([
  Type.String({ pattern: `${UNSIGNED_PATTERN}|^unlimited$`, maxLength: DIGITS,
    description: '0 … 2^128−1 as a decimal string, or "unlimited"' }),
  SafeInteger(0),
], { description: 'How far below zero the balance may go, or "unlimited". Default "0".' });

/** Flat string → string; keys that could reach an object prototype are refused. */
export const Metadata = Type.Unsafe<Record<string, string>>({
  type: 'object',
  maxProperties: L.METADATA_KEYS_MAX,
  propertyNames: {
    pattern: `^[A-Za-z0-9_.-]{1,${L.METADATA_KEY_LENGTH_MAX}}$`,
    not: { enum: ['__proto__', 'constructor', 'prototype'] },
  },
  additionalProperties: Type.String({ maxLength: L.METADATA_VALUE_LENGTH_MAX }),
  description: `Up to ${L.METADATA_KEYS_MAX} keys ` +
    `(1–${L.METADATA_KEY_LENGTH_MAX} of A–Z a–z 0–9 _ - .), ` +
    `string values of at most ${L.METADATA_VALUE_LENGTH_MAX} characters, ` +
    `${L.METADATA_JSON_BYTES_MAX} bytes of JSON in all.`,
});

/** Money in answers: never above 2^128−1 in magnitude (the scripts refuse to go past it). */
const Amount = Type.String({ pattern: POSITIVE_PATTERN, maxLength: DIGITS,
  description: '1 … 2^128−1, minor units, decimal string' });
const Total = Type.String({ pattern: `^(0|[1-9][0-9]{0,${DIGITS - 1}})$`, maxLength: DIGITS,
  description: '0 … 2^128−1, minor units, decimal string' });
const Balance = Type.String({ pattern: `^(0|-?[1-9][0-9]{0,${DIGITS - 1}})$`,
  maxLength: DIGITS + 1, description: '−(2^128−1) … 2^128−1, minor units, decimal string' });
const Seq = Type.String({ pattern: '^[1-9][0-9]*$',
  description: 'Position in the ledger journal: increases with each committed transfer' });
const Timestamp = Type.String({ format: 'date-time', description: 'UTC, milliseconds' });
const KeyName = Type.String({ pattern: `^[A-Za-z0-9_.-]{1,${L.KEY_NAME_LENGTH_MAX}}$`,
  description: 'Name of the API key that asked for it (`anonymous` with authentication off)' });

export const CreateAccountBody = namedComponent(Type.Object({
  id: Type.Optional(Type.String({ ...Id, description: `${Id.description}; default: a new ` +
    'UUIDv7. Give one to make the request idempotent' })),
  currency: Currency,
  overdraftLimit: Type.Optional(OverdraftInput),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false }), 'CreateAccountRequest');
export type CreateAccountBody = Static<typeof CreateAccountBody>;

/** An account as the serializer writes it. */
export const AccountJson = Type.Object({
  id: Id,
  currency: Currency,
  balance: Type.String({ ...Balance, description: 'credits − debits' }),
  debits: Total,
  credits: Total,
  debitsPending: Type.String({ ...Total, description: 'Sum of the open holds debiting it' }),
  creditsPending: Type.String({ ...Total, description: 'Sum of the open holds crediting it' }),
  available: Type.String({ ...Balance, description: 'balance − debitsPending: what a new ' +
    'transfer or hold may take before the overdraft limit' }),
  overdraftLimit: Type.String({ pattern: `^(0|[1-9][0-9]{0,${DIGITS - 1}}|unlimited)$`,
    description: 'decimal string, or "unlimited"' }),
  metadata: Metadata,
  createdAt: Timestamp,
  createdBy: Type.Optional(KeyName),
  closedAt: Type.Union([Timestamp, Type.Null()], {
    description: 'When it was closed (it then takes part in no new movement), or null' }),
});
/** Every account has `createdBy` (every data format this release reads stores it). */
export const Account = component('Account', required(AccountJson, ['createdBy']),
  'An account and its balance');

export const TransferBody = namedComponent(Type.Object({
  id: Type.String({ ...Id, description: `${Id.description}: the idempotency key, chosen by ` +
    'the client before the first attempt and sent again on every retry' }),
  from: Type.String({ ...Id, description: 'The account debited' }),
  to: Type.String({ ...Id, description: 'The account credited' }),
  amount: AmountInput,
  currency: Type.Optional(Type.String({ ...Currency,
    description: "Checked against both accounts' currency; default: theirs" })),
  metadata: Type.Optional(Metadata),
  pending: Type.Optional(Type.Boolean({ description: 'true: a hold, which reserves the ' +
    'amount and moves nothing until posted (`POST /transfers/{id}/post`) or voided' })),
  timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1,
    maximum: L.HOLD_TIMEOUT_SECONDS_MAX, description: 'A hold only: it expires this many ' +
      'seconds after `createdAt` (released by the service; no longer postable). Default: never' })),
}, { additionalProperties: false }), 'TransferRequest');
export type TransferBody = Static<typeof TransferBody>;

/** A decided transfer as the serializer writes it, committed or rejected. */
/**
 * A rejected post, void or reversal whose target does not exist (or is no hold, or was
 * rejected) cannot name its accounts, nor with no amount asked its amount: "" then.
 */
const UNKNOWN = ' ("" on a rejected post, void or reversal whose target is unknown)';
export const TransferJson = Type.Object({
  id: Id,
  from: Type.String({ pattern: `^$|${ID_PATTERN}`, description: `The account debited${UNKNOWN}` }),
  to: Type.String({ pattern: `^$|${ID_PATTERN}`, description: `The account credited${UNKNOWN}` }),
  amount: Type.String({ pattern: `^$|${POSITIVE_PATTERN}`, maxLength: DIGITS,
    description: `The amount moved, held, released or asked${UNKNOWN}` }),
  currency: Type.Optional(Currency),
  status: Type.Union([Type.Literal('committed'), Type.Literal('rejected')], {
    description: '`committed`: applied to both balances; `rejected`: recorded under its id, ' +
      'applied to nothing' }),
  reason: Type.Optional(Type.Unsafe<RejectionReason>({ type: 'string', enum: REJECTION_REASONS,
    description: 'Why it was rejected: the `code` of its 422 problem' })),
  seq: Type.Optional(Seq),
  fromBalanceAfter: Type.Optional(Type.String({ ...Balance,
    description: 'Balance of `from` right after this transfer' })),
  toBalanceAfter: Type.Optional(Type.String({ ...Balance,
    description: 'Balance of `to` right after this transfer' })),
  metadata: Metadata,
  createdAt: Timestamp,
  createdBy: Type.Optional(KeyName),
  kind: Type.Unsafe<RecordKind>({ type: 'string', enum: RECORD_KIND_NAMES,
    description: '`transfer`, `hold` (reserves, moves nothing), `post` or `void` (settles a ' +
      'hold), `reversal` (moves a transfer back)' }),
  pendingStatus: Type.Optional(Type.Unsafe<PendingStatus>({ type: 'string',
    enum: ['pending', 'posted', 'voided', 'expired'],
    description: 'A committed hold: `pending` until posted, voided or expired (a replay answers ' +
      'as first decided: `pending`)' })),
  postedAmount: Type.Optional(Type.String({ ...Amount,
    description: 'A posted hold: the amount posted' })),
  expiresAt: Type.Optional(Type.Union([Timestamp, Type.Null()], {
    description: 'A committed hold: when it expires, or null without a timeout' })),
  pendingId: Type.Optional(Type.String({ ...Id,
    description: 'A post or void: the hold it settles' })),
  reverses: Type.Optional(Type.String({ ...Id,
    description: 'A reversal: the transfer or post it moves back' })),
  reversedAmount: Type.Optional(Type.String({ ...Total,
    description: 'A committed transfer or post: the total reversed from it so far' })),
});

/** What each kind of transfer always has, for the document (a client narrows on `status`). */
const COMMITTED_HAS = ['currency', 'seq', 'fromBalanceAfter', 'toBalanceAfter', 'createdBy',
  'kind'];
export const CommittedTransfer = component('CommittedTransfer',
  variant(TransferJson, 'committed', ['reason'], COMMITTED_HAS),
  'A committed transfer: applied to both balances, with its journal position');
export const RejectedTransfer = component('RejectedTransfer',
  variant(TransferJson, 'rejected', ['seq', 'fromBalanceAfter', 'toBalanceAfter',
    'pendingStatus', 'postedAmount', 'expiresAt', 'reversedAmount'], ['reason', 'createdBy',
    'kind']),
  'A rejected transfer: recorded under its id, applied to nothing. `currency` is absent only ' +
  'when neither the request nor an account named one');
export const Transfer = component('Transfer', Type.Unsafe({
  oneOf: [Type.Ref(CommittedTransfer.$id), Type.Ref(RejectedTransfer.$id)],
  discriminator: { propertyName: 'status', mapping: {
    committed: `#/components/schemas/${CommittedTransfer.$id}`,
    rejected: `#/components/schemas/${RejectedTransfer.$id}`,
  } },
}), 'A decided transfer, committed or rejected: `status` tells which');

export const Entry = component('Entry', Type.Object({
  transferId: Id,
  kind: Type.Unsafe<'transfer' | 'post' | 'reversal'>({ type: 'string',
    enum: ['transfer', 'post', 'reversal'],
    description: 'What moved the money (holds and voids move none: they are no entries)' }),
  seq: Seq,
  amount: Type.String({ ...Balance,
    description: 'Positive when credited, negative when debited' }),
  balanceAfter: Type.String({ ...Balance, description: 'The balance right after it' }),
  counterparty: Id,
  createdAt: Timestamp,
}), "One side of a committed transfer, in one account's history");

export const EntriesPage = component('EntriesPage', Type.Object({
  entries: Type.Array(Type.Unsafe<Static<typeof Entry>>(Type.Ref(Entry.$id)),
    { description: 'Newest first; at most `limit` of them' }),
  nextCursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `cursor` for the next (older) page; null on the last page' }),
}), 'A page of entries, newest first');

/** Query strings are text: `limit` is read as digits (no coercion, so "1e3" or " 1" is 400). */
const PAGE_LIMIT = `1 … ${L.ENTRIES_PAGE_LIMIT_MAX}, default ${L.ENTRIES_PAGE_LIMIT_DEFAULT}`;
export const EntriesQuery = Type.Object({
  // Digits only, no coercion; the range is checked in the route. The document says what a
  // client sends: an integer, written in decimal digits, which is exactly what passes here.
  limit: Type.Optional(documentedAs(
    Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: PAGE_LIMIT }),
    Type.Integer({ minimum: 1, maximum: L.ENTRIES_PAGE_LIMIT_MAX,
      default: L.ENTRIES_PAGE_LIMIT_DEFAULT,
      description: `Entries per page, ${PAGE_LIMIT}; written in decimal digits (\`1e3\` or ` +
        '`010` are refused)' }))),
  cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$',
    description: 'The `nextCursor` of the previous page (opaque)' })),
}, { additionalProperties: false });

export const BalanceQuery = Type.Object({
  seq: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,14})$',
    description: 'After the record at this seq (past the newest: the newest)' })),
  at: Type.Optional(Type.String({ format: 'date-time',
    description: 'After the newest record committed at or before this time (RFC 3339)' })),
}, { additionalProperties: false });

export const BalanceAt = component('BalanceAt', Type.Object({
  balance: Type.String({ ...Balance, description: 'credits − debits, then' }),
  debits: Total,
  credits: Total,
  seq: Type.String({ pattern: '^(0|[1-9][0-9]*)$', description: 'The record the totals ' +
    'stand after: the seq asked for, or the newest committed at or before the time asked ' +
    "for ('0': before the first)" }),
}), "An account's posted totals as they stood after a record of the ledger");

/** What GET /journal sends: each record serialized as a transfer is everywhere else. */
export const JournalPageJson = Type.Object({
  records: Type.Array(TransferJson),
  next: Type.String(),
});

export const JournalPage = component('JournalPage', Type.Object({
  records: Type.Array(Type.Unsafe<Static<typeof TransferJson>>(Type.Ref(CommittedTransfer.$id)),
    { description: 'Committed records in seq order, each as its POST answered it when it was ' +
      'committed (a hold `pending`); at most `limit`' }),
  next: Type.String({ pattern: '^(0|[1-9][0-9]*)$',
    description: 'Pass as `after` for the next page: the last record\'s seq, or `after` ' +
      'again when there was none' }),
}), 'A page of the journal, oldest first');

const JOURNAL_LIMIT = `1 … ${L.JOURNAL_PAGE_LIMIT_MAX}, default ${L.JOURNAL_PAGE_LIMIT_DEFAULT}`;
export const JournalQuery = Type.Object({
  after: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,14})$',
    description: 'Records after this seq (a previous page\'s `next`); omitted: from the first' })),
  limit: Type.Optional(documentedAs(
    Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: JOURNAL_LIMIT }),
    Type.Integer({ minimum: 1, maximum: L.JOURNAL_PAGE_LIMIT_MAX,
      default: L.JOURNAL_PAGE_LIMIT_DEFAULT,
      description: `Records per page, ${JOURNAL_LIMIT}; written in decimal digits` }))),
  wait: Type.Optional(documentedAs(
    Type.String({ pattern: '^(0|[1-9][0-9]{0,4})$',
      description: `0 … ${L.JOURNAL_WAIT_MS_MAX} ms` }),
    Type.Integer({ minimum: 0, maximum: L.JOURNAL_WAIT_MS_MAX, default: 0,
      description: `Long poll: with no record after \`after\`, wait up to this many ms ` +
        `(0 … ${L.JOURNAL_WAIT_MS_MAX}) for one before answering` }))),
}, { additionalProperties: false });

export const TransferBatchBody = namedComponent(Type.Object({
  transfers: Type.Array(TransferBody, { minItems: 1, maxItems: L.BATCH_TRANSFERS_MAX,
    description: `1 … ${L.BATCH_TRANSFERS_MAX} transfers (${L.BATCH_ATOMIC_TRANSFERS_MAX} when ` +
      'atomic), each with its own id; ids distinct' }),
  atomic: Type.Boolean({ description: 'true: all or nothing, one Redis script; false: each ' +
    `transfer decided on its own, in chunks of ${L.BATCH_CHUNK_TRANSFERS_MAX}` }),
}, {
  additionalProperties: false,
  // An atomic batch is one script, which must fit the script budget at its worst.
  if: { properties: { atomic: { const: true } }, required: ['atomic'] },
  // `atomic` named in `then` too: example checkers that treat each subschema as closed
  // (Redocly) would otherwise take it for an unknown field.
  then: { properties: { atomic: { const: true },
    transfers: { maxItems: L.BATCH_ATOMIC_TRANSFERS_MAX } } },
}), 'TransferBatchRequest');
export type TransferBatchBody = Static<typeof TransferBatchBody>;

export const ProblemJson = Type.Object({
  type: Type.String({ description: 'URI naming the problem: ' +
    '`urn:atomic-ledger:problem:` and the code in lower case, `-` for `_`' }),
  title: Type.String({ description: 'The same for every problem of this code' }),
  status: Type.Integer({ minimum: 400, maximum: 599, description: 'The HTTP status' }),
  code: Type.String({ pattern: '^[A-Z][A-Z_]*$',
    description: 'Stable machine code; each response lists the codes it can carry' }),
  detail: Type.String({ description: 'What happened to this request, for a person' }),
});

/** What `POST /transfers` would have answered for this transfer: status, and body or problem. */
export const BatchResultJson = Type.Object({
  id: Id,
  // An enum, not a union of literals: the serializer then needs no anyOf.
  status: Type.Unsafe<201 | 409 | 422>({ type: 'integer', enum: [201, 409, 422] }),
  replayed: Type.Boolean({ description: 'decided by an earlier request (Idempotent-Replayed)' }),
  transfer: Type.Optional(Type.Object(TransferJson.properties, { description: 'on 201' })),
  problem: Type.Optional(Type.Object(ProblemJson.properties, { description: 'on 409 or 422' })),
});

export const TransferBatchResultsJson = Type.Object({ results: Type.Array(BatchResultJson) });

/** An atomic batch refused as a whole: which transfer spoiled it, and why. Nothing applied. */
export const BatchProblemJson = Type.Object({
  ...ProblemJson.properties,
  index: Type.Integer({ minimum: 0,
    description: 'position of the transfer in `transfers`, from 0' }),
  transferId: Id,
});

export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });

/** GETs that take no query parameters refuse unknown ones, as bodies do. */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const Health = component('Health',
  Type.Object({ status: Type.Literal('ok', { description: 'Always `ok`' }) }),
  'The process runs');
export const Readiness = component('Readiness', Type.Object({
  status: Type.Literal('ready', { description: 'Always `ready` (else 503 `NOT_READY`)' }),
  checks: Type.Record(Type.String(), Type.String(),
    { description: 'Each check and "ok" (a failing one answers 503 `NOT_READY`)' }),
  /** Reported, never failing readiness: busy-reply-threshold, read replicas' health. */
  advisory: Type.Record(Type.String(), Type.String(),
    { description: 'Reported, never failing readiness: "ok" or advice for the operator' }),
}), 'Every readiness check passes');

/** `schema` with `keys` required too; for the document only, so its static type is moot. */
function required(schema: object, keys: readonly string[]): TSchema {
  const had = (schema as { required?: string[] }).required ?? [];
  const all = [...new Set([...had, ...keys])];
  return Type.Unsafe({ ...schema, required: all });
}

/**
 * One kind of transfer for the document: `status` fixed, `omit` left out, `must` required.
 * Property order is the serializer's, so examples read like real answers.
 */
function variant(schema: TSchema, status: string, omit: readonly string[],
  must: readonly string[]): TSchema {
  const properties: Record<string, TSchema> = {};
  for (const [name, sub] of Object.entries(schema.properties as Record<string, TSchema>)) {
    if (omit.includes(name)) continue;
    properties[name] = name === 'status' ? Type.Literal(status, { description: sub.description })
      : sub;
  }
  return required({ type: 'object', properties, required: (schema.required as string[])
    .filter((name) => !omit.includes(name)) }, must);
}

/** A post of a hold: `amount` defaults to all of it; the rest is released. */
export const PostBody = namedComponent(Type.Object({
  id: Type.String({ ...Id, description: `${Id.description}: this post's idempotency key` }),
  amount: Type.Optional(AmountInput),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false }), 'PostRequest');
export type PostBody = Static<typeof PostBody>;

export const VoidBody = namedComponent(Type.Object({
  id: Type.String({ ...Id, description: `${Id.description}: this void's idempotency key` }),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false }), 'VoidRequest');
export type VoidBody = Static<typeof VoidBody>;

/** A reversal: `amount` defaults to all that is still reversible. */
export const ReversalBody = namedComponent(Type.Object({
  id: Type.String({ ...Id, description: `${Id.description}: this reversal's idempotency key` }),
  amount: Type.Optional(AmountInput),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false }), 'ReversalRequest');
export type ReversalBody = Static<typeof ReversalBody>;

/** Closing takes nothing but the account's id (in the path). */
export const CloseBody = namedComponent(Type.Object({}, { additionalProperties: false }),
  'CloseAccountRequest');

/** A ledger's name: in `POST /ledgers` and in the `/ledgers/{ledger}` prefix. */
export const LedgerName = Type.String({ pattern: `^[a-z0-9_-]{1,${L.LEDGER_NAME_LENGTH_MAX}}$`,
  description: `1–${L.LEDGER_NAME_LENGTH_MAX} of a–z 0–9 _ -; also the hash tag of the ` +
    "ledger's Redis keys (its Redis Cluster slot)" });

/** The ledger's name in a path (`/ledgers/{ledger}`): any other name is 404, never 400. */
export const LedgerParam = Type.String({ maxLength: L.ID_LENGTH_MAX,
  description: 'The ledger (`GET /ledgers`); an unknown one, or one the API key does not ' +
    'reach, is 404 `LEDGER_NOT_FOUND`' });
export const LedgerParams = Type.Object({ ledger: LedgerParam }, { additionalProperties: false });

export const CreateLedgerBody = namedComponent(Type.Object({
  name: LedgerName,
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false }), 'CreateLedgerRequest');

export const LedgerJson = Type.Object({
  name: Type.String({ description: 'The ledger\'s name' }),
  metadata: Metadata,
  createdAt: Timestamp,
});
export const LedgerRecord = component('Ledger', LedgerJson,
  'A ledger: a namespace of accounts and transfers (its own Redis hash tag)');

const LEDGERS_LIMIT = `1 … ${L.LEDGERS_PAGE_LIMIT_MAX}, default ${L.LEDGERS_PAGE_LIMIT_DEFAULT}`;
export const LedgersQuery = Type.Object({
  limit: Type.Optional(documentedAs(
    Type.String({ pattern: '^[1-9][0-9]{0,3}$', description: LEDGERS_LIMIT }),
    Type.Integer({ minimum: 1, maximum: L.LEDGERS_PAGE_LIMIT_MAX,
      default: L.LEDGERS_PAGE_LIMIT_DEFAULT,
      description: `Ledgers per page, ${LEDGERS_LIMIT}; in decimal digits` }))),
  after: Type.Optional(Type.String({ maxLength: L.ID_LENGTH_MAX,
    description: 'The `next` of the previous page: list the names after it' })),
}, { additionalProperties: false });

export const LedgersPageJson = Type.Object({
  ledgers: Type.Array(LedgerJson),
  next: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `after` for the next page; null on the last page' }),
});
export const LedgersPage = component('LedgersPage', LedgersPageJson,
  'Ledgers in name order (a key restricted to some ledgers sees only those)');
