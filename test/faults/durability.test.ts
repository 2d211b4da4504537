/**
 * Durability mechanics on Redis servers of this file's own: torn-tail repair at start,
 * readiness judging persistence settings, BUSY as an unknown outcome, and recovery after Redis
 * returns. (The bank workload under faults is bank.test.ts.)
 */
import {
  mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { AOF_DIR_NAME, newestIncrFile } from '../../src/redis/aof-repair.js';
import { redisOptions } from '../../src/redis/client.js';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { type Fixture, fixture, json } from '../helpers/ledger.js';
import { metric } from '../ops/helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => { for (const c of cleanups.reverse()) await c(); });

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-durability-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `errorstat_<prefix>` from INFO errorstats: error replies Redis sent, by prefix. */
async function errorCount(redis: Redis, prefix: string): Promise<number> {
  const stat = /count=(\d+)/.exec((await redis.info('errorstats')).split('\n')
    .find((line) => line.startsWith(`errorstat_${prefix}:`)) ?? '');
  return Number(stat?.[1] ?? 0);
}

async function redisIn(dir: string, port?: number): Promise<EmbeddedRedis> {
  const r = await startEmbeddedRedis({ dataDir: dir, port });
  cleanups.push(() => r.stop());
  return r;
}

async function seeded(url: string, ledgerName?: string): Promise<Fixture> {
  const f = await fixture({ url, ledgerName });
  cleanups.push(() => f.close());
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0'], ['bob', '0']]) {
    await f.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: od } });
  }
  return f;
}

const transfer = (f: Fixture, id: string, from: string, to: string, amount: string) =>
  f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id, from, to, amount } });

async function conserved(f: Fixture): Promise<bigint[]> {
  const balances = [];
  for (const id of ['cash', 'alice', 'bob']) {
    balances.push(BigInt((await f.ledger.getAccount(id))?.balance ?? 'x'));
  }
  expect(balances.reduce((a, b) => a + b, 0n)).toBe(0n);
  for (const [i, id] of ['alice', 'bob'].entries()) {
    const page = await f.ledger.listEntries(id, 1000);
    if (page === 'badCursor') throw new Error('no cursor was given');
    const sum = (page?.entries ?? []).reduce((a, e) => a + BigInt(e.amount), 0n);
    expect(sum, `entries of ${id} add up to its balance`).toBe(balances[i + 1]);
  }
  return balances;
}

/** Cuts the newest incremental AOF a few bytes into its last MULTI block: a torn script. */
function tearInsideLastMulti(dir: string): void {
  const file = join(dir, AOF_DIR_NAME, newestIncrFile(dir) as string);
  const bytes = readFileSync(file);
  const multi = bytes.lastIndexOf('*1\r\n$5\r\nMULTI\r\n');
  expect(multi).toBeGreaterThan(0);
  truncateSync(file, multi + 40);
}

test('a torn AOF tail inside a transfer is cut back, never loaded as half a transfer', async () => {
  const dir = tempDir();
  let redis = await startEmbeddedRedis({ dataDir: dir });
  const name = `torn-${Date.now()}`;
  let f = await seeded(redis.url, name);
  expect((await transfer(f, 't1', 'cash', 'alice', '100')).statusCode).toBe(201);
  expect((await transfer(f, 't2', 'alice', 'bob', '30')).statusCode).toBe(201);
  await f.close();
  for (let round = 0; round < 2; round++) {
    await redis.kill();
    tearInsideLastMulti(dir);
    redis = await startEmbeddedRedis({ dataDir: dir, port: redis.port });
    expect(redis.repairs.join('\n')).toMatch(/shrink the AOF .* from \d+ bytes/);
    expect(redis.repairs.join('\n')).toMatch(/original AOF files kept in .*aof-backup-/);
    f = await fixture({ url: redis.url, ledgerName: name });
    const [, alice] = await conserved(f);
    // The torn transfer is either wholly absent or wholly there; here its tail was cut.
    expect(await f.ledger.getTransfer(round === 0 ? 't2' : 't3')).toBeUndefined();
    expect(alice).toBe(100n);
    // Writes in between, then the next crash tears the newest one again.
    expect((await transfer(f, 't3', 'alice', 'bob', '40')).statusCode).toBe(201);
    await f.close();
  }
  await redis.stop();
  expect(readdirSync(dir).filter((d) => d.startsWith('aof-backup-'))).toHaveLength(2);
});

test('damage that is not a torn tail is refused, not cut', async () => {
  const dir = tempDir();
  const redis = await startEmbeddedRedis({ dataDir: dir });
  const f = await seeded(redis.url);
  for (let i = 0; i < 20; i++) {
    expect((await transfer(f, `m${i}`, 'cash', 'alice', '1')).statusCode).toBe(201);
  }
  await f.close();
  await redis.kill();
  const file = join(dir, AOF_DIR_NAME, newestIncrFile(dir) as string);
  const bytes = readFileSync(file);
  // Break the framing of a command early in the file, with valid commands after it.
  const at = bytes.indexOf('\r\n*', 200) + 2;
  expect(at).toBeGreaterThan(2);
  bytes.write('X', at);
  writeFileSync(file, bytes);
  await expect(startEmbeddedRedis({ dataDir: dir, port: redis.port }))
    .rejects.toThrow(/damaged other than in the tail|not cutting it automatically/);
  expect(readFileSync(file).equals(bytes)).toBe(true); // untouched
});

test('a zero-filled tail (extended by the file system, never written) is cut too', async () => {
  const dir = tempDir();
  let redis = await startEmbeddedRedis({ dataDir: dir });
  const name = `zero-${Date.now()}`;
  let f = await seeded(redis.url, name);
  expect((await transfer(f, 'z1', 'cash', 'alice', '9')).statusCode).toBe(201);
  await f.close();
  await redis.kill();
  const file = join(dir, AOF_DIR_NAME, newestIncrFile(dir) as string);
  writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.alloc(4096)]));
  redis = await startEmbeddedRedis({ dataDir: dir, port: redis.port });
  cleanups.push(() => redis.stop());
  expect(redis.repairs.length).toBeGreaterThan(0);
  f = await fixture({ url: redis.url, ledgerName: name });
  cleanups.push(() => f.close());
  expect(await f.ledger.getTransfer('z1')).toMatchObject({ status: 'committed' });
  await conserved(f);
});

test('readiness names each persistence setting that can lose acknowledged transfers', async () => {
  const redis = await redisIn(tempDir());
  const f = await seeded(redis.url);
  const ready = async (persistence?: { appendfsync: 'always' | 'everysec';
    check: 'strict' | 'off' }) => {
    const g = persistence ? await fixture({ url: redis.url, persistence }) : f;
    const res = await g.app.inject({ method: 'GET', url: '/readyz' });
    if (g !== f) await g.close();
    return { status: res.statusCode, body: res.json() as { detail?: string } };
  };
  expect((await ready()).status).toBe(200);
  await f.redis.config('SET', 'appendfsync', 'everysec');
  expect((await ready()).body.detail)
    .toMatch(/appendfsync is everysec; LEDGER_APPENDFSYNC=always requires always/);
  expect((await ready({ appendfsync: 'everysec', check: 'strict' })).status).toBe(200);
  await f.redis.config('SET', 'aof-load-truncated', 'yes');
  await f.redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
  const detail = (await ready({ appendfsync: 'everysec', check: 'strict' })).body.detail;
  expect(detail).toMatch(/aof-load-truncated is yes/);
  expect(detail).toMatch(/maxmemory-policy is allkeys-lru/);
  await f.redis.config('SET', 'appendonly', 'no');
  expect((await ready({ appendfsync: 'everysec', check: 'strict' })).body.detail)
    .toMatch(/appendonly is off/);
  expect((await ready({ appendfsync: 'always', check: 'off' })).status).toBe(200);
});

test('BUSY is an unknown outcome (503), and the service is ready again once Redis is', async () => {
  const redis = await redisIn(tempDir());
  const f = await seeded(redis.url);
  const admin = f.redis.duplicate();
  await admin.connect();
  await admin.config('SET', 'busy-reply-threshold', '100');
  const blocker = f.redis.duplicate({ commandTimeout: 10_000 });
  await blocker.connect();
  const connection = await f.redis.client('ID');
  const busyReplies = await errorCount(admin, 'BUSY');
  const busy = blocker.eval('#!lua flags=no-writes\nwhile true do end', 0).catch((e: Error) => e);
  await sleep(300);
  const res = await transfer(f, 'b1', 'cash', 'alice', '1');
  expect(res.statusCode).toBe(503);
  expect(res.json().code).toBe('UNAVAILABLE');
  await admin.script('KILL');
  expect(String(await busy)).toMatch(/killed/);
  // Answered at once, not after the command timeout: Redis replied BUSY to the transfer, and
  // the service kept its connection (a timeout would have reset it: a new client id).
  expect(await errorCount(admin, 'BUSY'), 'Redis answered BUSY').toBeGreaterThan(busyReplies);
  expect(await f.redis.client('ID'), 'the same connection').toBe(connection);
  expect((await transfer(f, 'b1', 'cash', 'alice', '1')).statusCode).toBe(201);
  admin.disconnect();
  blocker.disconnect();
});

/**
 * Liveness, not speed: the service reconnects within REDIS_RECONNECT_DELAY_MAX_MS of Redis
 * returning (the retry strategy below says so, deterministically); ten times that only fails
 * if it never comes back, however slow the machine.
 */
const READY_AGAIN_LIVENESS_MS = 10 * limits.REDIS_RECONNECT_DELAY_MAX_MS;

test('Redis down: 503 at once; back: ready again without a restart', async () => {
  const dir = tempDir();
  let redis = await startEmbeddedRedis({ dataDir: dir });
  const f = await seeded(redis.url);
  const errors = (kind: string) =>
    metric(f.app, 'ledger_redis_command_errors_total', { kind });
  const [timeouts, refused] = [await errors('timeout'), await errors('connection')];
  await redis.kill();
  const down = await transfer(f, 'd1', 'cash', 'alice', '1');
  expect([down.statusCode, down.json().code]).toEqual([503, 'UNAVAILABLE']);
  // At once: refused for want of a connection (no offline queue), not left to time out.
  expect(await errors('connection'), 'refused: no connection').toBeGreaterThan(refused);
  expect(await errors('timeout'), 'no command timed out').toBe(timeouts);
  // Reconnection is attempted for ever, never more than REDIS_RECONNECT_DELAY_MAX_MS apart.
  const retry = redisOptions().retryStrategy as (attempt: number) => number | null;
  for (const attempt of [1, 2, 10, 100, 10_000]) {
    expect(retry(attempt), `reconnect attempt ${attempt}`).toBeLessThanOrEqual(
      limits.REDIS_RECONNECT_DELAY_MAX_MS);
    expect(retry(attempt), `reconnect attempt ${attempt}`).toBeGreaterThan(0);
  }
  redis = await startEmbeddedRedis({ dataDir: dir, port: redis.port });
  cleanups.push(() => redis.stop());
  const deadline = Date.now() + READY_AGAIN_LIVENESS_MS;
  while ((await f.app.inject({ method: 'GET', url: '/readyz' })).statusCode !== 200) {
    expect(Date.now(), 'ready again (a liveness bound)').toBeLessThan(deadline);
    await sleep(50);
  }
  expect((await transfer(f, 'd1', 'cash', 'alice', '1')).statusCode).toBe(201);
});
