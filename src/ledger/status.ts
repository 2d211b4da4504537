/**
 * Script statuses: the outcomes a writing script returns, shared by Lua and TypeScript. The
 * loader substitutes `{{S_<NAME>}}` in every script with the code below, so the two cannot drift.
 *
 * Each code is explicit and stable: recorded rejections store it, so a code never changes and a
 * retired one is never reused (RETIRED_STATUS_CODES; test/ledger/status.test.ts checks both).
 * The code says nothing about precedence: that is the order in which lua/includes/decide.lua
 * writes its checks, so a new check goes where it belongs with the next free code.
 *
 * `kind` says what the caller does with it:
 * - `ok`: decided now (committed, or created);
 * - `exists`: the id was decided before; the stored record comes back for comparison;
 * - `rejection`: a business rejection, decided and recorded under the id (src/http/outcomes.ts
 *   maps each to its HTTP answer; a rejection it does not map does not compile);
 * - `refused`: nothing written, and never caused by user input (a bug, or the wrong release).
 */
export const STATUSES = {
  OK: { code: 0, kind: 'ok' },
  /** The ledger's data carries a format version this build does not understand. */
  FORMAT_UNSUPPORTED: { code: 1, kind: 'refused' },
  /** ARGV failed the script's own shape checks: a bug in the caller, never user input. */
  INVALID_ARGUMENT: { code: 2, kind: 'refused' },
  EXISTS: { code: 3, kind: 'exists' },
  ACCOUNT_NOT_FOUND: { code: 4, kind: 'rejection' },
  CURRENCY_MISMATCH: { code: 5, kind: 'rejection' },
  INSUFFICIENT_FUNDS: { code: 6, kind: 'rejection' },
  BALANCE_OVERFLOW: { code: 7, kind: 'rejection' },
  ACCOUNT_CLOSED: { code: 8, kind: 'rejection' },
  PENDING_TRANSFER_NOT_FOUND: { code: 9, kind: 'rejection' },
  /** The id names a decided record that is not a hold. */
  PENDING_TRANSFER_NOT_PENDING: { code: 10, kind: 'rejection' },
  PENDING_TRANSFER_ALREADY_POSTED: { code: 11, kind: 'rejection' },
  PENDING_TRANSFER_ALREADY_VOIDED: { code: 12, kind: 'rejection' },
  PENDING_TRANSFER_EXPIRED: { code: 13, kind: 'rejection' },
  EXCEEDS_PENDING_AMOUNT: { code: 14, kind: 'rejection' },
  /** A reversal names a transfer id nobody decided. */
  TRANSFER_NOT_FOUND: { code: 15, kind: 'rejection' },
  /** A hold, a void, a reversal or a rejected transfer: only transfers and posts reverse. */
  NOT_REVERSIBLE: { code: 16, kind: 'rejection' },
  EXCEEDS_REVERSIBLE_AMOUNT: { code: 17, kind: 'rejection' },
  /**
   * A post, void or reversal was called with the keys of other accounts than its target's
   * (the caller read the target before it existed): nothing written; the caller reads it again.
   */
  STALE_KEYS: { code: 18, kind: 'refused' },
  /**
   * The id (or a post's, void's or reversal's target) was decided and its record archived:
   * freed from Redis, kept in PostgreSQL (src/archive/). Nothing written; the caller reads the
   * record from the archive (a replay), or calls again with the target's record.
   */
  ARCHIVED: { code: 19, kind: 'exists' },
} as const satisfies Record<string, { code: number; kind: StatusKind }>;

type StatusKind = 'ok' | 'exists' | 'rejection' | 'refused';

/** Codes that were once assigned and then retired: stored records may still hold them. */
export const RETIRED_STATUS_CODES: readonly number[] = [];

export type ScriptStatus = keyof typeof STATUSES;

/** Business rejections: decided, recorded under the transfer id, replayed as 422. */
export type RejectionReason = {
  [K in ScriptStatus]: (typeof STATUSES)[K]['kind'] extends 'rejection' ? K : never
}[ScriptStatus];

const NAMES = Object.keys(STATUSES) as ScriptStatus[];

export const statusCode = Object.fromEntries(
  NAMES.map((name) => [name, STATUSES[name].code]),
) as { readonly [K in ScriptStatus]: (typeof STATUSES)[K]['code'] };

const BY_CODE = new Map<number, ScriptStatus>(NAMES.map((name) => [STATUSES[name].code, name]));

/** The status a script returned; undefined for a code this release does not know. */
export function statusOf(code: number): ScriptStatus | undefined {
  return BY_CODE.get(code);
}

export function statusName(code: number): ScriptStatus {
  const name = BY_CODE.get(code);
  if (name === undefined) throw new Error(`unknown script status ${code}`);
  return name;
}

export const REJECTION_REASONS = NAMES.filter(
  (name): name is RejectionReason => STATUSES[name].kind === 'rejection',
);

export function isRejection(status: ScriptStatus): status is RejectionReason {
  return STATUSES[status].kind === 'rejection';
}
