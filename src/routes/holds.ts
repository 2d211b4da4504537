/**
 * Posts and voids of holds, and reversals: each decided once under the body's `id`, answered as
 * `POST /transfers` answers (201, or the recorded 422; 409 for the id with other fields).
 * The ledger does the work (src/ledger/ledger.ts: settle, reverse); docs/holds.md is the
 * contract.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { withExamples } from '../http/document.js';
import {
  POST_COMMITTED, POST_REQUESTS, REVERSAL_COMMITTED, REVERSAL_REQUESTS, VOID_COMMITTED,
  VOID_REQUESTS,
} from '../http/examples.js';
import { targetedInput } from '../http/input.js';
import { SUCCESS } from '../http/outcomes.js';
import { sendProblem } from '../http/problem.js';
import {
  IN_LEDGER, json, problems, REPLAYED_HEADER, WITH_BODY, withHeaders, WRITES,
} from '../http/responses.js';
import {
  CommittedTransfer, IdParams, PostBody, ReversalBody, TransferJson, VoidBody,
} from '../http/schemas.js';
import { transferAnswer } from '../http/transfer-answers.js';
import type { TransferOutcome } from '../ledger/types.js';

/** The rejections each operation can record (docs/holds.md gives their precedence). */
export const SETTLE_REJECTIONS = ['PENDING_TRANSFER_NOT_FOUND', 'PENDING_TRANSFER_NOT_PENDING',
  'PENDING_TRANSFER_ALREADY_POSTED', 'PENDING_TRANSFER_ALREADY_VOIDED',
  'PENDING_TRANSFER_EXPIRED'] as const;
export const POST_REJECTIONS = [...SETTLE_REJECTIONS, 'EXCEEDS_PENDING_AMOUNT'] as const;
export const REVERSAL_REJECTIONS = ['TRANSFER_NOT_FOUND', 'NOT_REVERSIBLE',
  'EXCEEDS_REVERSIBLE_AMOUNT', 'ACCOUNT_CLOSED', 'INSUFFICIENT_FUNDS',
  'BALANCE_OVERFLOW'] as const;

const RETRY_RULES = 'The body `id` is this operation\'s idempotency key, as for ' +
  '`POST /transfers`: a replay with the same fields (the same path id, the same `amount` as ' +
  'asked or none, the same metadata) returns the original status and body with ' +
  '`Idempotent-Replayed: true`; anything else is 409. After a timeout, 429 or 503, retry ' +
  'with the same id.';

function answer(reply: FastifyReply, id: string, outcome: TransferOutcome) {
  if (outcome.kind === 'decided' && outcome.replayed) reply.header('idempotent-replayed', 'true');
  const a = transferAnswer(id, outcome);
  if ('problem' in a) return sendProblem(reply, a.problem);
  return reply.code(a.status).send(a.transfer);
}

const holds: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/transfers/:id/post', {
    config: { scope: 'write' },
    schema: {
      operationId: 'postHold',
      summary: 'Post a hold: move all or part of it, release the rest',
      description: 'Moves `amount` (default: all of the hold) from the hold\'s `from` to its ' +
        '`to` as posted money and releases the rest of the reservation. A hold settles once: ' +
        `by a post, a void or its expiry, whichever comes first. ${RETRY_RULES}`,
      tags: ['holds'],
      params: IdParams,
      body: withExamples(PostBody, POST_REQUESTS),
      response: {
        [SUCCESS.created]: json(TransferJson, 'Posted now, or the replay of that',
          { documented: CommittedTransfer, examples: POST_COMMITTED,
            headers: REPLAYED_HEADER }),
        ...withHeaders(problems(...WITH_BODY, ...IN_LEDGER,
          'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', ...POST_REJECTIONS, ...WRITES), 422,
        REPLAYED_HEADER) },
    },
  }, async (request, reply) => {
    request.transferId = request.body.id;
    const input = targetedInput(request.body, request.params.id, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const { target, ...rest } = input.value;
    return answer(reply, rest.id, await request.ledger.settle('post', { ...rest, holdId: target }));
  });

  app.post('/transfers/:id/void', {
    config: { scope: 'write' },
    schema: {
      operationId: 'voidHold',
      summary: 'Void a hold: release all of it',
      description: 'Releases the whole reservation; no posted balance moves. A hold settles ' +
        `once: by a post, a void or its expiry, whichever comes first. ${RETRY_RULES}`,
      tags: ['holds'],
      params: IdParams,
      body: withExamples(VoidBody, VOID_REQUESTS),
      response: {
        [SUCCESS.created]: json(TransferJson, 'Voided now, or the replay of that',
          { documented: CommittedTransfer, examples: VOID_COMMITTED,
            headers: REPLAYED_HEADER }),
        ...withHeaders(problems(...WITH_BODY, ...IN_LEDGER,
          'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', ...SETTLE_REJECTIONS, ...WRITES), 422,
        REPLAYED_HEADER) },
    },
  }, async (request, reply) => {
    request.transferId = request.body.id;
    const input = targetedInput(request.body, request.params.id, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const { target, ...rest } = input.value;
    return answer(reply, rest.id, await request.ledger.settle('void', { ...rest, holdId: target }));
  });

  app.post('/transfers/:id/reversals', {
    config: { scope: 'write' },
    schema: {
      operationId: 'reverseTransfer',
      summary: 'Reverse a committed transfer or post, in full or in part',
      description: 'Moves `amount` (default: all that is still reversible) back from the ' +
        'original\'s `to` to its `from`. Reversals of one transfer add up to at most its ' +
        `amount; the original shows \`reversedAmount\`. ${RETRY_RULES}`,
      tags: ['transfers'],
      params: IdParams,
      body: withExamples(ReversalBody, REVERSAL_REQUESTS),
      response: {
        [SUCCESS.created]: json(TransferJson, 'Reversed now, or the replay of that',
          { documented: CommittedTransfer, examples: REVERSAL_COMMITTED,
            headers: REPLAYED_HEADER }),
        ...withHeaders(problems(...WITH_BODY, ...IN_LEDGER,
          'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', ...REVERSAL_REJECTIONS, ...WRITES), 422,
        REPLAYED_HEADER) },
    },
  }, async (request, reply) => {
    request.transferId = request.body.id;
    const input = targetedInput(request.body, request.params.id, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const { target, ...rest } = input.value;
    return answer(reply, rest.id, await request.ledger.reverse({ ...rest, transferId: target }));
  });
};

export default holds;
