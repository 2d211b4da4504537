/**
 * What the README's runbook for a stuck script claims, checked on a real redis-server with AOF
 * (appendfsync always):
 * - a stuck script that has written cannot be killed (UNKILLABLE); SHUTDOWN NOSAVE stops Redis;
 * - the AOF it leaves holds none of the stuck script's writes (Redis writes a script's effects
 *   when the script ends), loads without any repair, and still holds every acknowledged
 *   transfer; a transfer refused meanwhile (503) commits exactly once when retried;
 * - while it runs, Redis refuses even INFO and SLOWLOG (BUSY); once a slow script has ended,
 *   the slow log has it and ledger_redis_slowlog_slowest_seconds shows its duration.
 */
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  admin, call, metric, type OpsApp, opsApp, startRedis, type TestRedis, until,
} from './helpers.js';

const TEST_BUSY_THRESHOLD_MS = 100;
/** Long enough to outlast the test's steps; SHUTDOWN NOSAVE ends it long before. */
const STUCK_MS = 20_000;
const ACKNOWLEDGED = 20;
const STUCK_KEY = 'written-by-the-stuck-script';
/** A slow script that ends by itself, for the slow log. */
const SLOW_MS = 300;

/** Writes a key, then spins (bounded by ARGV[1] ms of Redis's clock). */
const STUCK_SCRIPT = `
redis.call('SET', KEYS[1], 'half of something')
local function now() local t = redis.call('TIME'); return t[1] * 1000 + t[2] / 1000 end
local stop = now() + tonumber(ARGV[1])
while now() < stop do end
return 'done'`;

let redis: TestRedis;
let o: OpsApp;

beforeAll(async () => {
  redis = await startRedis({ busyReplyThresholdMs: TEST_BUSY_THRESHOLD_MS });
  o = await opsApp(redis.url, { metrics: false });
  for (const [id, overdraftLimit] of [['cash', 'unlimited'], ['alice', '0']]) {
    expect((await call(o.base, 'POST', '/accounts', { id, currency: 'USD', overdraftLimit }))
      .status).toBe(201);
  }
});
afterAll(async () => {
  await o?.close();
  await redis?.dispose();
});

const transfer = (id: string) => ({ id, from: 'cash', to: 'alice', amount: '1' });

function aofText(dir: string): string {
  const aofDir = join(dir, readdirSync(dir).find((f) => f.endsWith('appendonlydir')) as string);
  return readdirSync(aofDir).map((f) => readFileSync(join(aofDir, f), 'latin1')).join('');
}

test('UNKILLABLE after a write; SHUTDOWN NOSAVE leaves an AOF without the stuck script',
  async () => {
    for (let i = 0; i < ACKNOWLEDGED; i++) {
      expect((await call(o.base, 'POST', '/transfers', transfer(`ack-${i}`))).status).toBe(201);
    }
    const runner = await admin(redis.url);
    const operator: Redis = await admin(redis.url);
    const stuck = runner.eval(STUCK_SCRIPT, 1, STUCK_KEY, String(STUCK_MS))
      .then(() => 'finished', (e: Error) => e.message);
    await until('Redis to answer BUSY', async () =>
      /^BUSY/.test(String(await operator.ping().catch((e: Error) => e.message))));

    // What an operator can and cannot see meanwhile.
    for (const probe of [() => operator.info('server'), () => operator.slowlog('GET', 1)]) {
      expect(String(await probe().catch((e: Error) => e.message))).toMatch(/^BUSY/);
    }
    const during = await call(o.base, 'POST', '/transfers', transfer('during-stuck'));
    expect([during.status, during.code]).toEqual([503, 'UNAVAILABLE']);
    expect(String(await operator.script('KILL').catch((e: Error) => e.message)))
      .toMatch(/^UNKILLABLE/);

    const exited = once(redis.server.child, 'exit');
    await operator.call('SHUTDOWN', 'NOSAVE').catch(() => {}); // the connection just closes
    await exited;
    expect(await stuck, 'the stuck script never finished').not.toBe('finished');
    runner.disconnect();
    operator.disconnect();
    expect(aofText(redis.dir)).not.toContain(STUCK_KEY);

    await redis.restart();
    expect(redis.server.repairs, 'the AOF loaded as it was').toEqual([]);
    const a = await admin(redis.url);
    try {
      expect(await a.exists(STUCK_KEY)).toBe(0);
      await until('the service to reconnect', async () =>
        (await call(o.base, 'GET', '/accounts/alice')).status === 200);
      const balance = JSON.parse((await call(o.base, 'GET', '/accounts/alice')).text).balance;
      expect(balance, 'every acknowledged transfer survived').toBe(String(ACKNOWLEDGED));
      const retry = await call(o.base, 'POST', '/transfers', transfer('during-stuck'));
      expect([retry.status, retry.replayed]).toEqual([201, false]);
      expect(JSON.parse((await call(o.base, 'GET', '/accounts/alice')).text).balance)
        .toBe(String(ACKNOWLEDGED + 1));
    } finally {
      a.disconnect();
    }
  }, 60_000);

test('once a slow script has ended, the slow-log gauge shows how long it blocked Redis',
  async () => {
    const watcher = await opsApp(redis.url); // metrics on: the poller reads SLOWLOG
    const a = await admin(redis.url);
    try {
      await a.eval(STUCK_SCRIPT, 1, 'slow-but-bounded', String(SLOW_MS));
      await watcher.app.metrics.refresh();
      const slowest = await metric(watcher.app, 'ledger_redis_slowlog_slowest_seconds');
      expect(slowest).toBeGreaterThanOrEqual(SLOW_MS / 1000);
      const [entry] = (await a.slowlog('GET', 1)) as Array<[number, number, number, string[]]>;
      expect(entry?.[3]?.[0]).toBe('eval');
    } finally {
      a.disconnect();
      await watcher.close();
    }
  });
