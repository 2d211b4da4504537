import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { transferInput } from '../http/input.js';
import { type Problem as ProblemBody, problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import { described, problems } from '../http/responses.js';
import { limits } from '../config/limits.js';
import {
  BatchProblem, IdParams, NoQuery, Transfer, TransferBatchBody, TransferBatchResults,
  TransferBody,
} from '../http/schemas.js';
import type {
  BatchOutcome, TransferInput, TransferOutcome, Transfer as TransferView,
} from '../ledger/ledger.js';

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

function conflictProblem(id: string, fields: string[]): ProblemBody {
  return problem(409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
    `transfer "${id}" was decided with different ${fields.join(', ')}`);
}

/** One transfer of a batch: what `POST /transfers` would have answered for it. */
function batchResult(id: string, outcome: TransferOutcome) {
  if (outcome.kind === 'conflict') {
    return { id, status: 409 as const, replayed: false,
      problem: conflictProblem(id, outcome.fields) };
  }
  const t = outcome.transfer;
  if (t.status === 'rejected') {
    return { id, status: 422 as const, replayed: outcome.replayed, problem: rejectionProblem(t) };
  }
  return { id, status: 201 as const, replayed: outcome.replayed, transfer: t };
}

/** An atomic batch refused as a whole (nothing applied): the transfer that spoiled it. */
function atomicProblem(inputs: TransferInput[],
  outcome: Exclude<BatchOutcome, { kind: 'decided' }>) {
  const index = outcome.index;
  const input = inputs[index] as TransferInput;
  const where = `transfers/${index} ("${input.id}")`;
  const none = 'no transfer of this batch was applied or recorded';
  let p: ProblemBody;
  if (outcome.kind === 'atomicRejected') {
    const reason = rejectionProblem({ ...input, status: 'rejected', reason: outcome.reason,
      createdAt: '' });
    p = { ...reason, detail: `${where} would be rejected: ${reason.detail}; ${none}` };
  } else if (outcome.fields.length > 0) {
    const conflict = conflictProblem(input.id, outcome.fields);
    p = { ...conflict, detail: `${where}: ${conflict.detail}; ${none}` };
  } else {
    p = problem(409, 'TRANSFER_EXISTS', `${where} was decided before, while others in the ` +
      `batch are new: an atomic batch is all new, or all a replay; ${none}`);
  }
  return { ...p, index, transferId: input.id };
}

const batchProblems = {
  409: { description: 'Atomic batch: a transfer id decided before (TRANSFER_EXISTS), or with ' +
    'other fields; nothing applied', content: { 'application/problem+json':
    { schema: BatchProblem } } },
  422: { description: 'Atomic batch: a transfer would be rejected (its code); nothing applied ' +
    'or recorded', content: { 'application/problem+json': { schema: BatchProblem } } },
} as unknown as { 409: typeof BatchProblem; 422: typeof BatchProblem };

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
      return sendProblem(reply, conflictProblem(input.value.id, outcome.fields));
    }
    if (outcome.replayed) reply.header('idempotent-replayed', 'true');
    const t = outcome.transfer;
    if (t.status === 'rejected') return sendProblem(reply, rejectionProblem(t));
    return reply.code(201).send(t);
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
      response: { 200: described(TransferBatchResults, 'Every transfer decided, in order'),
        ...batchProblems, ...problems(400, 401, 403, 413, 415, 429, 503) },
    },
  }, async (request, reply) => {
    const inputs: TransferInput[] = [];
    const seen = new Set<string>();
    for (const [i, body] of request.body.transfers.entries()) {
      if (seen.has(body.id)) {
        return sendProblem(reply, problem(400, 'VALIDATION_ERROR',
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
      atomic: request.body.atomic }).catch(app.metrics.transferFailed);
    if (outcome.kind !== 'decided') {
      const p = atomicProblem(inputs, outcome);
      return reply.code(p.status).type('application/problem+json').send(p);
    }
    for (const result of outcome.results) app.metrics.transferDecided(result);
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
