/**
 * What the transfer routes answer for each ledger outcome: one function per kind of outcome, so
 * `POST /transfers` and each item of `POST /transfers/batch` answer a transfer the same way.
 */
import type {
  BatchRefusal, TransferFields, TransferInput, TransferOutcome, Transfer as TransferView,
} from '../ledger/types.js';
import type { RejectionReason } from '../ledger/status.js';
import { OUTCOMES, SUCCESS } from './outcomes.js';
import { type Problem, problem } from './problem.js';

/** The 422 body of a rejection: built only from the record, so a replay is the same JSON. */
export function rejectionProblem(reason: RejectionReason, t: TransferFields) {
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

/** What `POST /transfers` answers for this outcome (and a batch for each of its items). */
export function transferAnswer(id: string, outcome: TransferOutcome): TransferAnswer {
  if (outcome.kind === 'conflict') {
    const p = conflictProblem(id, outcome.fields);
    return { status: p.status, problem: p };
  }
  const t = outcome.transfer;
  if (t.reason !== undefined) {
    const p = rejectionProblem(t.reason, t);
    return { status: p.status, problem: p };
  }
  return { status: SUCCESS.created, transfer: t };
}

/** One transfer of a batch: what `POST /transfers` would have answered for it. */
export function batchResult(id: string, outcome: TransferOutcome) {
  const answer = transferAnswer(id, outcome);
  const replayed = outcome.kind === 'decided' && outcome.replayed;
  return { id, replayed, ...answer };
}

/** An atomic batch refused as a whole (nothing applied): the transfer that spoiled it. */
export function atomicProblem(inputs: readonly TransferInput[], refusal: BatchRefusal) {
  const index = refusal.index;
  const input = inputs[index] as TransferInput;
  const where = `transfers/${index} ("${input.id}")`;
  const none = 'no transfer of this batch was applied or recorded';
  let p: Problem;
  if (refusal.kind === 'atomicRejected') {
    p = problem(refusal.reason, `${where} would be rejected: ` +
      `${rejectionProblem(refusal.reason, input).detail}; ${none}`);
  } else if (refusal.fields.length > 0) {
    p = problem('TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
      `${where}: ${conflictProblem(input.id, refusal.fields).detail}; ${none}`);
  } else {
    p = problem('TRANSFER_EXISTS', `${where} was decided before, while others in the ` +
      `batch are new: an atomic batch is all new, or all a replay; ${none}`);
  }
  return { ...p, index, transferId: input.id };
}
