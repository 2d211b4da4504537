/**
 * Ledgers: create, read, list (`/ledgers`). The routes of one ledger (`/ledgers/{ledger}/…`) are
 * the account, transfer and hold routes registered under that prefix (src/app.ts). Creating a
 * ledger takes the `admin` scope; a key restricted to some ledgers creates only those, and
 * reads and lists only those (any other is 404, exactly as a ledger that does not exist).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { reaches } from '../auth/keys.js';
import { limits } from '../config/limits.js';
import { withExamples } from '../http/document.js';
import {
  LEDGER_CREATED, LEDGER_READ, LEDGER_REPLAYED, LEDGER_REQUESTS, LEDGERS_PAGE,
} from '../http/examples.js';
import { ledgerMetadata } from '../http/input.js';
import { SUCCESS } from '../http/outcomes.js';
import { problem, sendProblem } from '../http/problem.js';
import {
  AUTHENTICATED, IN_LEDGER, json, problems, REPLAYED_HEADER, WITH_BODY, WRITES,
} from '../http/responses.js';
import {
  CreateLedgerBody, LedgerJson, LedgerParams, LedgerRecord, LedgersPage, LedgersPageJson,
  LedgersQuery, NoQuery,
} from '../http/schemas.js';
import { ledgerView } from '../ledger/records.js';
import { ledgerNotFound } from '../plugins/ledger.js';

const ledgers: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/ledgers', {
    config: { scope: 'admin' },
    schema: {
      operationId: 'createLedger',
      summary: 'Create a ledger (idempotent by name)',
      description: 'A ledger is a namespace: its accounts and transfers are reached under ' +
        '`/ledgers/{name}/…`, and the same ids may exist in two ledgers. The same name with ' +
        'the same metadata again answers 200 with `Idempotent-Replayed: true`; with other ' +
        'metadata, 409. A key restricted to some ledgers (`:ledgers=a|b`) may create only ' +
        'those (403 for any other, whether or not it exists).',
      tags: ['ledgers'],
      body: withExamples(CreateLedgerBody, LEDGER_REQUESTS),
      response: {
        [SUCCESS.ok]: json(LedgerJson, 'The ledger existed with the same fields (a replay)',
          { documented: LedgerRecord, examples: LEDGER_REPLAYED, headers: REPLAYED_HEADER }),
        [SUCCESS.created]: json(LedgerJson, 'Created',
          { documented: LedgerRecord, examples: LEDGER_CREATED }),
        ...problems(...WITH_BODY, ...AUTHENTICATED, 'LEDGER_EXISTS_WITH_DIFFERENT_FIELDS',
          ...WRITES) },
    },
  }, async (request, reply) => {
    const { name } = request.body;
    if (!reaches(request, name)) {
      return sendProblem(reply, problem('FORBIDDEN',
        `key "${request.caller}" may create only the ledgers it names`));
    }
    const metadata = ledgerMetadata(request.body.metadata);
    if (!metadata.ok) return sendProblem(reply, metadata.problem);
    const outcome = await app.ledgers.create(name, metadata.value);
    if (outcome.kind === 'conflict') {
      return sendProblem(reply, problem('LEDGER_EXISTS_WITH_DIFFERENT_FIELDS',
        `ledger "${name}" exists with different ${outcome.fields.join(', ')}`));
    }
    if (outcome.kind === 'replayed') reply.header('idempotent-replayed', 'true');
    return reply.code(outcome.kind === 'created' ? SUCCESS.created : SUCCESS.ok)
      .send(ledgerView(outcome.record));
  });

  app.get('/ledgers', {
    config: { scope: 'read' },
    schema: {
      operationId: 'listLedgers',
      summary: 'List ledgers, in name order',
      description: 'The default ledger is always there. A key restricted to some ledgers ' +
        'sees only those. Pass `next` as `after` until it is null.',
      tags: ['ledgers'],
      querystring: LedgersQuery,
      response: { [SUCCESS.ok]: json(LedgersPageJson, 'A page of ledgers',
        { documented: LedgersPage, examples: LEDGERS_PAGE }),
        ...problems('VALIDATION_ERROR', ...AUTHENTICATED, 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const limit = Number(request.query.limit ?? limits.LEDGERS_PAGE_LIMIT_DEFAULT);
    if (limit > limits.LEDGERS_PAGE_LIMIT_MAX) {
      return sendProblem(reply, problem('VALIDATION_ERROR',
        `querystring/limit must be at most ${limits.LEDGERS_PAGE_LIMIT_MAX}`));
    }
    const page = await app.ledgers.list(request.query.after, limit, request.ledgers);
    return { ledgers: page.ledgers.map(ledgerView), next: page.next };
  });

  app.get('/ledgers/:ledger', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getLedger',
      summary: 'Read a ledger',
      description: 'The default ledger always exists. A ledger that does not exist and one ' +
        'the API key does not reach answer the same 404.',
      tags: ['ledgers'],
      params: LedgerParams,
      querystring: NoQuery,
      response: { [SUCCESS.ok]: json(LedgerJson, 'The ledger',
        { documented: LedgerRecord, examples: LEDGER_READ }),
        ...problems('VALIDATION_ERROR', ...IN_LEDGER, 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const name = request.params.ledger;
    const record = reaches(request, name) ? await app.ledgers.describe(name) : undefined;
    if (record === undefined) return ledgerNotFound(reply, name);
    return ledgerView(record);
  });
};

export default ledgers;
