import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { transferInput } from '../http/input.js';
import { type Problem as ProblemBody, problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import { described, problems } from '../http/responses.js';
import { IdParams, NoQuery, Transfer, TransferBody } from '../http/schemas.js';
import type { Transfer as TransferView } from '../ledger/ledger.js';

/** The 422 body of a rejection: built only from the record, so a replay is the same JSON. */
export function rejectionProblem(t: TransferView): ProblemBody {
  const amount = `${t.amount}${t.currency ? ` ${t.currency}` : ''}`;
  switch (t.reason) {
    case 'ACCOUNT_NOT_FOUND':
      return problem(422, 'ACCOUNT_NOT_FOUND',
        `transfer "${t.id}": account "${t.from}" or "${t.to}" does not exist`);
    case 'CURRENCY_MISMATCH':
      return problem(422, 'CURRENCY_MISMATCH',
        `transfer "${t.id}": the currencies of "${t.from}", "${t.to}" and the transfer differ`);
    case 'INSUFFICIENT_FUNDS':
      return problem(422, 'INSUFFICIENT_FUNDS',
        `transfer "${t.id}": "${t.from}" cannot pay ${amount} within its overdraft limit`);
    case 'BALANCE_OVERFLOW':
      return problem(422, 'BALANCE_OVERFLOW',
        `transfer "${t.id}": ${amount} would take a total of "${t.from}" or "${t.to}" ` +
        'past 2^128-1');
    default:
      throw new Error(`transfer ${t.id} is not a rejection`);
  }
}

const transfers: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/transfers', {
    config: { scope: 'write' },
    schema: {
      summary: 'Transfer an amount between two accounts, exactly once per id',
      description: 'The id is the idempotency key. A replay with the same fields returns the ' +
        'original status and body with `Idempotent-Replayed: true`; different fields → 409.',
      tags: ['transfers'],
      body: TransferBody,
      response: { 201: described(Transfer, 'Committed (or its replay)'),
        ...problems(400, 401, 403, 409, 413, 415, 422, 429, 503) },
    },
  }, async (request, reply) => {
    // Every later line of this request (errors, "request completed") names the transfer.
    request.log = reply.log = request.log.child({ transferId: request.body.id });
    const input = transferInput(request.body, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const outcome = await app.ledger.transfer(input.value).catch(app.metrics.transferFailed);
    app.metrics.transferDecided(outcome);
    if (outcome.kind === 'conflict') {
      return sendProblem(reply, problem(409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
        `transfer "${input.value.id}" was decided with different ${outcome.fields.join(', ')}`));
    }
    if (outcome.replayed) reply.header('idempotent-replayed', 'true');
    const t = outcome.transfer;
    if (t.status === 'rejected') return sendProblem(reply, rejectionProblem(t));
    return reply.code(201).send(t);
  });

  app.get('/transfers/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'Read a decided transfer (committed or rejected)',
      tags: ['transfers'],
      params: IdParams,
      querystring: NoQuery,
      headers: ReadFromHeaders,
      response: { 200: described(Transfer, 'The transfer, committed or rejected'),
        ...problems(400, 401, 403, 404, 429, 503) },
    },
  }, async (request, reply) => {
    request.log = reply.log = request.log.child({ transferId: request.params.id });
    const transfer = await app.ledger.getTransfer(request.params.id, readOptions(request));
    if (!transfer) {
      return sendProblem(reply, problem(404, 'TRANSFER_NOT_FOUND',
        `no transfer "${request.params.id}"`));
    }
    return transfer;
  });
};

export default transfers;
