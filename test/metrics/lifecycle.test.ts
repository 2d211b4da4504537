/**
 * The Redis poller's timer (never overlapping, unref'd, started at ready, stopped at close, down
 * Redis tolerated), what closing an app undoes, two apps side by side, and the logs: JSON with
 * request ids, the transfer id in a transfer's context, no secrets and no metadata.
 */
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, test, vi } from 'vitest';
import { buildApp } from '../../src/app.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { parseInfo } from '../../src/redis/readiness.js';
import {
  createPoller, pollRedis, recordPersistence, slowestSeconds,
} from '../../src/metrics/redis-poller.js';
import { createLedgerMetrics } from '../../src/metrics/ledger-metrics.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { createRedis } from '../../src/redis/client.js';
import { bearer, SECRETS, TEST_KEYS } from '../helpers/auth.js';
import { authenticateInjects, uniqueLedgerName } from '../helpers/ledger.js';
import { valueOf } from './exposition.js';
import { type MetricsFixture, metricsFixture, post, scrape } from './helpers.js';

const open: MetricsFixture[] = [];
async function app(options: Parameters<typeof metricsFixture>[0] = {}) {
  const f = await metricsFixture(options);
  open.push(f);
  return f;
}
afterEach(async () => {
  for (const f of open.splice(0)) await f.close();
  vi.restoreAllMocks();
});

const gauge = async (m: ReturnType<typeof createRegistry>, name: string) =>
  (await m.registry.getSingleMetric(name)?.get())?.values[0]?.value;

describe('poller', () => {
  test('never two polls at once; refresh shares the one in flight; stop waits for it', async () => {
    let running = 0;
    let maxRunning = 0;
    let polls = 0;
    const poller = createPoller(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      polls++;
      await sleep(20); // longer than the interval: a naive setInterval would overlap
      running--;
    }, 1);
    poller.start();
    await Promise.all([poller.refresh(), poller.refresh(), poller.refresh()]);
    await sleep(100);
    await poller.stop();
    expect(maxRunning).toBe(1);
    expect(polls).toBeGreaterThanOrEqual(3);
    const after = polls;
    await sleep(50);
    expect(polls).toBe(after);
    expect(running).toBe(0);
  });

  test('its timer does not keep the process alive; a failing poll does not stop it', async () => {
    const POLL_MS = 7;
    const timers: NodeJS.Timeout[] = [];
    const real = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
      const timer = real(fn, ms);
      if (ms === POLL_MS) timers.push(timer); // not the test's own waits
      return timer;
    }) as typeof setTimeout);
    let polls = 0;
    const poller = createPoller(async () => {
      polls++;
      throw new Error('Redis said no');
    }, POLL_MS);
    poller.start();
    await vi.waitFor(() => expect(polls).toBeGreaterThanOrEqual(3), { timeout: 2000 });
    await poller.stop();
    expect(timers.length).toBeGreaterThan(0);
    expect(timers.every((t) => !t.hasRef())).toBe(true);
  });

  test('with Redis down it sets redis_up and ready to 0 and sends nothing', async () => {
    const m = createRegistry({ defaultMetrics: false });
    m.redisUp.set(1);
    m.ready.set(1);
    const info = vi.fn();
    const down = { status: 'reconnecting', info } as unknown as Redis;
    const readiness = vi.fn();
    await pollRedis(down, m, readiness, { delayedFsync: undefined });
    expect(await gauge(m, 'ledger_redis_up')).toBe(0);
    expect(await gauge(m, 'ledger_ready')).toBe(0);
    expect(info).not.toHaveBeenCalled();
    expect(readiness).not.toHaveBeenCalled();
  });

  test('INFO failing: redis_up 0, the last persistence values kept', async () => {
    const m = createRegistry({ defaultMetrics: false });
    m.aofLastWriteOk.set(1);
    const info = () => Promise.reject(new Error('Command timed out'));
    const failing = { status: 'ready', info } as unknown as Redis;
    const notReady = async () => ({ ready: false, checks: {}, advisory: {} });
    await pollRedis(failing, m, notReady, { delayedFsync: undefined });
    expect(await gauge(m, 'ledger_redis_up')).toBe(0);
    expect(await gauge(m, 'ledger_redis_aof_last_write_ok')).toBe(1);
  });

  test('delayed fsyncs: a baseline, then increases; a Redis restart counts from zero', async () => {
    const m = createRegistry({ defaultMetrics: false });
    const state = { delayedFsync: undefined as number | undefined };
    const info = (delayed: number, writeStatus = 'ok') => parseInfo([`aof_enabled:1`,
      `aof_last_write_status:${writeStatus}`, 'aof_rewrite_in_progress:0', 'used_memory:1000',
      `aof_delayed_fsync:${delayed}`].join('\r\n'));
    for (const [delayed, expected] of [[7, 0], [9, 2], [9, 2], [3, 5]] as const) {
      recordPersistence(m, info(delayed), state);
      const total = await gauge(m, 'ledger_redis_aof_delayed_fsync_total');
      expect(total, `after ${delayed}`).toBe(expected);
    }
    recordPersistence(m, info(3, 'err'), state);
    expect(await gauge(m, 'ledger_redis_aof_last_write_ok')).toBe(0);
  });

  test('slowest recent slow-log entry, in seconds; a malformed reply is refused', () => {
    expect(slowestSeconds([])).toBe(0);
    const entries = [[1, 1700000000, 12_500, ['EVALSHA']], [2, 1700000001, 80, ['GET']]];
    expect(slowestSeconds(entries)).toBe(0.0125);
    expect(() => slowestSeconds('nope')).toThrow(/not a list/);
    expect(() => slowestSeconds([[1, 2]])).toThrow(/no duration/);
  });
});

describe('app lifecycle', () => {
  test('polls from ready until close; close undoes the wiring', async () => {
    const f = await app({ metrics: { pollIntervalMs: 10 } });
    const sendCommand = Object.getPrototypeOf(f.redis).sendCommand;
    expect(f.redis.sendCommand).not.toBe(sendCommand); // counting command errors
    const info = vi.spyOn(f.redis, 'info');
    await vi.waitFor(() => expect(info.mock.calls.length).toBeGreaterThanOrEqual(4),
      { timeout: 3000 });
    const listeners = f.redis.listenerCount('ready');
    await f.app.close();
    const calls = info.mock.calls.length;
    await sleep(60);
    expect(info.mock.calls.length).toBe(calls);
    expect(f.redis.sendCommand).toBe(sendCommand);
    expect(f.redis.listenerCount('ready')).toBe(listeners - 1);
  });

  test('the ledger reports to the metrics it was built with, and nothing is swapped', async () => {
    const f = await app();
    const observer = f.ledger.observer;
    expect(observer).toBeDefined();
    await post(f.app, '/accounts', { id: 'x', currency: 'USD' });
    await post(f.app, '/accounts', { id: 'x', currency: 'USD' });
    await post(f.app, '/accounts', { id: 'x', currency: 'EUR' });
    const { samples } = await scrape(f.app);
    expect(valueOf(samples, 'ledger_script_duration_seconds_count',
      { script: 'create-account', outcome: 'ok' })).toBe(1);
    for (const [outcome, count] of [['created', 1], ['replayed', 1], ['conflict', 1],
      ['unknown', 0]] as const) {
      expect(valueOf(samples, 'ledger_account_creations_total', { outcome }), outcome)
        .toBe(count);
    }
    await f.app.close();
    expect(f.ledger.observer).toBe(observer);
  });

  test('an app refuses a ledger built without its metrics\' observer', async () => {
    const redis = createRedis(inject('redisUrl'));
    redis.on('error', () => {});
    await redis.connect();
    try {
      const metrics = createLedgerMetrics({ defaultMetrics: false });
      const told = vi.fn();
      const ledger = new Ledger({ redis, keys: ledgerKeys('test', uniqueLedgerName()),
        observer: { scriptCompleted: told } });
      await expect(buildApp({ ledger, redis, metrics,
        auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 1_000_000 } }))
        .rejects.toThrow(/observer/);
      // Without metrics, the app is built and the ledger's own observer is told.
      const built = await buildApp({ ledger, redis, metrics: false,
        auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 1_000_000 } });
      authenticateInjects(built);
      await built.ready();
      await post(built, '/accounts', { id: 'x', currency: 'USD' });
      expect(told).toHaveBeenCalledWith('create-account', 'ok', expect.any(Number));
      await built.close();
    } finally {
      redis.disconnect();
    }
  });

  test('two apps in one process keep separate registries', async () => {
    const a = await app();
    const b = await app();
    await post(a.app, '/accounts', { id: 'x', currency: 'USD' });
    const count = async (f: MetricsFixture) => valueOf((await scrape(f.app)).samples,
      'ledger_script_duration_seconds_count', { script: 'create-account', outcome: 'ok' });
    expect(await count(a)).toBe(1);
    expect(await count(b)).toBeUndefined();
  });

  test('metrics off: no /metrics route, no observer, transfers still work', async () => {
    const f = await app({ metrics: false });
    expect((await f.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    expect(f.ledger.observer).toBeUndefined();
    await post(f.app, '/accounts', { id: 'c', currency: 'USD', overdraftLimit: 'unlimited' });
    await post(f.app, '/accounts', { id: 'd', currency: 'USD' });
    const res = await post(f.app, '/transfers', { id: 't', from: 'c', to: 'd', amount: '1' });
    expect(res.statusCode).toBe(201);
  });
});

describe('logs', () => {
  test('JSON, request ids, the transfer id in context; no Authorization, no metadata', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const f = await app({ logger: { level: 'info', stream } });
    // A valid key (the requests must pass) and an unknown one (refused): neither is logged.
    const auth = { authorization: bearer(SECRETS.test) };
    const unknown = await post(f.app, '/accounts', { id: 'u', currency: 'USD' },
      { authorization: 'Bearer sekret-token-123' });
    expect(unknown.statusCode).toBe(401);
    await post(f.app, '/accounts', { id: 'c', currency: 'USD', overdraftLimit: 'unlimited' }, auth);
    await post(f.app, '/accounts', { id: 'd', currency: 'USD' }, auth);
    const res = await post(f.app, '/transfers', { id: 'pay-77', from: 'c', to: 'd', amount: '5',
      metadata: { note: 'meta-value-xyz' } }, auth);
    expect(res.statusCode).toBe(201);
    f.app.log.info({ headers: auth }, 'someone logs headers');
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const requests = records.filter((r) => r.reqId !== undefined);
    expect(requests.filter((r) => r.msg === 'request completed').length).toBe(4);
    for (const r of requests) expect(r.reqId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    const completed = records.find((r) =>
      r.msg === 'request completed' && r.transferId !== undefined);
    expect(completed).toMatchObject({ transferId: 'pay-77', res: { statusCode: 201 },
      req: { method: 'POST', url: '/transfers' }, responseTime: expect.any(Number) });
    const all = lines.join('\n');
    expect(all).not.toContain('sekret-token-123');
    expect(all).not.toContain(SECRETS.test);
    expect(all).not.toContain('meta-value-xyz');
    expect(records.find((r) => r.msg === 'someone logs headers')).toMatchObject(
      { headers: { authorization: '[redacted]' } });
  });
});
