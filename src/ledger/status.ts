/**
 * Script outcomes: one ordered list shared by Lua and TypeScript. The loader substitutes
 * `{{S_<NAME>}}` in every script with the index below, so the two cannot drift; the order is the
 * precedence in which the transfer script checks them (test/lua/status.test.ts walks it).
 *
 * Do not reorder or reuse a number: recorded rejections store the number.
 */
export const SCRIPT_STATUSES = [
  'OK',
  /** The ledger's data carries a format version this build does not understand: refuse. */
  'FORMAT_UNSUPPORTED',
  /** ARGV failed the script's own shape checks: a bug in the caller, never user input. */
  'INVALID_ARGUMENT',
  /** The id is decided already; the stored record comes back for comparison. */
  'EXISTS',
  'ACCOUNT_NOT_FOUND',
  'CURRENCY_MISMATCH',
  'INSUFFICIENT_FUNDS',
  'BALANCE_OVERFLOW',
] as const;

export type ScriptStatus = (typeof SCRIPT_STATUSES)[number];

export const statusCode = Object.fromEntries(
  SCRIPT_STATUSES.map((name, index) => [name, index]),
) as { readonly [K in ScriptStatus]: number };

export function statusName(code: number): ScriptStatus {
  const name = SCRIPT_STATUSES[code];
  if (name === undefined) throw new Error(`unknown script status ${code}`);
  return name;
}

/** Business rejections: decided, recorded under the transfer id, replayed as 422. */
export const REJECTION_REASONS = [
  'ACCOUNT_NOT_FOUND',
  'CURRENCY_MISMATCH',
  'INSUFFICIENT_FUNDS',
  'BALANCE_OVERFLOW',
] as const satisfies readonly ScriptStatus[];

export type RejectionReason = (typeof REJECTION_REASONS)[number];

export function isRejection(status: ScriptStatus): status is RejectionReason {
  return (REJECTION_REASONS as readonly string[]).includes(status);
}
