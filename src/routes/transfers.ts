import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { limits } from '../config/limits.js';
import { transferInput } from '../http/input.js';
import { SUCCESS } from '../http/outcomes.js';
import { problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import { withExamples } from '../http/document.js';
import {
  BATCH_REQUESTS, BATCH_RESULTS, HOLD_COMMITTED, HOLD_REQUESTS, TRANSFER_COMMITTED,
  TRANSFER_READ, TRANSFER_REQUESTS,
} from '../http/examples.js';
import {
  IN_LEDGER, batchProblems, json, problems, REPLAYED_HEADER, TransferBatchResults,
  WITH_BODY, withHeaders, WRITES,
} from '../http/responses.js';
import {
  CommittedTransfer, IdParams, NoQuery, Transfer, TransferBatchBody, TransferBatchResultsJson,
  TransferBody, TransferJson,
} from '../http/schemas.js';
import {
  atomicProblem, batchResult, missingIn, missingInEach, missingInRefusal, transferAnswer,
} from '../http/transfer-answers.js';
/** What a transfer or hold can be rejected for (the others are posts', voids', reversals'). */
export const TRANSFER_REJECTIONS = ['ACCOUNT_NOT_FOUND', 'ACCOUNT_CLOSED', 'CURRENCY_MISMATCH',
  'INSUFFICIENT_FUNDS', 'BALANCE_OVERFLOW'] as const;
import type { TransferInput } from '../ledger/types.js';

/** An atomic batch refused whole answers 409 or 422 with the transfer that spoiled it. */
const atomicRefusals = batchProblems('TRANSFER_EXISTS', 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
  ...TRANSFER_REJECTIONS);

const transfers: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/transfers', {
    config: { scope: 'write' },
    schema: {
      operationId: 'createTransfer',
      summary: 'Transfer an amount between two accounts, exactly once per id',
      description: 'The id is the idempotency key: choose it before the first attempt and send ' +
        'the same request on every retry. A decided id is final: a replay with the same fields ' +
        'returns the original status (201 or 422) and body with `Idempotent-Replayed: true`; ' +
        'different fields → 409. 201, 400, 409 and 422 are decided answers; after a timeout, a ' +
        'network error, 429 or 503, retry with the same id (after `Retry-After`). With ' +
        '`"pending": true` it opens a hold instead: the amount is reserved (the accounts\' ' +
        '`debitsPending`, `creditsPending`) and moves when posted (`POST /transfers/{id}/post`).',
      tags: ['transfers'],
      body: withExamples(TransferBody, { ...TRANSFER_REQUESTS, ...HOLD_REQUESTS }),
      response: {
        [SUCCESS.created]: json(TransferJson, 'Committed now, or the replay of that',
          { documented: CommittedTransfer, examples: { ...TRANSFER_COMMITTED, ...HOLD_COMMITTED },
            headers: REPLAYED_HEADER }),
        ...withHeaders(problems(...WITH_BODY, 'SAME_ACCOUNT', ...IN_LEDGER,
          'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', ...TRANSFER_REJECTIONS, ...WRITES), 422,
        REPLAYED_HEADER) },
    },
  }, async (request, reply) => {
    // Every later line of this request (errors, "request completed") names the transfer.
    request.transferId = request.body.id;
    const input = transferInput(request.body, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const outcome = await request.ledger.transfer(input.value);
    if (outcome.kind === 'decided' && outcome.replayed) {
      reply.header('idempotent-replayed', 'true');
    }
    const answer = transferAnswer(input.value.id, outcome,
      await missingIn(request.ledger, outcome));
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
      operationId: 'createTransferBatch',
      tags: ['transfers'],
      body: withExamples(TransferBatchBody, BATCH_REQUESTS),
      response: {
        [SUCCESS.ok]: json(TransferBatchResultsJson, 'Every transfer decided, in order',
          { documented: TransferBatchResults, examples: BATCH_RESULTS }),
        ...atomicRefusals,
        ...problems(...WITH_BODY, 'SAME_ACCOUNT', ...IN_LEDGER, ...WRITES) },
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
    const outcome = await request.ledger.transferBatch({ transfers: inputs,
      atomic: request.body.atomic });
    if (outcome.kind !== 'decided') {
      return sendProblem(reply, atomicProblem(inputs, outcome,
        await missingInRefusal(request.ledger, inputs, outcome)));
    }
    const missing = await missingInEach(request.ledger, outcome.results);
    return { results: outcome.results.map((r, i) => batchResult((inputs[i] as TransferInput).id,
      r, missing[i])) };
  });

  app.get('/transfers/:id', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getTransfer',
      summary: 'Read a decided transfer (committed or rejected)',
      description: 'What was decided under this id: a committed transfer with its journal ' +
        'position and balances after it, or a rejected one with its reason. 404 until some ' +
        'request decides the id.',
      tags: ['transfers'],
      params: IdParams,
      querystring: NoQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: json(TransferJson, 'The transfer, committed or rejected',
        { documented: Transfer, examples: TRANSFER_READ }),
        ...problems('VALIDATION_ERROR', ...IN_LEDGER, 'NO_SUCH_TRANSFER', 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    request.transferId = request.params.id;
    const transfer = await request.ledger.getTransfer(request.params.id, readOptions(request));
    if (!transfer) {
      return sendProblem(reply, problem('NO_SUCH_TRANSFER',
        `no transfer "${request.params.id}"`));
    }
    return transfer;
  });
};

export default transfers;
