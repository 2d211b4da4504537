/**
 * Metrics for one app: its own prom-client registry, the ledger's script observer, the HTTP
 * histogram (one onResponse hook), Redis connection events, and the Redis poller, which starts
 * when the app is ready and stops when it closes. `GET /metrics` is src/routes/metrics.ts.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Registry } from 'prom-client';
import { checkReadiness } from '../ledger/readiness.js';
import { METRICS_POLL_INTERVAL_MS } from '../metrics/constants.js';
import type { LedgerObserver } from '../ledger/ledger.js';
import {
  httpRecorder, readRecorder, scriptRecorder, type TransferRecorder, transferRecorder,
} from '../metrics/recorders.js';
import { watchRedisConnection } from '../metrics/redis-connection.js';
import { createPoller, pollRedis, type PollState } from '../metrics/redis-poller.js';
import { createRegistry } from '../metrics/registry.js';

export interface MetricsOptions {
  /** Redis INFO/SLOWLOG/readiness polling; default METRICS_POLL_INTERVAL_MS. */
  pollIntervalMs?: number;
  /** prom-client's process metrics (event loop, heap, GC); default true. */
  defaultMetrics?: boolean;
}

export interface AppMetrics extends TransferRecorder {
  /** Undefined when metrics are off (`buildApp({ metrics: false })`). */
  readonly registry: Registry | undefined;
  /** Polls Redis now (shared with a poll in flight): tests and fresh scrapes. */
  refresh(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: AppMetrics;
  }
}

/** Metrics off: routes still call the recorder, which costs a function call and nothing else. */
export const metricsOff: AppMetrics = {
  registry: undefined,
  refresh: async () => {},
  transferDecided: () => {},
  transferFailed: (error) => {
    throw error;
  },
};

export default fp<MetricsOptions & { enabled?: boolean }>(async (app: FastifyInstance, options) => {
  if (options.enabled === false) {
    app.decorate('metrics', metricsOff);
    return;
  }
  const m = createRegistry({ defaultMetrics: options.defaultMetrics ?? true });

  const previousObserver = app.ledger.getObserver();
  const recordScript = scriptRecorder(m.scriptDuration,
    (err) => app.log.error({ err }, 'metrics: recording a script call failed'));
  const recordRead = readRecorder(m.reads);
  // An observer the ledger was built with keeps being told, after ours.
  const observer: LedgerObserver = previousObserver === undefined
    ? { ...recordScript, ...recordRead } : {
      scriptCompleted(script: string, outcome: string, seconds: number) {
        recordScript.scriptCompleted(script, outcome, seconds);
        previousObserver.scriptCompleted(script, outcome, seconds);
      },
      readRouted(route) {
        recordRead.readRouted(route);
        previousObserver.readRouted?.(route);
      },
    };
  app.ledger.setObserver(observer);

  const http = httpRecorder(m.httpDuration);
  app.addHook('onResponse', (request, reply, done) => {
    const seconds = reply.elapsedTime / 1000;
    http.record(request.method, request.routeOptions.url, reply.statusCode, seconds);
    done();
  });

  const unwatch = watchRedisConnection(app.redis, m);
  const state: PollState = { delayedFsync: undefined };
  const readiness = () => checkReadiness(app.redis, app.ledger, app.persistence);
  const poller = createPoller(() => pollRedis(app.redis, m, readiness, state),
    options.pollIntervalMs ?? METRICS_POLL_INTERVAL_MS);
  app.addHook('onReady', async () => poller.start());
  app.addHook('onClose', async () => {
    await poller.stop();
    unwatch();
    if (app.ledger.getObserver() === observer) app.ledger.setObserver(previousObserver);
  });

  const recorder = transferRecorder(m.transfers);
  app.decorate('metrics', { registry: m.registry, refresh: poller.refresh, ...recorder });
}, { name: 'metrics', dependencies: ['ledger'] });
