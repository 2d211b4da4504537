import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import type { Ledger } from '../ledger/ledger.js';
import { HoldSweeper } from '../ledger/sweeper.js';
import { RedisLock } from '../redis/lock.js';
import type { PersistencePolicy } from '../redis/readiness.js';

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger;
    redis: Redis;
    persistence: PersistencePolicy;
  }
}

export interface LedgerPluginOptions {
  ledger: Ledger;
  redis: Redis;
  persistence: PersistencePolicy;
  /** Release expired holds while the app runs (src/ledger/sweeper.ts). */
  sweepHolds: boolean;
}

/**
 * Shares the ledger and its connection; their lifecycle belongs to server.ts (or the test).
 * With `sweepHolds`, the hold sweeper runs from ready to close: every instance runs one, and
 * the lock lets one of them sweep at a time.
 */
export default fp<LedgerPluginOptions>(async (app: FastifyInstance, options) => {
  app.decorate('ledger', options.ledger);
  app.decorate('redis', options.redis);
  app.decorate('persistence', options.persistence);
  if (!options.sweepHolds) return;
  const lock = new RedisLock(options.redis, options.ledger.script('lock'),
    options.ledger.keys.lock('sweeper'), limits.HOLDS_SWEEP_LOCK_TTL_MS);
  const sweeper = new HoldSweeper({ ledger: options.ledger, lock,
    onError: (err) => app.log.warn({ err }, 'hold sweep failed; the next one tries again') });
  app.addHook('onReady', async () => sweeper.start());
  app.addHook('onClose', async () => sweeper.stop());
}, { name: 'ledger' });
