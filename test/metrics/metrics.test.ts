/**
 * GET /metrics after real traffic over the real Redis: every transfer outcome counted once, a
 * script-latency observation per script call, HTTP by route pattern, Redis gauges from a poll,
 * and the connection going down and back; who may scrape (the `metrics` scope). Then the metrics
 * table of docs/operations.md against the registry.
 */
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Metric } from 'prom-client';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { AMOUNT_MAX_STRING } from '../../src/config/limits.js';
import { createClusterRegistry } from '../../src/metrics/cluster.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { bearer, SECRETS } from '../helpers/auth.js';
import { type Sample, typesOf, valueOf } from './exposition.js';
import { type MetricsFixture, metricsFixture, post, scrape } from './helpers.js';

let f: MetricsFixture;
let samples: Sample[];
let text: string;

/** [id, from, to, amount, HTTP status]: one transfer per outcome, in order. */
const TRANSFERS: Array<[string, string, string, string, number]> = [
  ['t-ok', 'cash', 'alice', '100', 201], // committed
  ['t-ok', 'cash', 'alice', '100', 201], // replayed
  ['t-ok', 'cash', 'alice', '101', 409], // conflict
  ['t-nsf', 'alice', 'bob', '1000', 422], // INSUFFICIENT_FUNDS
  ['t-nf', 'alice', 'nobody', '1', 422], // ACCOUNT_NOT_FOUND
  ['t-nf', 'alice', 'nobody', '1', 422], // replayed (a rejection)
  ['t-cur', 'alice', 'euro', '1', 422], // CURRENCY_MISMATCH
  ['t-ovf', 'cash', 'alice', AMOUNT_MAX_STRING, 422], // BALANCE_OVERFLOW
];

beforeAll(async () => {
  f = await metricsFixture();
  for (const [id, currency, overdraftLimit] of [['cash', 'USD', 'unlimited'], ['alice', 'USD', '0'],
    ['bob', 'USD', '0'], ['euro', 'EUR', '0']]) {
    expect((await post(f.app, '/accounts', { id, currency, overdraftLimit })).statusCode).toBe(201);
  }
  for (const [id, from, to, amount, status] of TRANSFERS) {
    const res = await post(f.app, '/transfers', { id, from, to, amount });
    expect(res.statusCode, `${id}: ${res.body}`).toBe(status);
  }
  expect((await f.app.inject({ method: 'GET', url: '/transfers/t-ok' })).statusCode).toBe(200);
  expect((await f.app.inject({ method: 'GET', url: '/no/such/route' })).statusCode).toBe(404);
  ({ text, samples } = await scrape(f.app));
});
afterAll(async () => { await f?.close(); });

const REASONS = ['INSUFFICIENT_FUNDS', 'ACCOUNT_NOT_FOUND', 'CURRENCY_MISMATCH',
  'BALANCE_OVERFLOW'];
const transfers = (outcome: string, reason?: string) =>
  valueOf(samples, 'ledger_transfers_total', reason ? { outcome, reason } : { outcome });
const scriptCount = (script: string, outcome: string) =>
  valueOf(samples, 'ledger_script_duration_seconds_count', { script, outcome });

describe('after transfers of each outcome', () => {
  test('ledger_transfers_total counts each outcome once, rejections by reason', () => {
    expect(transfers('committed')).toBe(1);
    expect(transfers('replayed')).toBe(2);
    expect(transfers('conflict')).toBe(1);
    for (const reason of REASONS) expect(transfers('rejected', reason), reason).toBe(1);
    // Not happened yet, but present at 0, so rate() and the dashboard see them from the start.
    for (const outcome of ['unknown', 'persistence_failed', 'error']) {
      expect(transfers(outcome), outcome).toBe(0);
    }
  });

  test('the script histogram has an observation per script call, by status', () => {
    expect(scriptCount('create-account', 'ok')).toBe(4);
    expect(scriptCount('transfer', 'ok')).toBe(1);
    expect(scriptCount('transfer', 'exists')).toBe(3); // two replays and the conflict
    for (const reason of REASONS) {
      expect(scriptCount('transfer', reason.toLowerCase()), reason).toBe(1);
    }
    const series = samples.filter((s) => s.name === 'ledger_script_duration_seconds_count');
    // The app records its default ledger once when ready (create-ledger, ok).
    expect(scriptCount('create-ledger', 'ok')).toBe(1);
    const writes = series.filter((s) => !s.labels.script?.startsWith('read-'));
    expect(writes).toHaveLength(8);
    // Reads (GET /transfers/:id) are scripts too; they return data, not a status: `ok`.
    const reads = series.filter((s) => s.labels.script?.startsWith('read-'));
    expect(reads.map((s) => s.labels.outcome)).toEqual(reads.map(() => 'ok'));
    for (const { labels, value } of series) {
      const bucket = (le: string) =>
        valueOf(samples, 'ledger_script_duration_seconds_bucket', { ...labels, le });
      const inf = bucket('+Inf');
      expect(inf, JSON.stringify(labels)).toBe(value);
      // Resolves tens of microseconds: the smallest bucket is 25 µs.
      expect(bucket('0.000025')).toBeDefined();
      const sum = valueOf(samples, 'ledger_script_duration_seconds_sum', labels) as number;
      expect(sum).toBeGreaterThan(0);
      expect(sum / value).toBeLessThan(0.5);
    }
  });

  test('HTTP duration is labelled by route pattern and status class, never by the raw URL', () => {
    const http = (method: string, route: string, statusClass: string) => valueOf(samples,
      'ledger_http_request_duration_seconds_count', { method, route, status_class: statusClass });
    expect(http('POST', '/accounts', '2xx')).toBe(4);
    expect(http('POST', '/transfers', '2xx')).toBe(2);
    // Business rejections (422) are a class of their own, not counted among the 4xx errors.
    expect(http('POST', '/transfers', '422')).toBe(5);
    expect(http('POST', '/transfers', '4xx')).toBe(1);
    expect(http('GET', '/transfers/:id', '2xx')).toBe(1);
    expect(http('GET', 'unmatched', '4xx')).toBe(1);
    const labelValues = samples.flatMap((s) => Object.values(s.labels));
    expect(labelValues.filter((v) => /t-ok|no\/such|alice/.test(v))).toEqual([]);
  });

  test('default process metrics are there (event loop, heap, GC)', () => {
    const types = typesOf(text);
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds', 'process_cpu_seconds_total']) {
      expect(types.has(name), name).toBe(true);
    }
  });
});

describe('Redis', () => {
  test('a poll reads readiness, persistence, slow log and memory', async () => {
    await f.app.metrics.refresh();
    const { samples: now } = await scrape(f.app);
    expect(valueOf(now, 'ledger_ready')).toBe(1);
    expect(valueOf(now, 'ledger_redis_up')).toBe(1);
    expect(valueOf(now, 'ledger_redis_aof_enabled')).toBe(1);
    expect(valueOf(now, 'ledger_redis_aof_last_write_ok')).toBe(1);
    expect(valueOf(now, 'ledger_redis_aof_rewrite_in_progress')).toBe(0);
    expect(valueOf(now, 'ledger_redis_aof_delayed_fsync_total')).toBe(0);
    expect(valueOf(now, 'ledger_redis_used_memory_bytes')).toBeGreaterThan(100_000);
    const slowlog = Number(await f.redis.slowlog('LEN'));
    expect(valueOf(now, 'ledger_redis_slowlog_length')).toBe(slowlog);
    expect(valueOf(now, 'ledger_redis_slowlog_slowest_seconds')).toBeGreaterThanOrEqual(0);
  });

  test('down: redis_up 0 at once, a transfer is an unknown outcome, not ready', async () => {
    const ended = once(f.redis, 'end');
    f.redis.disconnect();
    await ended;
    let now = (await scrape(f.app)).samples;
    expect(valueOf(now, 'ledger_redis_up')).toBe(0);
    const body = { id: 't-unknown', from: 'cash', to: 'alice', amount: '1' };
    const res = await post(f.app, '/transfers', body);
    expect(res.statusCode).toBe(503);
    await f.app.metrics.refresh();
    now = (await scrape(f.app)).samples;
    expect(valueOf(now, 'ledger_transfers_total', { outcome: 'unknown' })).toBe(1);
    expect(valueOf(now, 'ledger_script_duration_seconds_count',
      { script: 'transfer', outcome: 'unavailable' })).toBe(1);
    const errors = valueOf(now, 'ledger_redis_command_errors_total', { kind: 'connection' });
    expect(errors).toBeGreaterThanOrEqual(1);
    expect(valueOf(now, 'ledger_ready')).toBe(0);
    expect(valueOf(now, 'ledger_redis_up')).toBe(0);
  });

  test('back: a reconnection is counted and the gauges recover', async () => {
    await f.redis.connect();
    if (f.redis.status !== 'ready') await once(f.redis, 'ready');
    f.redis.disconnect(true); // drop the connection and let ioredis reconnect by itself
    await once(f.redis, 'ready');
    await f.app.metrics.refresh();
    const { samples: now } = await scrape(f.app);
    expect(valueOf(now, 'ledger_redis_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect(valueOf(now, 'ledger_redis_up')).toBe(1);
    expect(valueOf(now, 'ledger_ready')).toBe(1);
  });
});

describe('failures the ledger counts', () => {
  test('MISCONF is persistence_failed, a bug is error; both still answer as before', async () => {
    const misconf = Object.assign(new Error('MISCONF Errors writing to the AOF file'),
      { name: 'ReplyError' });
    // Redis's reply, as the ledger's script call sees it: the ledger counts what it was told.
    const spy = vi.spyOn(f.redis, 'evalsha')
      .mockRejectedValueOnce(misconf)
      .mockRejectedValueOnce(new Error('a bug'));
    try {
      const body = { id: 't-f', from: 'cash', to: 'alice', amount: '1' };
      expect((await post(f.app, '/transfers', body)).json().code).toBe('PERSISTENCE_FAILED');
      expect((await post(f.app, '/transfers', body)).json().code).toBe('INTERNAL');
    } finally {
      spy.mockRestore();
    }
    const { samples: now } = await scrape(f.app);
    expect(valueOf(now, 'ledger_transfers_total', { outcome: 'persistence_failed' })).toBe(1);
    expect(valueOf(now, 'ledger_transfers_total', { outcome: 'error' })).toBe(1);
  });
});

describe('who may scrape', () => {
  test('GET /metrics: no key 401, a read key 403 (problem+json), a metrics key 200', async () => {
    const own = await metricsFixture();
    try {
      const get = (authorization: string) =>
        own.app.inject({ method: 'GET', url: '/metrics', headers: { authorization } });
      const none = await get(''); // sends no Authorization at all
      expect(none.statusCode).toBe(401);
      expect(none.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(none.json()).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
      expect(none.body).not.toContain('ledger_');
      const reader = await get(bearer(SECRETS.reader));
      expect(reader.statusCode).toBe(403);
      expect(reader.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(reader.json()).toMatchObject({ status: 403, code: 'FORBIDDEN' });
      expect(reader.json().detail).toContain('"metrics"');
      expect(reader.body).not.toContain('ledger_');
      const metrics = await get(bearer(SECRETS.metrics));
      expect(metrics.statusCode).toBe(200);
      expect(String(metrics.headers['content-type'])).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(metrics.body).toContain('# TYPE ledger_transfers_total counter');
    } finally {
      await own.close();
    }
  });
});

describe('docs/operations.md, Metrics', () => {
  const readme = readFileSync(fileURLToPath(new URL('../../docs/operations.md', import.meta.url)),
    'utf8');

  test('lists every metric of the service with its type and labels, and no other', async () => {
    // The app's, and the primary's own when LEDGER_WORKERS > 1.
    const registries = [createRegistry({ defaultMetrics: false }).registry,
      createClusterRegistry().registry];
    const rows = new Set(readme.split('\n').filter((line) => line.startsWith('| `ledger_')));
    const expected: string[] = [];
    const metrics = registries.flatMap((r) => r.getMetricsAsArray() as unknown as Metric[]);
    for (const metric of metrics) {
      const { name, type } = await metric.get();
      const labels = (metric as unknown as { labelNames: string[] }).labelNames;
      const labelText = labels.length === 0 ? '—' : labels.map((l) => `\`${l}\``).join(', ');
      const prefix = `| \`${name}\` | ${type} | ${labelText} |`;
      expected.push(prefix);
      expect([...rows].some((row) => row.startsWith(prefix)), prefix).toBe(true);
    }
    expect(rows.size).toBe(expected.length);
  });
});
