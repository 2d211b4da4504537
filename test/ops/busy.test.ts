/**
 * BUSY: while a script runs past busy-reply-threshold, Redis answers every other command BUSY
 * (even PING). The service answers 503 UNAVAILABLE with Retry-After, counts the reply as
 * kind="busy", keeps its connection (a BUSY is a reply, not a broken link), and a retry with the
 * same id after the script ends commits exactly once. Also: an operator's SCRIPT KILL is an
 * unknown outcome too, and /readyz reports (never fails on) a threshold out of range.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { isUnavailableError } from '../../src/redis/errors.js';
import {
  admin, call, metric, type OpsApp, opsApp, startRedis, type TestRedis, until,
} from './helpers.js';

/** Short, so the test is quick: the threshold is a setting, its value is not under test. */
const TEST_BUSY_THRESHOLD_MS = 100;
/** How long the deliberately slow script runs: well past the threshold, then it ends. */
const SLOW_SCRIPT_MS = 1500;

/**
 * Spins for `ARGV[1]` ms of Redis's clock and returns: bounded, so the test cannot hang Redis.
 * With ARGV[2] = 'write' it writes KEYS[1] first (then SCRIPT KILL cannot stop it).
 */
const SLOW_SCRIPT = `
if ARGV[2] == 'write' then redis.call('SET', KEYS[1], 'written by the slow script') end
local function now() local t = redis.call('TIME'); return t[1] * 1000 + t[2] / 1000 end
local stop = now() + tonumber(ARGV[1])
while now() < stop do end
return 'done'`;

let redis: TestRedis;
let o: OpsApp;

beforeAll(async () => {
  redis = await startRedis({ busyReplyThresholdMs: TEST_BUSY_THRESHOLD_MS });
  o = await opsApp(redis.url);
  for (const [id, overdraftLimit] of [['cash', 'unlimited'], ['alice', '0']]) {
    expect((await call(o.base, 'POST', '/accounts', { id, currency: 'USD', overdraftLimit }))
      .status).toBe(201);
  }
});
afterAll(async () => {
  await o?.close();
  await redis?.dispose();
});

/** Starts the slow script on a connection of its own; resolves once Redis answers BUSY. */
async function slowScript(mode: 'read' | 'write' = 'read') {
  const runner = await admin(redis.url);
  const probe = await admin(redis.url);
  const done = runner.eval(SLOW_SCRIPT, 1, 'slow-script-key', String(SLOW_SCRIPT_MS), mode)
    .then((v) => v, (e: unknown) => e as Error);
  await until('Redis to answer BUSY', async () => {
    const reply = await probe.ping().catch((e: Error) => e.message);
    return String(reply).startsWith('BUSY');
  }, SLOW_SCRIPT_MS);
  return {
    probe,
    async finished() {
      const result = await done;
      runner.disconnect();
      probe.disconnect();
      return result;
    },
  };
}

describe('a script running past busy-reply-threshold', () => {
  test('a transfer meanwhile is 503 UNAVAILABLE; its retry commits exactly once', async () => {
    const transfer = { id: 'during-busy', from: 'cash', to: 'alice', amount: '7' };
    const reconnectsBefore = await metric(o.app, 'ledger_redis_reconnects_total');
    const timeouts = () => metric(o.app, 'ledger_redis_command_errors_total', { kind: 'timeout' });
    const timeoutsBefore = await timeouts();
    const slow = await slowScript();
    const during = await call(o.base, 'POST', '/transfers', transfer);
    const read = await call(o.base, 'GET', '/accounts/alice');
    expect(await slow.finished(), 'the slow script ran to its end').toBe('done');

    console.info(`during BUSY: transfer ${during.status} in ${during.end - during.start} ms, ` +
      `read ${read.status} in ${read.end - read.start} ms`);
    expect([during.status, during.code]).toEqual([503, 'UNAVAILABLE']);
    expect(during.retryAfter).toBe(String(limits.RETRY_AFTER_SECONDS));
    expect([read.status, read.code]).toEqual([503, 'UNAVAILABLE']);
    // Answered at once, not after the command timeout: both were BUSY replies, none timed out,
    // and the connection stayed (a timeout would have reset it).
    expect(await metric(o.app, 'ledger_redis_command_errors_total', { kind: 'busy' }))
      .toBeGreaterThanOrEqual(2);
    expect(await timeouts(), 'no command timed out').toBe(timeoutsBefore);
    expect(await metric(o.app, 'ledger_transfers_total', { outcome: 'unknown' })).toBe(1);
    expect(await metric(o.app, 'ledger_redis_reconnects_total')).toBe(reconnectsBefore);

    const retry = await call(o.base, 'POST', '/transfers', transfer);
    expect(retry.status).toBe(201);
    const again = await call(o.base, 'POST', '/transfers', transfer);
    expect([again.status, again.replayed]).toEqual([201, true]);
    const entries = JSON.parse((await call(o.base, 'GET', '/accounts/alice/entries')).text);
    expect(entries.entries.map((e: { transferId: string }) => e.transferId))
      .toEqual(['during-busy']);
    expect(JSON.parse((await call(o.base, 'GET', '/accounts/alice')).text).balance).toBe('7');
  });

  test('SCRIPT KILL stops a script that has not written: an unknown outcome (503), not a 500',
    async () => {
      const runner = await admin(redis.url);
      const killer = await admin(redis.url);
      try {
        const killed = runner.eval(SLOW_SCRIPT, 1, 'k', String(SLOW_SCRIPT_MS), 'read')
          .then(() => undefined, (e: unknown) => e as Error);
        await until('Redis to accept SCRIPT KILL', async () =>
          (await killer.script('KILL')) === 'OK', SLOW_SCRIPT_MS);
        const error = await killed;
        expect(error?.message).toMatch(/Script killed by user/);
        expect(isUnavailableError(error)).toBe(true);
      } finally {
        runner.disconnect();
        killer.disconnect();
      }
    });
});

describe('busy-reply-threshold', () => {
  test('the embedded Redis sets REDIS_BUSY_REPLY_THRESHOLD_MS, and so does compose', async () => {
    const own = await startRedis();
    const a = await admin(own.url);
    try {
      expect(await a.config('GET', 'busy-reply-threshold'))
        .toEqual(['busy-reply-threshold', String(limits.REDIS_BUSY_REPLY_THRESHOLD_MS)]);
    } finally {
      a.disconnect();
      await own.dispose();
    }
    const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url),
      'utf8')) as { services: { redis: { command: string[] } } };
    const args = compose.services.redis.command;
    expect(args[args.indexOf('--busy-reply-threshold') + 1])
      .toBe(String(limits.REDIS_BUSY_REPLY_THRESHOLD_MS));
  });

  test('/readyz reports a threshold below the budget or above the timeout, and stays 200',
    async () => {
      const a = await admin(redis.url);
      const readyz = async (ms: number) => {
        await a.config('SET', 'busy-reply-threshold', String(ms));
        const res = await o.app.inject({ method: 'GET', url: '/readyz' });
        expect(res.statusCode, `threshold ${ms}`).toBe(200);
        return (res.json() as { advisory: Record<string, string> }).advisory.busyReplyThreshold;
      };
      try {
        expect(await readyz(limits.SCRIPT_TIME_BUDGET_MS - 1)).toMatch(/below the scripts' budget/);
        expect(await readyz(5000)).toMatch(/not below the command timeout/);
        expect(await readyz(limits.REDIS_BUSY_REPLY_THRESHOLD_MS)).toBe('ok');
        expect(await readyz(TEST_BUSY_THRESHOLD_MS)).toBe('ok');
      } finally {
        await a.config('SET', 'busy-reply-threshold', String(TEST_BUSY_THRESHOLD_MS));
        a.disconnect();
      }
    });
});
