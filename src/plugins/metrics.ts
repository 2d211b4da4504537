/**
 * The app's side of the metrics (src/metrics/ledger-metrics.ts, created with the ledger): the
 * HTTP histogram (one onResponse hook), Redis connection events, and the Redis poller, which
 * starts when the app is ready and stops when it closes. `GET /metrics` is src/routes/metrics.ts.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Registry } from 'prom-client';
import type { LedgerMetrics } from '../metrics/ledger-metrics.js';
import { httpRecorder } from '../metrics/recorders.js';
import { watchRedisConnection } from '../metrics/redis-connection.js';
import {
  createPoller, pollHolds, pollRedis, type PollState,
} from '../metrics/redis-poller.js';
import { checkReadiness } from '../redis/readiness.js';

export interface AppMetrics {
  /** Undefined when metrics are off (`buildApp({ metrics: false })`). */
  readonly registry: Registry | undefined;
  /** Polls Redis now (shared with a poll in flight): tests and fresh scrapes. */
  refresh(): Promise<void>;
  /** The text `GET /metrics` serves (with LEDGER_WORKERS > 1, the whole service's). */
  exposition(): Promise<string>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics;
  }
}

export const metricsOff: AppMetrics = { registry: undefined, refresh: async () => {},
  exposition: async () => { throw new Error('metrics are off'); } };

export default fp<{ metrics: LedgerMetrics | false }>(async (app: FastifyInstance, options) => {
  const metrics = options.metrics;
  if (metrics === false) {
    app.decorate('metrics', metricsOff);
    return;
  }
  if (app.ledger.observer !== metrics.observer) {
    // A programmer error: the ledger's outcomes would never reach this app's registry.
    throw new Error('metrics: build the Ledger with these metrics\' observer');
  }
  const m = metrics.series;
  const http = httpRecorder(m.httpDuration);
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    http.record(request.method, request.routeOptions.url, reply.statusCode, seconds);
    done();
  });

  const unwatch = watchRedisConnection(app.redis, m);
  m.replicaAcksRequired.set(app.ledger.acks?.required ?? 0);
  const state: PollState = { delayedFsync: undefined };
  const readiness = () => checkReadiness(app.redis, app.ledger, app.persistence);
  const poller = createPoller(async () => {
    await pollRedis(app.redis, m, readiness, state);
    // Holds' gauges keep their last values while Redis is unreachable.
    if (app.redis.status === 'ready') {
      await pollHolds(app.ledgers, m, app.ledger.clock()).catch(() => {});
    }
  }, metrics.pollIntervalMs);
  app.addHook('onReady', async () => poller.start());
  app.addHook('onClose', async () => {
    await poller.stop();
    unwatch();
  });

  app.decorate('metrics', { registry: m.registry, refresh: poller.refresh,
    exposition: metrics.exposition });
}, { name: 'metrics', dependencies: ['ledger'] });
