/**
 * Checks the schema cannot express (exact u128 range, metadata byte size, distinct accounts),
 * turning a validated body into ledger input or a 400 problem.
 */
import { limits } from '../config/limits.js';
import { parseUnsigned } from '../ledger/amount.js';
import { canonicalMetadata } from '../ledger/records.js';
import type { AccountInput, TransferInput } from '../ledger/types.js';
import { type Problem, problem } from './problem.js';
import type { CreateAccountBody, TransferBody } from './schemas.js';

type Checked<T> = { ok: true; value: T } | { ok: false; problem: Problem };

const invalid = (detail: string): { ok: false; problem: Problem } => ({
  ok: false,
  problem: problem('VALIDATION_ERROR', detail),
});

function metadataProblem(metadata: Record<string, string>): Problem | undefined {
  const bytes = Buffer.byteLength(canonicalMetadata(metadata));
  if (bytes <= limits.METADATA_JSON_BYTES_MAX) return undefined;
  return problem('VALIDATION_ERROR',
    `metadata is ${bytes} bytes of JSON; at most ${limits.METADATA_JSON_BYTES_MAX} allowed`);
}

/** `POST /ledgers`: the name passes the schema; the metadata's size is checked here. */
export function ledgerMetadata(metadata: Record<string, string> | undefined):
  Checked<Record<string, string>> {
  const value = metadata ?? {};
  const tooBig = metadataProblem(value);
  return tooBig === undefined ? { ok: true, value } : { ok: false, problem: tooBig };
}

export function accountInput(body: CreateAccountBody, createdBy: string): Checked<AccountInput> {
  const metadata = body.metadata ?? {};
  const tooBig = metadataProblem(metadata);
  if (tooBig) return { ok: false, problem: tooBig };
  let overdraftLimit = 'unlimited';
  if (body.overdraftLimit !== 'unlimited') {
    const parsed = parseUnsigned(body.overdraftLimit ?? '0', 0n);
    if (parsed === undefined) return invalid('overdraftLimit must be 0 … 2^128-1 or "unlimited"');
    overdraftLimit = parsed.toString();
  }
  return {
    ok: true,
    value: { id: body.id, currency: body.currency, overdraftLimit, metadata, createdBy },
  };
}

export function transferInput(body: TransferBody, createdBy: string): Checked<TransferInput> {
  if (body.from === body.to) {
    return {
      ok: false,
      problem: problem('SAME_ACCOUNT', `from and to are both "${body.from}"`),
    };
  }
  const amount = parseUnsigned(body.amount, 1n);
  if (amount === undefined) return invalid('amount must be 1 … 2^128-1');
  const metadata = body.metadata ?? {};
  const tooBig = metadataProblem(metadata);
  if (tooBig) return { ok: false, problem: tooBig };
  if (body.timeoutSeconds !== undefined && body.pending !== true) {
    return invalid('timeoutSeconds is for a hold only ("pending": true)');
  }
  const value: TransferInput = { id: body.id, from: body.from, to: body.to,
    amount: amount.toString(), currency: body.currency, metadata, createdBy };
  if (body.pending === true) {
    value.pending = true;
    if (body.timeoutSeconds !== undefined) value.timeoutSeconds = body.timeoutSeconds;
  }
  return { ok: true, value };
}

/**
 * A post, void or reversal: `target` is the path's id (a hold, or the transfer to reverse);
 * an amount, when given, is checked as a transfer's.
 */
export function targetedInput(body: { id: string; amount?: string | number;
  metadata?: Record<string, string> }, target: string,
  createdBy: string): Checked<{ id: string; target: string; amount?: string;
    metadata: Record<string, string>; createdBy: string }> {
  const metadata = body.metadata ?? {};
  const tooBig = metadataProblem(metadata);
  if (tooBig) return { ok: false, problem: tooBig };
  if (body.amount === undefined) return { ok: true, value: { id: body.id, target, metadata,
    createdBy } };
  const amount = parseUnsigned(body.amount, 1n);
  if (amount === undefined) return invalid('amount must be 1 … 2^128-1');
  return { ok: true, value: { id: body.id, target, amount: amount.toString(), metadata,
    createdBy } };
}
