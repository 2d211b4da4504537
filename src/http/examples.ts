/**
 * Examples for the OpenAPI document: one small, consistent story (alice pays a shop for order
 * 1042, then tries to pay more than she has), with amounts in cents. Problems are built by the
 * functions that build real ones, so an example's type, title and detail read as a real answer.
 */
import { limits } from '../config/limits.js';
import { REJECTION_REASONS, type RejectionReason } from '../ledger/status.js';
import type { TransferInput } from '../ledger/types.js';
import { type Outcome, OUTCOMES } from './outcomes.js';
import { type Problem, problem } from './problem.js';
import { atomicProblem, conflictProblem, rejectionProblem } from './transfer-answers.js';

/** An OpenAPI Example Object. */
export interface Example { summary: string; value: unknown }
export type Examples = Record<string, Example>;

const at = (ms: number) => new Date(Date.UTC(2026, 11, 6, 10, 15, 30) + ms).toISOString();
const KEY = 'checkout';

export const ACCOUNT_REQUESTS: Examples = {
  customer: { summary: 'A customer account that may not go below zero',
    value: { id: 'alice', currency: 'USD', metadata: { customer: 'C-3071' } } },
  system: { summary: 'A funding account that may go negative without bound',
    value: { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' } },
};

/** Field order as the serializer writes an account (required fields first). */
export const ACCOUNT = {
  id: 'alice', currency: 'USD', balance: '7500', debits: '2500', credits: '10000',
  debitsPending: '0', creditsPending: '0', available: '7500', overdraftLimit: '0',
  metadata: { customer: 'C-3071' }, createdAt: at(0), closedAt: null,
  createdBy: KEY,
};
const NEW_ACCOUNT = { ...ACCOUNT, balance: '0', debits: '0', credits: '0', available: '0' };

export const ACCOUNT_CREATED: Examples = {
  created: { summary: 'Created now', value: NEW_ACCOUNT },
};
export const ACCOUNT_REPLAYED: Examples = {
  replayed: { summary: 'The same request again: the account as it is now', value: ACCOUNT },
};
export const ACCOUNT_READ: Examples = {
  account: { summary: 'An account', value: ACCOUNT },
  holding: { summary: 'An account with 1500 on hold: available is what it may still spend',
    value: { ...ACCOUNT, debitsPending: '1500', available: '6000' } },
};
export const BALANCE_AT: Examples = {
  at: { summary: 'As it stood after seq 20 (a time resolves to the newest record at or before it)',
    value: { balance: '6000', debits: '4000', credits: '10000', seq: '20' } },
};
export const ACCOUNT_CLOSED: Examples = {
  closed: { summary: 'Closed (the same answer when it already was)',
    value: { ...ACCOUNT, closedAt: at(86_400_000) } },
};
export const CLOSE_REQUESTS: Examples = { close: { summary: 'Nothing but the path', value: {} } };

export const LEDGER_REQUESTS: Examples = {
  named: { summary: 'A ledger for one region\'s payments', value: { name: 'eu-payments',
    metadata: { region: 'eu' } } },
  bare: { summary: 'A name is enough', value: { name: 'loyalty' } },
};
const LEDGER = { name: 'eu-payments', metadata: { region: 'eu' }, createdAt: at(-86_400_000) };
export const LEDGER_CREATED: Examples = { created: { summary: 'Created now', value: LEDGER } };
export const LEDGER_READ: Examples = { ledger: { summary: 'A ledger', value: LEDGER } };
export const LEDGER_REPLAYED: Examples = {
  replayed: { summary: 'The same request again: the ledger as created', value: LEDGER },
};
export const LEDGERS_PAGE: Examples = {
  all: { summary: 'Every ledger, in name order', value: { ledgers: [LEDGER,
    { name: 'main', metadata: {}, createdAt: at(-172_800_000) }], next: null } },
  restricted: { summary: 'What a key restricted to `eu-payments` sees',
    value: { ledgers: [LEDGER], next: null } },
};

const PAYMENT: TransferInput = { id: 'order-1042-payment', from: 'alice', to: 'shop',
  amount: '2500', currency: 'USD', metadata: { order: '1042' }, createdBy: KEY };
const TOO_MUCH: TransferInput = { ...PAYMENT, id: 'order-1043-payment', amount: '900000',
  metadata: { order: '1043' } };

const body = (t: TransferInput) => ({ id: t.id, from: t.from, to: t.to, amount: t.amount,
  currency: t.currency, metadata: t.metadata });

export const TRANSFER_REQUESTS: Examples = {
  payment: { summary: 'Pay 25.00 USD from alice to the shop', value: body(PAYMENT) },
  minimal: { summary: 'Only what is required (the accounts\' currency applies)',
    value: { id: 'refill-7', from: 'cash', to: 'alice', amount: '10000' } },
};

/**
 * Field order as the serializer writes a transfer: the fields every record has (`kind` the
 * last of them), then the others in the schema's order (src/http/schemas.ts, TransferJson).
 */
export const COMMITTED = {
  id: PAYMENT.id, from: PAYMENT.from, to: PAYMENT.to, amount: PAYMENT.amount, status: 'committed',
  metadata: PAYMENT.metadata, createdAt: at(5120), kind: 'transfer', currency: 'USD', seq: '17',
  fromBalanceAfter: '7500', toBalanceAfter: '2500', createdBy: KEY, reversedAmount: '0',
};
const REJECTED = {
  id: TOO_MUCH.id, from: TOO_MUCH.from, to: TOO_MUCH.to, amount: TOO_MUCH.amount,
  status: 'rejected', metadata: TOO_MUCH.metadata, createdAt: at(9040), kind: 'transfer',
  currency: 'USD', reason: 'INSUFFICIENT_FUNDS', createdBy: KEY,
};

// A card payment: authorize 30.00 (a hold), capture 25.00 of it, later refund 10.00.
const HOLD = { id: 'order-1045-auth', from: 'alice', to: 'shop', amount: '3000',
  status: 'committed', metadata: { order: '1045' }, createdAt: at(20_000), kind: 'hold',
  currency: 'USD', seq: '21', fromBalanceAfter: '7500', toBalanceAfter: '2500', createdBy: KEY,
  pendingStatus: 'pending', expiresAt: at(20_000 + 600_000) };
const POSTED = { id: 'order-1045-capture', from: 'alice', to: 'shop', amount: '2500',
  status: 'committed', metadata: {}, createdAt: at(80_000), kind: 'post', currency: 'USD',
  seq: '22', fromBalanceAfter: '5000', toBalanceAfter: '5000', createdBy: KEY,
  pendingId: HOLD.id, reversedAmount: '0' };
const VOIDED = { id: 'order-1045-cancel', from: 'alice', to: 'shop', amount: '3000',
  status: 'committed', metadata: {}, createdAt: at(80_000), kind: 'void', currency: 'USD',
  seq: '22', fromBalanceAfter: '7500', toBalanceAfter: '2500', createdBy: KEY,
  pendingId: HOLD.id };
// A reversal has no reversedAmount: it cannot be reversed itself.
const REVERSED = { id: 'order-1045-refund', from: 'shop', to: 'alice', amount: '1000',
  status: 'committed', metadata: { reason: 'returned item' }, createdAt: at(900_000),
  kind: 'reversal', currency: 'USD', seq: '30', fromBalanceAfter: '4000',
  toBalanceAfter: '6000', createdBy: KEY, reverses: POSTED.id };

export const HOLD_REQUESTS: Examples = {
  hold: { summary: 'Reserve 30.00 USD of alice\'s money for the shop, for 10 minutes',
    value: { id: HOLD.id, from: 'alice', to: 'shop', amount: '3000', pending: true,
      timeoutSeconds: 600, metadata: HOLD.metadata } },
};
export const HOLD_COMMITTED: Examples = {
  hold: { summary: 'A hold: reserved, no posted balance moved', value: HOLD },
};
export const POST_REQUESTS: Examples = {
  partial: { summary: 'Capture 25.00 of the 30.00 held; 5.00 is released',
    value: { id: POSTED.id, amount: '2500' } },
  all: { summary: 'Capture all of the hold', value: { id: 'order-1046-capture' } },
};
export const POST_COMMITTED: Examples = {
  posted: { summary: 'Posted: money moved, the rest of the hold released', value: POSTED },
};
export const VOID_REQUESTS: Examples = {
  cancel: { summary: 'Release the whole hold', value: { id: VOIDED.id } },
};
export const VOID_COMMITTED: Examples = {
  voided: { summary: 'Voided: the hold released, no posted balance moved', value: VOIDED },
};
export const REVERSAL_REQUESTS: Examples = {
  partial: { summary: 'Refund 10.00 of the 25.00 captured',
    value: { id: REVERSED.id, amount: '1000', metadata: REVERSED.metadata } },
  all: { summary: 'Move back all that is still reversible', value: { id: 'order-1047-refund' } },
};
export const REVERSAL_COMMITTED: Examples = {
  reversed: { summary: 'Reversed: from the original\'s recipient back to its payer',
    value: REVERSED },
};

/** `expiresAt` comes after `postedAmount` in an answer: taken out to be put back after it. */
function withoutExpiry<T extends { expiresAt: unknown }>(t: T): Omit<T, 'expiresAt'> {
  const { expiresAt: _, ...rest } = t;
  return rest;
}

export const TRANSFER_COMMITTED: Examples = {
  committed: { summary: 'Committed: both balances after it, and its place in the journal',
    value: COMMITTED },
};
export const TRANSFER_READ: Examples = {
  ...TRANSFER_COMMITTED,
  hold: { summary: 'A hold, since posted', value: { ...withoutExpiry(HOLD),
    pendingStatus: 'posted', postedAmount: '2500', expiresAt: HOLD.expiresAt } },
  rejected: { summary: 'Rejected: recorded with its reason, applied to nothing',
    value: REJECTED },
};

export const ENTRIES_PAGE: Examples = {
  page: { summary: "alice's two newest entries, and the cursor for older ones", value: {
    entries: [
      { transferId: PAYMENT.id, kind: 'transfer', seq: '17', amount: '-2500',
        balanceAfter: '7500', counterparty: 'shop', createdAt: at(5120) },
      { transferId: 'refill-7', kind: 'transfer', seq: '9', amount: '10000',
        balanceAfter: '10000', counterparty: 'cash', createdAt: at(1210) },
    ],
    nextCursor: 'ZTI6OA',
  } },
  last: { summary: 'The last page', value: { entries: [], nextCursor: null } },
};

const SPLIT = [
  { id: 'order-1044-shop', from: 'alice', to: 'shop', amount: '2000' },
  { id: 'order-1044-tax', from: 'alice', to: 'tax', amount: '300' },
  { id: 'order-1044-fee', from: 'alice', to: 'fees', amount: '50' },
];

export const BATCH_REQUESTS: Examples = {
  split: { summary: 'A payment split three ways, all or nothing',
    value: { atomic: true, transfers: SPLIT } },
  independent: { summary: 'Transfers decided each on its own', value: {
    atomic: false,
    transfers: [body(PAYMENT), body(TOO_MUCH)],
  } },
};

export const BATCH_RESULTS: Examples = {
  independent: { summary: 'Each transfer with what POST /transfers would have answered',
    value: { results: [
      { id: PAYMENT.id, status: 201, replayed: true, transfer: COMMITTED },
      { id: TOO_MUCH.id, status: 422, replayed: false,
        problem: rejectionProblem('INSUFFICIENT_FUNDS', TOO_MUCH) },
    ] } },
};

export const HEALTH: Examples = { alive: { summary: 'Alive', value: { status: 'ok' } } };
export const READINESS: Examples = { ready: { summary: 'Ready', value: {
  status: 'ready',
  checks: { scripts: 'ok', dataFormat: 'ok', aofLastWrite: 'ok', aof: 'ok', appendfsync: 'ok',
    aofLoadTruncated: 'ok', maxmemoryPolicy: 'ok' },
  advisory: { busyReplyThreshold: 'ok' },
} } };

/**
 * The detail of each outcome's example, as the service words it. A rejection's comes from the
 * outcome table; an outcome missing here shows its description.
 */
const DETAILS: Partial<Record<Outcome, string>> = {
  VALIDATION_ERROR: 'body/amount must match pattern "^[1-9][0-9]{0,38}$"',
  SAME_ACCOUNT: 'from and to are both "alice"',
  UNAUTHORIZED: 'send Authorization: Bearer <API key>',
  FORBIDDEN: `key "reporting" lacks the "write" scope`,
  NO_SUCH_ACCOUNT: 'no account "nobody"',
  NO_SUCH_TRANSFER: 'no transfer "order-1045-payment"',
  NO_SUCH_LEDGER: 'no ledger "eu-payments"',
  LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: 'ledger "eu-payments" exists with different metadata',
  ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS: 'account "alice" exists with different currency',
  TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS: conflictProblem(PAYMENT.id, ['amount']).detail,
  PAYLOAD_TOO_LARGE: 'Request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'send the body as Content-Type: application/json',
  RATE_LIMITED: `key "${KEY}" is over ${limits.RATE_LIMIT_PER_KEY_PER_SECOND} requests per second`,
  INTERNAL: 'internal error; see the service log',
  UNAVAILABLE: 'Redis did not answer; the write may or may not have happened. Retry with the ' +
    'same id.',
  PERSISTENCE_FAILED: 'Redis cannot persist writes (disk full or AOF write error) and refused ' +
    'this attempt, which changed nothing. Retry later with the same id.',
  NOT_READY: 'redis: unreachable: connect ECONNREFUSED 127.0.0.1:6380',
};

/** A transfer to name in rejections' examples, with the targets a post or reversal names. */
const SUBJECT = { ...TOO_MUCH, pendingId: 'hold-order-1043', reverses: PAYMENT.id };

const isRejection = (outcome: Outcome): outcome is Outcome & RejectionReason =>
  (REJECTION_REASONS as readonly string[]).includes(outcome);

/** The problem an outcome's example shows. */
export function exampleProblem(outcome: Outcome): Problem {
  if (outcome === 'ACCOUNT_NOT_FOUND') {
    return rejectionProblem(outcome, { ...SUBJECT, to: 'nobody', missingAccounts: ['nobody'] });
  }
  if (isRejection(outcome)) return rejectionProblem(outcome, SUBJECT);
  return problem(outcome, DETAILS[outcome] ?? OUTCOMES[outcome].description);
}

/** An atomic batch refused for `outcome`: the third transfer spoiled it. */
export function exampleBatchProblem(outcome: Outcome): Problem {
  const inputs = SPLIT.map((t) => ({ ...t, currency: 'USD', metadata: {}, createdBy: KEY }));
  if (isRejection(outcome)) {
    return atomicProblem(inputs, { kind: 'atomicRejected', index: 2, reason: outcome,
      ...(outcome === 'ACCOUNT_NOT_FOUND' ? { missingAccounts: ['fees'] } : {}) });
  }
  const fields = outcome === 'TRANSFER_EXISTS' ? [] : ['amount'];
  return atomicProblem(inputs, { kind: 'atomicExists', index: 2, fields });
}

export const JOURNAL_PAGE: Examples = {
  page: { summary: 'Records after seq 20: a hold, its capture; `next` goes on from the last',
    value: { records: [HOLD, POSTED], next: POSTED.seq } },
  empty: { summary: 'Nothing after `after` (yet): `next` is `after` again',
    value: { records: [], next: POSTED.seq } },
};
