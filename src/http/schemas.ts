/**
 * TypeBox schemas of the HTTP contract (README, openapi/), built from the limits module.
 * Bodies are validated without coercion and with unknown fields rejected; see app.ts.
 */
import { type Static, Type } from '@sinclair/typebox';
import { AMOUNT_MAX_STRING, limits } from '../config/limits.js';
import { UNSIGNED_PATTERN } from '../ledger/amount.js';
import { REJECTION_REASONS } from '../ledger/status.js';

const L = limits;
/** `.` and `..` are excluded: HTTP clients drop such path segments, so they could not be read. */
export const ID_PATTERN = `^(?!\\.{1,2}$)[A-Za-z0-9_.-]{1,${L.ID_LENGTH_MAX}}$`;
const POSITIVE_PATTERN = `^[1-9][0-9]{0,${L.AMOUNT_DIGITS_MAX - 1}}$`;

export const Id = Type.String({
  pattern: ID_PATTERN,
  description: `1–${L.ID_LENGTH_MAX} characters of A–Z a–z 0–9 _ - .`,
});
export const Currency = Type.String({
  pattern: `^[A-Z0-9_]{1,${L.CURRENCY_LENGTH_MAX}}$`,
  description: 'ISO 4217 code or any asset code',
  examples: ['USD'],
});

const SafeInteger = (minimum: number) =>
  Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER,
    description: 'accepted only up to 2^53−1; prefer strings' });

export const AmountInput = Type.Union([
  Type.String({ pattern: POSITIVE_PATTERN, description: `1 … ${AMOUNT_MAX_STRING}, minor units` }),
  SafeInteger(1),
]);
export const OverdraftInput = Type.Union([
  Type.String({ pattern: `${UNSIGNED_PATTERN}|^unlimited$` }),
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

const Money = Type.String({ pattern: '^(0|[1-9][0-9]*)$', description: 'decimal integer string' });
const SignedMoney = Type.String({
  pattern: '^(0|-?[1-9][0-9]*)$',
  description: 'signed decimal integer string',
});
const Timestamp = Type.String({ format: 'date-time' });

export const CreateAccountBody = Type.Object({
  id: Type.Optional(Id),
  currency: Currency,
  overdraftLimit: Type.Optional(OverdraftInput),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false });
export type CreateAccountBody = Static<typeof CreateAccountBody>;

export const Account = Type.Object({
  id: Id,
  currency: Currency,
  balance: SignedMoney,
  debits: Money,
  credits: Money,
  overdraftLimit: Type.String({ description: 'decimal or "unlimited"' }),
  metadata: Metadata,
  createdAt: Timestamp,
  createdBy: Type.Optional(Type.String({ description: 'name of the API key that created it' })),
}, { $id: 'Account' });

export const TransferBody = Type.Object({
  id: Id,
  from: Id,
  to: Id,
  amount: AmountInput,
  currency: Type.Optional(Currency),
  metadata: Type.Optional(Metadata),
}, { additionalProperties: false });
export type TransferBody = Static<typeof TransferBody>;

export const Transfer = Type.Object({
  id: Id,
  from: Id,
  to: Id,
  amount: Money,
  currency: Type.Optional(Currency),
  status: Type.Union([Type.Literal('committed'), Type.Literal('rejected')]),
  reason: Type.Optional(Type.Union(REJECTION_REASONS.map((r) => Type.Literal(r)))),
  seq: Type.Optional(Type.String({ pattern: '^[1-9][0-9]*$' })),
  fromBalanceAfter: Type.Optional(SignedMoney),
  toBalanceAfter: Type.Optional(SignedMoney),
  metadata: Metadata,
  createdAt: Timestamp,
  createdBy: Type.Optional(Type.String({ description: 'name of the API key that made it' })),
}, { $id: 'Transfer' });

export const Entry = Type.Object({
  transferId: Id,
  seq: Type.String(),
  amount: SignedMoney,
  balanceAfter: SignedMoney,
  counterparty: Id,
  createdAt: Timestamp,
});

export const EntriesPage = Type.Object({
  entries: Type.Array(Entry),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
}, { $id: 'EntriesPage' });

export const EntriesQuery = Type.Object({
  // Digits only, no coercion ("1e3", "0x10", " 1" are errors); the range is checked in the route.
  limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}$',
    description: `1 … ${L.ENTRIES_PAGE_LIMIT_MAX}, default ${L.ENTRIES_PAGE_LIMIT_DEFAULT}` })),
  cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'opaque' })),
}, { additionalProperties: false });

export const TransferBatchBody = Type.Object({
  transfers: Type.Array(TransferBody, { minItems: 1, maxItems: L.BATCH_TRANSFERS_MAX,
    description: `1 … ${L.BATCH_TRANSFERS_MAX} transfers (${L.BATCH_ATOMIC_TRANSFERS_MAX} when ` +
      'atomic), each with its own id; ids distinct' }),
  atomic: Type.Boolean({ description: 'true: all or nothing, one Redis script; false: each ' +
    `transfer decided on its own, in chunks of ${L.BATCH_CHUNK_TRANSFERS_MAX}` }),
}, {
  additionalProperties: false,
  // An atomic batch is one script, which must fit the script budget at its worst.
  if: { properties: { atomic: { const: true } }, required: ['atomic'] },
  then: { properties: { transfers: { maxItems: L.BATCH_ATOMIC_TRANSFERS_MAX } } },
});
export type TransferBatchBody = Static<typeof TransferBatchBody>;

export const Problem = Type.Object({
  type: Type.String(),
  title: Type.String(),
  status: Type.Integer(),
  code: Type.String({ pattern: '^[A-Z][A-Z_]*$' }),
  detail: Type.String(),
}, { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' });

/** What `POST /transfers` would have answered for this transfer: status, and body or problem. */
export const BatchResult = Type.Object({
  id: Id,
  // An enum, not a union of literals: the serializer then needs no anyOf.
  status: Type.Unsafe<201 | 409 | 422>({ type: 'integer', enum: [201, 409, 422] }),
  replayed: Type.Boolean({ description: 'decided by an earlier request (Idempotent-Replayed)' }),
  // Copies without $id: a reference from inside another schema's $id does not resolve here.
  transfer: Type.Optional(Type.Object(Transfer.properties, { description: 'on 201' })),
  problem: Type.Optional(Type.Object(Problem.properties, { description: 'on 409 or 422' })),
}, { $id: 'BatchResult' });

export const TransferBatchResults = Type.Object({
  results: Type.Array(BatchResult),
}, { $id: 'TransferBatchResults' });

/** An atomic batch refused as a whole: which transfer spoiled it, and why. Nothing applied. */
export const BatchProblem = Type.Object({
  ...Problem.properties,
  index: Type.Integer({ description: 'position of the transfer in `transfers`, from 0' }),
  transferId: Id,
}, { $id: 'BatchProblem', description: 'RFC 9457 problem details with the failing transfer' });

export const IdParams = Type.Object({ id: Id }, { additionalProperties: false });

/** GETs that take no query parameters refuse unknown ones, as bodies do. */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const Health = Type.Object({ status: Type.String() }, { $id: 'Health' });
export const Readiness = Type.Object({
  status: Type.String(),
  checks: Type.Record(Type.String(), Type.String()),
  /** Reported, never failing readiness: busy-reply-threshold, read replicas' health. */
  advisory: Type.Record(Type.String(), Type.String()),
}, { $id: 'Readiness' });
