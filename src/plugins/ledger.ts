import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { reaches } from '../auth/keys.js';
import { problem, sendProblem } from '../http/problem.js';
import { LedgerDirectory } from '../ledger/directory.js';
import type { Ledger } from '../ledger/ledger.js';
import { JournalWatch } from '../ledger/journal-watch.js';
import { LedgersSweeper } from '../ledger/sweeper.js';
import { type ArchiveObserver, Archiver, type ArchiveYield } from '../archive/archiver.js';
import type { ArchiveStore } from '../archive/store.js';
import type { CdcObserver } from '../cdc/amqp.js';
import { CdcPublisher } from '../cdc/publisher.js';
import type { PersistencePolicy } from '../redis/readiness.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The default ledger (LEDGER_NAME): health, metrics and the unprefixed routes. */
    ledger: Ledger;
    /** Every ledger: `/ledgers/{ledger}/…` and `/ledgers`. */
    ledgers: LedgerDirectory;
    redis: Redis;
    persistence: PersistencePolicy;
    /** Long polls of the journal (GET /journal?wait=). */
    journalWatch: JournalWatch;
    /** The change-data publisher, when LEDGER_CDC_AMQP_URL is set. */
    cdc?: CdcPublisher;
    /** The PostgreSQL archiver, when LEDGER_ARCHIVE_URL is set. */
    archiver?: Archiver;
  }
  interface FastifyRequest {
    /**
     * The ledger a route of a ledger acts on (the default one unprefixed), set by
     * `resolveLedger` before the handler; null on other routes.
     */
    ledger: Ledger;
  }
}

export interface LedgerPluginOptions {
  ledger: Ledger;
  redis: Redis;
  persistence: PersistencePolicy;
  /** Release expired holds while the app runs (src/ledger/sweeper.ts). */
  sweepHolds: boolean;
  /** Publish change data while the app runs (src/cdc/publisher.ts). */
  cdc?: { url: string; exchange: string; observer?: CdcObserver } | undefined;
  /** Archive decided records to PostgreSQL while the app runs (src/archive/archiver.ts). */
  archive?: { store: ArchiveStore; keepRecords?: number; observer?: ArchiveObserver;
    /** Archive on a timer (default); false: only when archiveOnce() is called (tests). */
    background?: boolean;
    /** Wait while the service is busy (src/archive/archiver.ts ArchiveYield). */
    yieldTo?: ArchiveYield;
    /**
     * Something else archives (the service: a thread of its own, src/archive/thread.ts),
     * started when the app is ready and stopped when it closes; `store` is then for reads.
     */
    runner?: { start(): void; stop(): Promise<void> } } | undefined;
}

/** The answer for a ledger that does not exist and for one the key does not reach: the same. */
export function ledgerNotFound(reply: FastifyReply, name: string) {
  return sendProblem(reply, problem('NO_SUCH_LEDGER', `no ledger "${name}"`));
}

/**
 * Shares the ledgers and the connection; their lifecycle belongs to server.ts (or the test).
 * With `sweepHolds`, the hold sweeper runs from ready to close, over every ledger: every
 * instance runs one, and a lock per ledger lets one of them sweep that ledger at a time.
 */
export default fp<LedgerPluginOptions>(async (app: FastifyInstance, options) => {
  const directory = new LedgerDirectory(options.ledger, options.redis);
  app.decorate('ledger', options.ledger);
  app.decorate('ledgers', directory);
  app.decorate('redis', options.redis);
  app.decorate('persistence', options.persistence);
  app.decorateRequest('ledger', null as unknown as Ledger);
  const watch = new JournalWatch((err) => app.log.debug({ err }, 'journal watch: read failed'));
  app.decorate('journalWatch', watch);
  // Long polls answer at once when the service closes, instead of holding the close for 30 s.
  app.addHook('preClose', async () => watch.close());
  // The default ledger's record, for GET /ledgers; describe() writes it later if Redis is down.
  app.addHook('onReady', async () => {
    await directory.recordDefault().catch((err: unknown) =>
      app.log.warn({ err }, 'could not record the default ledger yet; will try again'));
  });
  const cdc = options.cdc;
  if (cdc !== undefined) {
    const publisher = new CdcPublisher({ directory, url: cdc.url, exchange: cdc.exchange,
      ...(cdc.observer === undefined ? {} : { observer: cdc.observer }),
      onError: (err) => app.log.warn({ err },
        'change data: a page was not published; the next pass sends it again') });
    app.decorate('cdc', publisher);
    app.addHook('onReady', async () => publisher.start());
    app.addHook('onClose', async () => publisher.stop());
  }
  const archive = options.archive;
  const runner = archive?.runner;
  if (archive !== undefined && runner !== undefined) {
    app.addHook('onReady', async () => runner.start());
    app.addHook('onClose', async () => {
      await runner.stop();
      await archive.store.close();
    });
  } else if (archive !== undefined) {
    const archiver = new Archiver({ directory, store: archive.store,
      ...(archive.keepRecords === undefined ? {} : { keepRecords: archive.keepRecords }),
      ...(archive.observer === undefined ? {} : { observer: archive.observer }),
      ...(archive.yieldTo === undefined ? {} : { yieldTo: archive.yieldTo }),
      onError: (err) => app.log.warn({ err },
        'archive: a page was not copied; the next pass tries again') });
    app.decorate('archiver', archiver);
    if (archive.background !== false) app.addHook('onReady', async () => archiver.start());
    app.addHook('onClose', async () => {
      await archiver.stop();
      await archive.store.close();
    });
  }
  if (!options.sweepHolds) return;
  const sweeper = new LedgersSweeper(directory,
    (err) => app.log.warn({ err }, 'hold sweep failed; the next one tries again'));
  app.addHook('onReady', async () => sweeper.start());
  app.addHook('onClose', async () => sweeper.stop());
}, { name: 'ledger' });

/**
 * The onRequest hook of the routes of a ledger: `prefixed`, the ledger the path names, else the
 * default one. Runs after authentication; a key restricted to other ledgers gets the same 404
 * as for a ledger that does not exist, before anything else is looked at.
 */
export function resolveLedger(app: FastifyInstance, prefixed: boolean) {
  if (!prefixed) {
    const name = app.ledgers.defaultName;
    return (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      if (!reaches(request, name)) {
        void ledgerNotFound(reply, name);
        return;
      }
      request.ledger = app.ledger;
      done();
    };
  }
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const name = (request.params as { ledger?: string }).ledger ?? '';
    const ledger = reaches(request, name) ? await app.ledgers.find(name) : undefined;
    if (ledger === undefined) return ledgerNotFound(reply, name);
    request.ledger = ledger;
  };
}
