import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { limits } from '../config/limits.js';
import { accountInput } from '../http/input.js';
import { problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import { SUCCESS } from '../http/outcomes.js';
import { withExamples } from '../http/document.js';
import {
  ACCOUNT_CLOSED, ACCOUNT_CREATED, BALANCE_AT, ACCOUNT_READ, ACCOUNT_REPLAYED, ACCOUNT_REQUESTS,
  CLOSE_REQUESTS, ENTRIES_PAGE,
} from '../http/examples.js';
import {
  IN_LEDGER, json, problems, REPLAYED_HEADER, ref, WITH_BODY, WRITES,
} from '../http/responses.js';
import {
  Account, AccountJson, BalanceAt, BalanceQuery, CloseBody, CreateAccountBody, EntriesPage,
  EntriesQuery, IdParams,
  NoQuery,
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
      operationId: 'createAccount',
      summary: 'Create an account (idempotent when an id is given)',
      description: 'With an `id`, a retry of the same request answers 200 with the account as ' +
        'it is now and `Idempotent-Replayed: true`; the same id with another currency, ' +
        'overdraft limit or metadata is 409. Without an `id` every request creates an account.',
      tags: ['accounts'],
      body: withExamples(CreateAccountBody, ACCOUNT_REQUESTS),
      response: {
        [SUCCESS.ok]: json(AccountJson, 'The id existed with the same fields (a replay)',
          { documented: Account, examples: ACCOUNT_REPLAYED, headers: REPLAYED_HEADER }),
        [SUCCESS.created]: json(AccountJson, 'Created',
          { documented: Account, examples: ACCOUNT_CREATED }),
        ...problems(...WITH_BODY, ...IN_LEDGER, 'ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS',
          ...WRITES) },
    },
  }, async (request, reply) => {
    const input = accountInput(request.body, request.caller);
    if (!input.ok) return sendProblem(reply, input.problem);
    const outcome = await request.ledger.createAccount(input.value);
    if (outcome.kind === 'conflict') {
      return sendProblem(reply, problem('ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS',
        `account "${input.value.id}" exists with different ${outcome.fields.join(', ')}`));
    }
    if (outcome.kind === 'replayed') reply.header('idempotent-replayed', 'true');
    return reply.code(outcome.kind === 'created' ? SUCCESS.created : SUCCESS.ok)
      .send(outcome.account);
  });

  app.post('/accounts/:id/close', {
    config: { scope: 'write' },
    schema: {
      operationId: 'closeAccount',
      summary: 'Close an account: no new transfer, hold or reversal touches it',
      description: 'Sets `closedAt`. From then on a transfer, hold or reversal naming it is ' +
        'rejected `ACCOUNT_CLOSED` (422, recorded); holds already open on it can still be ' +
        'posted or voided. Closing it again answers 200 with the same account. There is no ' +
        'reopening.',
      tags: ['accounts'],
      params: IdParams,
      body: withExamples(CloseBody, CLOSE_REQUESTS),
      response: {
        [SUCCESS.ok]: json(AccountJson, 'Closed now, or already closed',
          { documented: Account, examples: ACCOUNT_CLOSED, headers: REPLAYED_HEADER }),
        ...problems(...WITH_BODY, ...IN_LEDGER, 'NO_SUCH_ACCOUNT', ...WRITES) },
    },
  }, async (request, reply) => {
    const outcome = await request.ledger.closeAccount(request.params.id);
    if (outcome.kind === 'notFound') {
      return sendProblem(reply, problem('NO_SUCH_ACCOUNT',
        `account "${request.params.id}" does not exist`));
    }
    if (outcome.replayed) reply.header('idempotent-replayed', 'true');
    return outcome.account;
  });

  app.get('/accounts/:id', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getAccount',
      summary: 'Read an account and its balance',
      description: 'The balance includes every transfer acknowledged before this request ' +
        '(with `Ledger-Read-From: primary`, or without read replicas).',
      tags: ['accounts'],
      params: IdParams,
      querystring: NoQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: json(AccountJson, 'The account',
        { documented: Account, examples: ACCOUNT_READ }),
        ...problems('VALIDATION_ERROR', ...IN_LEDGER, 'NO_SUCH_ACCOUNT', 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const account = await request.ledger.getAccount(request.params.id, readOptions(request));
    if (!account) {
      return sendProblem(reply, problem('NO_SUCH_ACCOUNT',
        `no account "${request.params.id}"`));
    }
    return account;
  });

  app.get('/accounts/:id/balance', {
    config: { scope: 'read' },
    schema: {
      operationId: 'getAccountBalanceAt',
      summary: "An account's balance at a point in the ledger's history",
      description: 'Its balance, debits and credits as they stood after the ledger\'s record ' +
        'at `seq`, or after the newest record committed at or before the time `at`; with ' +
        'neither, now. The answer names the seq it stands after. Records archived to ' +
        'PostgreSQL count as any other (LEDGER_ARCHIVE_URL).',
      tags: ['accounts'],
      params: IdParams,
      querystring: BalanceQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: json(ref(BalanceAt), 'The totals then',
        { examples: BALANCE_AT }),
      ...problems('VALIDATION_ERROR', ...IN_LEDGER, 'NO_SUCH_ACCOUNT', 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const { seq, at } = request.query;
    if (seq !== undefined && at !== undefined) {
      return sendProblem(reply, problem('VALIDATION_ERROR',
        'querystring must have seq or at, not both'));
    }
    const point = at !== undefined ? { atMs: Date.parse(at) }
      : { seq: seq ?? String(Number.MAX_SAFE_INTEGER) };
    const answer = await request.ledger.balanceAt(request.params.id, point,
      readOptions(request));
    if (!answer) {
      return sendProblem(reply, problem('NO_SUCH_ACCOUNT', `no account "${request.params.id}"`));
    }
    return answer;
  });

  app.get('/accounts/:id/entries', {
    config: { scope: 'read' },
    schema: {
      operationId: 'listAccountEntries',
      summary: "An account's entries, newest first",
      description: 'One entry per committed transfer that moved the account, with its balance ' +
        'right after. Pages never repeat or skip an entry, however many transfers arrive ' +
        'between them: pass `nextCursor` as `cursor` until it is null.',
      tags: ['accounts'],
      params: IdParams,
      querystring: EntriesQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: json(ref(EntriesPage), 'A page of entries, newest first',
        { examples: ENTRIES_PAGE }),
        ...problems('VALIDATION_ERROR', ...IN_LEDGER, 'NO_SUCH_ACCOUNT', 'UNAVAILABLE') },
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
    const page = await request.ledger.listEntries(request.params.id, limit, startSeq,
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
