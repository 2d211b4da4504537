/**
 * The one table from outcomes to HTTP: every problem the service answers, with its status, its
 * stable machine code, a title, a description (the OpenAPI document lists them per route), and
 * whether it is recorded under the transfer id (and so replayed).
 *
 * Routes, plugins and the OpenAPI generator read this table; none picks a status number itself.
 * The table is typed so that a business rejection of src/ledger/status.ts that it does not map,
 * with its problem detail, does not compile.
 *
 * An outcome's key is its code, except where one code answers two situations with two statuses:
 * `ACCOUNT_NOT_FOUND` is a recorded 422 rejection of a transfer, and a plain 404 on a read;
 * `TRANSFER_NOT_FOUND` a recorded 422 rejection of a reversal, and a plain 404 on a read.
 */
import type { RejectionReason } from '../ledger/status.js';
import type { TransferFields } from '../ledger/types.js';

export interface OutcomeSpec {
  readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503;
  /** The problem's `code`, when it is not the outcome's key. */
  readonly code?: string;
  readonly title: string;
  /** One sentence for the API description: when it happens and what the client does. */
  readonly description: string;
  /** Decided and recorded under the transfer id: a retry with the same id replays it. */
  readonly recorded: boolean;
}

/** A rejection's problem detail, built from the transfer's record alone (replays match). */
export type RejectionDetail = (t: RejectionSubject) => string;

/** What a rejection's detail may name: the record's movement, and a post's, void's or
 * reversal's target. */
export type RejectionSubject = TransferFields & { pendingId?: string; reverses?: string;
  /** ACCOUNT_NOT_FOUND: the accounts that did not exist (src/ledger/missing-accounts.ts). */
  missingAccounts?: readonly string[] };

/** A rejection: 422, recorded, replayed (TigerBeetle's "a decided id is final"). */
function rejection(title: string, description: string,
  detail: RejectionDetail): OutcomeSpec & { status: 422; detail: RejectionDetail } {
  return { status: 422, title, description, recorded: true, detail };
}

/** The accounts the ledger found missing (src/ledger/missing-accounts.ts), by name. */
function missing(t: RejectionSubject): string {
  const [one, two] = t.missingAccounts ?? [];
  if (one !== undefined && two !== undefined) {
    return `accounts "${one}" and "${two}" do not exist`;
  }
  if (one !== undefined) return `account "${one}" does not exist`;
  // Only when Redis could not be asked which one (the transfer was decided all the same).
  return `account "${t.from}" or "${t.to}" does not exist`;
}

function amountOf(t: TransferFields): string {
  return `${t.amount}${t.currency ? ` ${t.currency}` : ''}`;
}

export const OUTCOMES = {
  VALIDATION_ERROR: { status: 400, title: 'The request is not valid', recorded: false,
    description: 'Malformed request; nothing recorded: fix it and send it again' },
  SAME_ACCOUNT: { status: 400, title: 'A transfer needs two different accounts', recorded: false,
    description: 'from and to name the same account; nothing recorded' },
  UNAUTHORIZED: { status: 401, title: 'A valid API key is required', recorded: false,
    description: 'No valid API key (send `Authorization: Bearer <key>`)' },
  FORBIDDEN: { status: 403, title: 'The API key lacks the scope this needs', recorded: false,
    description: 'The API key lacks the scope' },
  NO_SUCH_ACCOUNT: { status: 404, code: 'ACCOUNT_NOT_FOUND', title: 'Account not found',
    recorded: false, description: 'No account with this id' },
  NO_SUCH_TRANSFER: { status: 404, code: 'TRANSFER_NOT_FOUND', title: 'Transfer not found',
    recorded: false, description: 'No transfer was decided under this id' },
  NO_SUCH_LEDGER: { status: 404, code: 'LEDGER_NOT_FOUND', title: 'Ledger not found',
    recorded: false, description: 'No ledger of this name that this API key reaches' },
  NOT_FOUND: { status: 404, title: 'No such route', recorded: false,
    description: 'No route matches the method and path' },
  ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS: { status: 409, recorded: false,
    title: 'The account id exists with different fields',
    description: 'The account id exists with different fields; the detail names them' },
  LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: { status: 409, recorded: false,
    title: 'The ledger exists with different fields',
    description: 'The ledger exists with different fields; the detail names them' },
  TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS: { status: 409, recorded: false,
    title: 'The transfer id was decided with different fields',
    description: 'The transfer id was decided with different fields; the detail names them' },
  TRANSFER_EXISTS: { status: 409, recorded: false,
    title: 'An atomic batch names a transfer id decided before, among new ones',
    description: 'Atomic batch: a transfer id decided before, among new ones; nothing applied' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large', recorded: false,
    description: 'Body larger than the limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, recorded: false,
    title: 'The request body must be application/json',
    description: 'Body is not application/json' },
  ACCOUNT_NOT_FOUND: rejection('Account not found',
    'A transfer names an account that does not exist',
    (t) => missing(t)),
  CURRENCY_MISMATCH: rejection('Currencies do not match',
    "The accounts' currencies, or the transfer's, differ",
    (t) => `the currencies of "${t.from}", "${t.to}" and the transfer differ`),
  INSUFFICIENT_FUNDS: rejection('Insufficient funds',
    'The debit account cannot pay within its overdraft limit',
    (t) => `"${t.from}" cannot pay ${amountOf(t)} within its overdraft limit`),
  BALANCE_OVERFLOW: rejection('A balance would exceed 2^128-1',
    'A total of either account would exceed 2^128-1',
    (t) => `${amountOf(t)} would take a total of "${t.from}" or "${t.to}" past 2^128-1`),
  ACCOUNT_CLOSED: rejection('Account closed',
    'A transfer, hold or reversal names a closed account',
    (t) => `account "${t.from}" or "${t.to}" is closed`),
  PENDING_TRANSFER_NOT_FOUND: rejection('Hold not found',
    'A post or void names a hold id nobody decided (or a rejected hold)',
    (t) => `no hold "${t.pendingId ?? ''}" was created`),
  PENDING_TRANSFER_NOT_PENDING: rejection('Not a hold',
    'A post or void names a record that is not a hold',
    (t) => `"${t.pendingId ?? ''}" is not a hold`),
  PENDING_TRANSFER_ALREADY_POSTED: rejection('Hold already posted',
    'A post or void names a hold that was posted',
    (t) => `hold "${t.pendingId ?? ''}" was already posted`),
  PENDING_TRANSFER_ALREADY_VOIDED: rejection('Hold already voided',
    'A post or void names a hold that was voided',
    (t) => `hold "${t.pendingId ?? ''}" was already voided`),
  PENDING_TRANSFER_EXPIRED: rejection('Hold expired',
    'A post or void names a hold past its expiresAt; its reservation is released',
    (t) => `hold "${t.pendingId ?? ''}" expired`),
  EXCEEDS_PENDING_AMOUNT: rejection('The post exceeds the hold',
    'A post asks for more than the hold holds',
    (t) => `${amountOf(t)} exceeds what hold "${t.pendingId ?? ''}" holds`),
  TRANSFER_NOT_FOUND: rejection('Transfer not found',
    'A reversal names a transfer id nobody decided',
    (t) => `no transfer "${t.reverses ?? ''}" was decided`),
  NOT_REVERSIBLE: rejection('Not reversible',
    'A reversal names a hold, void, reversal or rejected transfer',
    (t) => `"${t.reverses ?? ''}" is not a committed transfer or post`),
  EXCEEDS_REVERSIBLE_AMOUNT: rejection('The reversal exceeds what is left',
    'Reversals of a record would add up to more than its amount',
    (t) => `${amountOf(t)} exceeds what is left to reverse of "${t.reverses ?? ''}"`),
  RATE_LIMITED: { status: 429, title: 'Too many requests for this API key', recorded: false,
    description: 'Rate limit of the API key exceeded; see Retry-After' },
  INTERNAL: { status: 500, title: 'Internal error', recorded: false,
    description: 'A bug; the detail never leaks it (see the service log)' },
  UNAVAILABLE: { status: 503, recorded: false,
    title: 'The ledger is unavailable; the outcome of a write is unknown',
    description: 'Redis unreachable or busy: the outcome of a write is unknown; retry with ' +
      'the same id' },
  PERSISTENCE_FAILED: { status: 503, recorded: false,
    title: 'Redis cannot persist writes; this attempt changed nothing',
    description: 'Redis cannot persist: nothing applied; retry later with the same id' },
  NOT_READY: { status: 503, title: 'The service is not ready', recorded: false,
    description: 'A readiness check fails; the detail names it' },
} as const satisfies Record<string, OutcomeSpec> &
  Record<RejectionReason, OutcomeSpec & { detail: RejectionDetail }>;

export type Outcome = keyof typeof OUTCOMES;

/** The `code` a problem of this outcome carries. */
export type ProblemCode = {
  [K in Outcome]: (typeof OUTCOMES)[K] extends { code: infer C extends string } ? C : K
}[Outcome];

export type OutcomeStatus<O extends Outcome> = (typeof OUTCOMES)[O]['status'];

export function problemCode(outcome: Outcome): ProblemCode {
  const spec: OutcomeSpec = OUTCOMES[outcome];
  return (spec.code ?? outcome) as ProblemCode;
}

/** Statuses of successful answers, named here too so that no route writes a number. */
export const SUCCESS = {
  /** Read, or replayed (an account id that existed with the same fields). */
  ok: 200,
  /** Created or committed now (a replayed transfer answers its original 201 too). */
  created: 201,
} as const;
