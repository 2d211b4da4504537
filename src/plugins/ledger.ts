import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import type { Ledger } from '../ledger/ledger.js';
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
}

/** Shares the ledger and its connection; their lifecycle belongs to server.ts (or the test). */
export default fp<LedgerPluginOptions>(async (app: FastifyInstance, options) => {
  app.decorate('ledger', options.ledger);
  app.decorate('redis', options.redis);
  app.decorate('persistence', options.persistence);
}, { name: 'ledger' });
