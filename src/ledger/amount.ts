/**
 * Money codec. Amounts and balances are decimal integer strings on the wire and in Redis, and
 * `bigint` wherever TypeScript computes. A JS number never holds money: a JSON number is accepted
 * only when it is a safe integer, and is converted to a string at once.
 */
import { AMOUNT_MAX, limits } from '../config/limits.js';

/** Canonical unsigned decimal: no sign, no leading zeros, no exponent, no whitespace. */
export const UNSIGNED_PATTERN = `^(0|[1-9][0-9]{0,${limits.AMOUNT_DIGITS_MAX - 1}})$`;
const UNSIGNED = new RegExp(UNSIGNED_PATTERN);
const SIGNED = /^(0|-?[1-9][0-9]*)$/;

export type AmountInput = string | number;

/**
 * Parses an amount (≥ `min`, ≤ 2^128−1) from a request; `undefined` when it is not one.
 * The HTTP schema has already checked the shape; this checks the range exactly.
 */
export function parseUnsigned(input: AmountInput, min: 0n | 1n): bigint | undefined {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input)) return undefined;
    text = String(input);
  } else {
    text = input;
  }
  if (!UNSIGNED.test(text)) return undefined;
  const value = BigInt(text);
  return value >= min && value <= AMOUNT_MAX ? value : undefined;
}

/** Reads a value written by our scripts; a malformed one is corruption, not user input. */
export function readStoredSigned(text: unknown, what: string): bigint {
  if (typeof text !== 'string' || !SIGNED.test(text)) {
    throw new Error(`corrupt ledger data: ${what} is ${JSON.stringify(text)}`);
  }
  return BigInt(text);
}
