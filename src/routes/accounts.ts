import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { limits } from '../config/limits.js';
import { accountInput } from '../http/input.js';
import { problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import { SUCCESS } from '../http/outcomes.js';
import { AUTHENTICATED, described, problems, WITH_BODY, WRITES } from '../http/responses.js';
import {
  Account, CreateAccountBody, EntriesPage, EntriesQuery, IdParams, NoQuery,
} from '../http/schemas.js';

/**
 * Cursors are opaque to clients; inside, a versioned "from this seq on" (the seq of the next
 * page's newest entry). Entries are only ever added above an account's newest, so a page never
 * repeats or skips one however many transfers arrive meanwhile.
 */
export function encodeCursor(startSeq: string): string {
  return Buffer.from(`e2:${startSeq}`).toString('base64url');
}

export function decodeCursor(cursor: string): string | undefined {
  const match = /^e2:([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return match?.[1];
}

const accounts: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/accounts', {
    config: { scope: 'write' },
    schema: {
      summary: 'Create an account (idempotent when an id is given)',
      tags: ['accounts'],
      body: CreateAccountBody,
      response: {
        [SUCCESS.ok]: described(Account, 'The id existed with the same fields (replayed)'),
        [SUCCESS.created]: described(Account, 'Created'),
        ...problems(...WITH_BODY, ...AUTHENTICATED, 'ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS',
          ...WRITES) },
    },
  }, async (request, reply) => {
    const input = accountInput(request.body, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const outcome = await app.ledger.createAccount(input.value);
    if (outcome.kind === 'conflict') {
      return sendProblem(reply, problem('ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS',
        `account "${input.value.id}" exists with different ${outcome.fields.join(', ')}`));
    }
    if (outcome.kind === 'replayed') reply.header('idempotent-replayed', 'true');
    return reply.code(outcome.kind === 'created' ? SUCCESS.created : SUCCESS.ok)
      .send(outcome.account);
  });

  app.get('/accounts/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'Read an account and its balance',
      tags: ['accounts'],
      params: IdParams,
      querystring: NoQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: described(Account, 'The account'),
        ...problems('VALIDATION_ERROR', ...AUTHENTICATED, 'NO_SUCH_ACCOUNT', 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const account = await app.ledger.getAccount(request.params.id, readOptions(request));
    if (!account) {
      return sendProblem(reply, problem('NO_SUCH_ACCOUNT',
        `no account "${request.params.id}"`));
    }
    return account;
  });

  app.get('/accounts/:id/entries', {
    config: { scope: 'read' },
    schema: {
      summary: "An account's entries, newest first",
      tags: ['accounts'],
      params: IdParams,
      querystring: EntriesQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: described(EntriesPage, 'A page of entries, newest first'),
        ...problems('VALIDATION_ERROR', ...AUTHENTICATED, 'NO_SUCH_ACCOUNT', 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const { cursor } = request.query;
    const limit = Number(request.query.limit ?? limits.ENTRIES_PAGE_LIMIT_DEFAULT);
    if (limit > limits.ENTRIES_PAGE_LIMIT_MAX) {
      return sendProblem(reply, problem('VALIDATION_ERROR',
        `querystring/limit must be at most ${limits.ENTRIES_PAGE_LIMIT_MAX}`));
    }
    const startSeq = cursor === undefined ? undefined : decodeCursor(cursor);
    const badCursor = () => sendProblem(reply, problem('VALIDATION_ERROR',
      `cursor is not one this service issued for account "${request.params.id}"`));
    if (cursor !== undefined && startSeq === undefined) return badCursor();
    const page = await app.ledger.listEntries(request.params.id, limit, startSeq,
      readOptions(request));
    if (!page) {
      return sendProblem(reply, problem('NO_SUCH_ACCOUNT',
        `no account "${request.params.id}"`));
    }
    if (page === 'badCursor') return badCursor();
    return {
      entries: page.entries,
      nextCursor: page.nextSeq === null ? null : encodeCursor(page.nextSeq),
    };
  });
};

export default accounts;
