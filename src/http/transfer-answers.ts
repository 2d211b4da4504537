/**
 * What the transfer routes answer for each ledger outcome: one function per kind of outcome, so
 * `POST /transfers` and each item of `POST /transfers/batch` answer a transfer the same way.
 */
import type {
  BatchRefusal, TransferInput, TransferOutcome, Transfer as TransferView,
} from '../ledger/types.js';
import type { RejectionReason } from '../ledger/status.js';
import { OUTCOMES, type RejectionSubject, SUCCESS } from './outcomes.js';
import { type Problem, problem } from './problem.js';

/**
 * The 422 body of a rejection: built from the record (and, for ACCOUNT_NOT_FOUND, the accounts
 * that did not exist, which stay the same: src/ledger/missing-accounts.ts), so a replay is the
 * same JSON.
 */
export function rejectionProblem(reason: RejectionReason, t: RejectionSubject) {
  return problem(reason, `transfer "${t.id}": ${OUTCOMES[reason].detail(t)}`);
}

export function conflictProblem(id: string, fields: readonly string[]) {
  return problem('TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
    `transfer "${id}" was decided with different ${fields.join(', ')}`);
}

/** A decided transfer: 201 with the transfer, or its rejection's problem. */
export type TransferAnswer =
  | { status: typeof SUCCESS.created; transfer: TransferView }
  | { status: 409 | 422; problem: Problem };

/** The ledger's answer to "which accounts did not exist", asked on that rejection only. */
export interface MissingAccounts {
  missingAccounts(t: { id: string; from: string; to: string }, recorded: boolean):
    Promise<string[] | undefined>;
}

/** The accounts an ACCOUNT_NOT_FOUND outcome names; undefined for every other outcome. */
export async function missingIn(ledger: MissingAccounts,
  outcome: TransferOutcome): Promise<string[] | undefined> {
  if (outcome.kind !== 'decided' || outcome.transfer.reason !== 'ACCOUNT_NOT_FOUND') {
    return undefined;
  }
  return ledger.missingAccounts(outcome.transfer, true);
}

/** `missingIn` for each result of a batch, asked together, and only where it applies. */
export async function missingInEach(ledger: MissingAccounts,
  results: readonly TransferOutcome[]): Promise<Array<string[] | undefined>> {
  const out: Array<string[] | undefined> = [];
  const asked = results.flatMap((r, i) => (r.kind === 'decided'
    && r.transfer.reason === 'ACCOUNT_NOT_FOUND' ? [i] : []));
  await Promise.all(asked.map(async (i) => {
    out[i] = await missingIn(ledger, results[i] as TransferOutcome);
  }));
  return out;
}

/** The same for the transfer that refused an atomic batch (nothing recorded). */
export async function missingInRefusal(ledger: MissingAccounts, inputs: readonly TransferInput[],
  refusal: BatchRefusal): Promise<string[] | undefined> {
  const input = inputs[refusal.index];
  if (refusal.kind !== 'atomicRejected' || refusal.reason !== 'ACCOUNT_NOT_FOUND'
    || input === undefined) return undefined;
  return ledger.missingAccounts(input, false);
}

/**
 * What `POST /transfers` answers for this outcome (and a batch for each of its items);
 * `missing`: what `missingIn` found.
 */
export function transferAnswer(id: string, outcome: TransferOutcome,
  missing?: readonly string[]): TransferAnswer {
  if (outcome.kind === 'conflict') {
    const p = conflictProblem(id, outcome.fields);
    return { status: p.status, problem: p };
  }
  const t = outcome.transfer;
  if (t.reason !== undefined) {
    const p = rejectionProblem(t.reason, { ...t, missingAccounts: missing });
    return { status: p.status, problem: p };
  }
  return { status: SUCCESS.created, transfer: t };
}

/** One transfer of a batch: what `POST /transfers` would have answered for it. */
export function batchResult(id: string, outcome: TransferOutcome, missing?: readonly string[]) {
  const answer = transferAnswer(id, outcome, missing);
  const replayed = outcome.kind === 'decided' && outcome.replayed;
  return { id, replayed, ...answer };
}

/**
 * An atomic batch refused as a whole (nothing applied): the transfer that spoiled it, and for
 * ACCOUNT_NOT_FOUND the accounts that do not exist.
 */
export function atomicProblem(inputs: readonly TransferInput[], refusal: BatchRefusal,
  missing?: readonly string[]) {
  const index = refusal.index;
  const input = inputs[index] as TransferInput;
  const where = `transfers/${index} ("${input.id}")`;
  const none = 'no transfer of this batch was applied or recorded';
  let p: Problem;
  if (refusal.kind === 'atomicRejected') {
    p = problem(refusal.reason, `${where} would be rejected: ` +
      `${rejectionProblem(refusal.reason, { ...input, missingAccounts: missing }).detail}; ` +
      none);
  } else if (refusal.fields.length > 0) {
    p = problem('TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
      `${where}: ${conflictProblem(input.id, refusal.fields).detail}; ${none}`);
  } else {
    p = problem('TRANSFER_EXISTS', `${where} was decided before, while others in the ` +
      `batch are new: an atomic batch is all new, or all a replay; ${none}`);
  }
  return { ...p, index, transferId: input.id };
}
