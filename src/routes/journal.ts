import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { limits } from '../config/limits.js';
import { JOURNAL_PAGE } from '../http/examples.js';
import { SUCCESS } from '../http/outcomes.js';
import { problem, sendProblem } from '../http/problem.js';
import { ReadFromHeaders, readOptions } from '../http/read-from.js';
import { IN_LEDGER, json, problems } from '../http/responses.js';
import { JournalPage, JournalPageJson, JournalQuery } from '../http/schemas.js';

/**
 * The journal as a feed (change data out): every committed record in seq order, paged by
 * `after`, with a long poll. Pages never skip or repeat a record: the journal only grows at its
 * end, and `next` is the last seq returned.
 */
const journal: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/journal', {
    config: { scope: 'read' },
    schema: {
      operationId: 'readJournal',
      summary: 'Committed records in seq order (change data), with a long poll',
      description: 'Every committed record of the ledger (transfers, holds, posts, voids, ' +
        'reversals; not rejections, which have no seq), oldest first, each as its POST ' +
        'answered it when it was committed. Pass `next` as `after` for the next page. With ' +
        '`wait`, a request that finds nothing after `after` waits up to that long for a ' +
        'record and answers as soon as one is committed (an empty page when none was). A ' +
        'hold\'s expiry writes no record: read the hold after its `expiresAt`.',
      tags: ['journal'],
      querystring: JournalQuery,
      headers: ReadFromHeaders,
      response: { [SUCCESS.ok]: json(JournalPageJson, 'A page of records, oldest first',
        { documented: JournalPage, examples: JOURNAL_PAGE }),
        ...problems('VALIDATION_ERROR', ...IN_LEDGER, 'UNAVAILABLE') },
    },
  }, async (request, reply) => {
    const after = request.query.after ?? '0';
    const limit = Number(request.query.limit ?? limits.JOURNAL_PAGE_LIMIT_DEFAULT);
    const waitMs = Number(request.query.wait ?? 0);
    if (limit > limits.JOURNAL_PAGE_LIMIT_MAX) {
      return sendProblem(reply, problem('VALIDATION_ERROR',
        `querystring/limit must be at most ${limits.JOURNAL_PAGE_LIMIT_MAX}`));
    }
    if (waitMs > limits.JOURNAL_WAIT_MS_MAX) {
      return sendProblem(reply, problem('VALIDATION_ERROR',
        `querystring/wait must be at most ${limits.JOURNAL_WAIT_MS_MAX}`));
    }
    const ledger = request.ledger;
    const options = readOptions(request);
    const deadline = Date.now() + waitMs;
    // The client going away ends the wait (the response's socket closes).
    const gone = new AbortController();
    reply.raw.once('close', () => gone.abort());
    for (;;) {
      const readAt = Date.now();
      const page = await ledger.readJournal(after, limit, options);
      const left = deadline - Date.now();
      if (page.records.length > 0 || left <= 0 || gone.signal.aborted
        || app.journalWatch.closed) {
        return { records: page.records, next: page.records.at(-1)?.seq ?? after };
      }
      await app.journalWatch.wait(ledger, after, left, gone.signal);
      // A replica that lags the primary the watch reads: not more than a read per interval.
      const since = Date.now() - readAt;
      if (since < limits.JOURNAL_POLL_INTERVAL_MS && !gone.signal.aborted) {
        await new Promise((resolve) => setTimeout(resolve,
          Math.min(limits.JOURNAL_POLL_INTERVAL_MS - since, Math.max(0, deadline - Date.now()))));
      }
    }
  });
};

export default journal;
