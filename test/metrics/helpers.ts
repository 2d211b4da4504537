/**
 * Fixtures for the metrics tests: an app with chosen app options (metrics, logger) on its own
 * Redis connection and ledger name, on the run's real redis-server.
 */
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import type { App } from '../../src/app.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { METRICS_POLL_INTERVAL_MS } from '../../src/metrics/constants.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { createRedis } from '../../src/redis/client.js';
import {
  authenticateInjects, ledgerApp, type LedgerAppOptions, uniqueLedgerName,
} from '../helpers/ledger.js';
import { parseExposition, type Sample } from './exposition.js';

export interface MetricsFixture {
  redis: Redis;
  ledger: Ledger;
  app: App;
  close(): Promise<void>;
}

/** App options for a fixture; `auth` defaults to the test keys (rate limit out of the way). */
export type MetricsFixtureOptions = Omit<LedgerAppOptions, 'redis' | 'keys'>;

/**
 * Authentication is on: `app.inject` sends the all-scopes test key unless a request sets its own
 * `authorization` header (an empty one sends none), as in test/helpers/ledger.ts.
 */
export async function metricsFixture(
  options: MetricsFixtureOptions = {},
  url: string = inject('redisUrl'),
): Promise<MetricsFixture> {
  const redis = createRedis(url);
  redis.on('error', () => {});
  await redis.connect();
  // Metrics as in production (process metrics, the usual poll) unless the test says otherwise.
  const metrics = options.metrics === false ? false : { defaultMetrics: true,
    pollIntervalMs: METRICS_POLL_INTERVAL_MS, ...options.metrics };
  const { ledger, app } = await ledgerApp({ ...options, metrics, redis,
    keys: ledgerKeys('test', uniqueLedgerName()) });
  authenticateInjects(app);
  await app.ready();
  return {
    redis, ledger, app,
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}

export const JSON_HEADERS = { 'content-type': 'application/json' };

export function post(app: App, url: string, body: unknown, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url, headers: { ...JSON_HEADERS, ...headers },
    payload: JSON.stringify(body) });
}

/** GET /metrics through the app, checked to be Prometheus text, parsed. */
export async function scrape(app: App): Promise<{ text: string; samples: Sample[] }> {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`);
  if (!String(res.headers['content-type']).startsWith('text/plain; version=0.0.4')) {
    throw new Error(`GET /metrics content-type ${res.headers['content-type']}`);
  }
  return { text: res.body, samples: parseExposition(res.body) };
}
