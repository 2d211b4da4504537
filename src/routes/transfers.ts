import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { limits } from '../config/limits.js';
import { transferInput } from '../http/input.js';
import { SUCCESS } from '../http/outcomes.js';
import { problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import {
  AUTHENTICATED, described, problemResponses, problems, WITH_BODY, WRITES,
} from '../http/responses.js';
import {
  BatchProblem, IdParams, NoQuery, Transfer, TransferBatchBody, TransferBatchResults,
  TransferBody,
} from '../http/schemas.js';
import { atomicProblem, batchResult, transferAnswer } from '../http/transfer-answers.js';
import { REJECTION_REASONS } from '../ledger/status.js';
import type { TransferInput } from '../ledger/types.js';

/** An atomic batch refused whole answers 409 or 422 with the transfer that spoiled it. */
const batchProblems = problemResponses(BatchProblem, 'TRANSFER_EXISTS',
  'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', ...REJECTION_REASONS);

const transfers: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/transfers', {
    config: { scope: 'write' },
    schema: {
      summary: 'Transfer an amount between two accounts, exactly once per id',
      description: 'The id is the idempotency key. A replay with the same fields returns the ' +
        'original status and body with `Idempotent-Replayed: true`; different fields → 409.',
      tags: ['transfers'],
      body: TransferBody,
      response: { [SUCCESS.created]: described(Transfer, 'Committed (or its replay)'),
        ...problems(...WITH_BODY, 'SAME_ACCOUNT', ...AUTHENTICATED,
          'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', ...REJECTION_REASONS, ...WRITES) },
    },
  }, async (request, reply) => {
    // Every later line of this request (errors, "request completed") names the transfer.
    request.transferId = request.body.id;
    const input = transferInput(request.body, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const outcome = await app.ledger.transfer(input.value);
    if (outcome.kind === 'decided' && outcome.replayed) {
      reply.header('idempotent-replayed', 'true');
    }
    const answer = transferAnswer(input.value.id, outcome);
    if ('problem' in answer) return sendProblem(reply, answer.problem);
    return reply.code(answer.status).send(answer.transfer);
  });

  app.post('/transfers/batch', {
    config: { scope: 'write' },
    bodyLimit: limits.BATCH_BODY_BYTES_MAX,
    schema: {
      summary:
        `Decide up to ${limits.BATCH_TRANSFERS_MAX} transfers, atomically or each on its own`,
      description: 'Each transfer follows the rules of `POST /transfers` (its id is its ' +
        'idempotency key). `atomic: false`: each is decided on its own and its result is what ' +
        '`POST /transfers` would have answered (201, 409 or 422, with `replayed`). ' +
        '`atomic: true`: all commit, or none is applied nor recorded and the reply names the ' +
        'first transfer that would not commit. A batch in which a transfer is malformed (or ids ' +
        'repeat) is refused whole with 400. On 503 retry the whole batch with the same ids.',
      tags: ['transfers'],
      body: TransferBatchBody,
      response: { [SUCCESS.ok]: described(TransferBatchResults, 'Every transfer decided, in order'),
        ...batchProblems, ...problems(...WITH_BODY, 'SAME_ACCOUNT', ...AUTHENTICATED, ...WRITES) },
    },
  }, async (request, reply) => {
    const inputs: TransferInput[] = [];
    const seen = new Set<string>();
    for (const [i, body] of request.body.transfers.entries()) {
      if (seen.has(body.id)) {
        return sendProblem(reply, problem('VALIDATION_ERROR',
          `transfers/${i}/id: "${body.id}" appears more than once in the batch`));
      }
      seen.add(body.id);
      const input = transferInput(body, request.caller);
      if (!input.ok) {
        return sendProblem(reply, { ...input.problem,
          detail: `transfers/${i}: ${input.problem.detail}` });
      }
      inputs.push(input.value);
    }
    const outcome = await app.ledger.transferBatch({ transfers: inputs,
      atomic: request.body.atomic });
    if (outcome.kind !== 'decided') return sendProblem(reply, atomicProblem(inputs, outcome));
    return { results: outcome.results.map((r, i) => batchResult((inputs[i] as TransferInput).id,
      r)) };
  });

  app.get('/transfers/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'Read a decided transfer (committed or rejected)',
      tags: ['transfers'],
      params: IdParams,
      querystring: NoQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: described(Transfer, 'The transfer, committed or rejected'),
        ...problems('VALIDATION_ERROR', ...AUTHENTICATED, 'TRANSFER_NOT_FOUND', 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    request.transferId = request.params.id;
    const transfer = await app.ledger.getTransfer(request.params.id, readOptions(request));
    if (!transfer) {
      return sendProblem(reply, problem('TRANSFER_NOT_FOUND',
        `no transfer "${request.params.id}"`));
    }
    return transfer;
  });
};

export default transfers;
