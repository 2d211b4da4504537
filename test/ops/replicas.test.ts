/**
 * Read replicas (REDIS_REPLICA_URLS) on a real primary + replica pair (`--replicaof`): GETs are
 * served by the replica once it has the data, `Ledger-Read-From: primary` reads the primary,
 * writes never reach the replica, a stopped or hung replica falls back to the primary while
 * /readyz stays 200 and says so, and a write against a primary that became a replica (READONLY,
 * as after a failover) is 503 UNAVAILABLE, not a 500. Which node served a read is read from
 * Redis itself (INFO commandstats), not only from our own metrics.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { limits } from '../../src/config/limits.js';
import { freePort } from '../../src/redis/embedded.js';
import { ServiceProcess } from '../faults/bank/system.js';
import { API_KEYS_ENV } from '../helpers/auth.js';
import {
  admin, call, calls, caughtUp, errorCount, metric, type OpsApp, opsApp, REPLICATION_ARGS,
  startRedis, startReplica, type TestRedis, until,
} from './helpers.js';

let primary: TestRedis;
let replica: TestRedis;
let p: Redis;
let r: Redis;
let o: OpsApp;

const PRIMARY = { 'ledger-read-from': 'primary' };
/** Scripts run on a node: our reads and writes are all EVALSHA, or EVAL after NOSCRIPT. */
const scriptCalls = async (redis: Redis) =>
  (await calls(redis, 'evalsha')) + (await calls(redis, 'eval'));
/**
 * The replica has applied every write so far. Not WAIT: it waits only for the writes of the
 * connection that sends it, and the service's writes come on another.
 */
const replicated = () => caughtUp(p, r);

beforeAll(async () => {
  primary = await startRedis({ extraArgs: REPLICATION_ARGS });
  replica = await startReplica(primary);
  p = await admin(primary.url);
  r = await admin(replica.url);
  await until('the replica to sync', async () =>
    /master_link_status:up/.test(await r.info('replication')));
  o = await opsApp(primary.url, { replicaUrls: [replica.url] });
  for (const [id, overdraftLimit] of [['cash', 'unlimited'], ['alice', '0']]) {
    expect((await call(o.base, 'POST', '/accounts', { id, currency: 'USD', overdraftLimit }))
      .status).toBe(201);
  }
});
afterAll(async () => {
  await o?.close();
  p?.disconnect();
  r?.disconnect();
  await replica?.dispose();
  await primary?.dispose();
});

test('a read through the replica returns what the primary wrote, once replicated', async () => {
  expect((await call(o.base, 'POST', '/transfers',
    { id: 't1', from: 'cash', to: 'alice', amount: '5' })).status).toBe(201);
  await replicated();
  await r.config('RESETSTAT');
  const viaReplica = await metric(o.app, 'ledger_reads_total', { route: 'replica' });
  const account = await call(o.base, 'GET', '/accounts/alice');
  const transfer = await call(o.base, 'GET', '/transfers/t1');
  const entries = await call(o.base, 'GET', '/accounts/alice/entries');
  expect(JSON.parse(account.text)).toMatchObject({ id: 'alice', balance: '5' });
  expect(JSON.parse(transfer.text)).toMatchObject({ id: 't1', status: 'committed' });
  expect(JSON.parse(entries.text).entries).toHaveLength(1);
  expect(await scriptCalls(r), 'the replica ran the three reads').toBe(3);
  expect(await metric(o.app, 'ledger_reads_total', { route: 'replica' })).toBe(viaReplica + 3);
  const ready = await o.app.inject({ method: 'GET', url: '/readyz' });
  expect(ready.json()).toMatchObject({ status: 'ready', advisory: { replica1: 'ok' } });
});

test('Ledger-Read-From: primary reads the primary; another value is a 400', async () => {
  await replicated();
  await Promise.all([p.config('RESETSTAT'), r.config('RESETSTAT')]);
  const account = await call(o.base, 'GET', '/accounts/alice', undefined, PRIMARY);
  const entries = await call(o.base, 'GET', '/accounts/alice/entries', undefined, PRIMARY);
  const transfer = await call(o.base, 'GET', '/transfers/t1', undefined, PRIMARY);
  expect([account.status, entries.status, transfer.status]).toEqual([200, 200, 200]);
  expect(await scriptCalls(r)).toBe(0);
  expect(await scriptCalls(p)).toBe(3);
  const bad = await call(o.base, 'GET', '/accounts/alice', undefined,
    { 'ledger-read-from': 'replica-please' });
  expect([bad.status, bad.code]).toEqual([400, 'VALIDATION_ERROR']);
});

test('writes never go to the replica', async () => {
  await replicated();
  await r.config('RESETSTAT');
  expect((await call(o.base, 'POST', '/accounts', { id: 'bob', currency: 'USD' })).status)
    .toBe(201);
  for (let i = 0; i < 5; i++) {
    expect((await call(o.base, 'POST', '/transfers',
      { id: `w${i}`, from: 'cash', to: 'bob', amount: '1' })).status).toBe(201);
  }
  await replicated();
  expect(await scriptCalls(r), 'no script ran on the replica').toBe(0);
  // It did get the writes, through replication: a script's effects, as MULTI … EXEC (each
  // transfer: one journal XADD and its HSETs; the account: its hash, the ledger's, the id map).
  expect(await calls(r, 'xadd')).toBe(5);
  expect(await calls(r, 'exec')).toBe(6);
});

test('a stopped replica: reads fall back to the primary, /readyz says so and stays 200',
  async () => {
    await replicated();
    const [replicaConnection] = o.replicas;
    await replica.stop();
    await until('the service to see the replica gone', async () =>
      replicaConnection?.status !== 'ready');
    const down = await metric(o.app, 'ledger_reads_total', { route: 'fallback_down' });
    const account = await call(o.base, 'GET', '/accounts/bob');
    expect([account.status, JSON.parse(account.text).balance]).toEqual([200, '5']);
    expect(await metric(o.app, 'ledger_reads_total', { route: 'fallback_down' })).toBe(down + 1);
    const ready = await o.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().advisory.replica1).toMatch(/connection .*reads go to the primary/);

    await replica.restart();
    await until('the service to reconnect to the replica', async () =>
      replicaConnection?.status === 'ready' &&
      /master_link_status:up/.test(await r.info('replication')));
    await replicated();
    const served = await metric(o.app, 'ledger_reads_total', { route: 'replica' });
    expect((await call(o.base, 'GET', '/accounts/bob')).status).toBe(200);
    expect(await metric(o.app, 'ledger_reads_total', { route: 'replica' })).toBe(served + 1);
  });

test('a hung replica (SIGSTOP): the read times out there and the primary answers it',
  async () => {
    await replicated();
    const failed = await metric(o.app, 'ledger_reads_total', { route: 'fallback_error' });
    process.kill(replica.server.child.pid as number, 'SIGSTOP');
    try {
      // One command timeout on the replica, then the primary: a 200, so within the HTTP
      // request timeout (past it the answer would be 503), and from the primary after an error.
      const account = await call(o.base, 'GET', '/accounts/bob');
      expect([account.status, JSON.parse(account.text).balance]).toEqual([200, '5']);
      expect(await metric(o.app, 'ledger_reads_total', { route: 'fallback_error' }))
        .toBe(failed + 1);
    } finally {
      process.kill(replica.server.child.pid as number, 'SIGCONT');
    }
  });

test('the service process reads through REDIS_REPLICA_URLS, writes to REDIS_URL', async () => {
  const service = ServiceProcess.spawn(await freePort(), { REDIS_URL: primary.url,
    REDIS_REPLICA_URLS: ` ${replica.url} , `, LEDGER_API_KEYS: API_KEYS_ENV,
    LEDGER_NAME: `proc-${Date.now()}` });
  try {
    await service.waitReady();
    const ready = JSON.parse((await call(service.base, 'GET', '/readyz')).text);
    expect(ready.advisory).toEqual({ busyReplyThreshold: 'ok', replica1: 'ok' });
    expect((await call(service.base, 'POST', '/accounts', { id: 'p1', currency: 'USD' })).status)
      .toBe(201);
    await replicated();
    await Promise.all([p.config('RESETSTAT'), r.config('RESETSTAT')]);
    expect((await call(service.base, 'GET', '/accounts/p1')).status).toBe(200);
    expect([await scriptCalls(r), await scriptCalls(p)]).toEqual([1, 0]);
  } finally {
    await service.kill();
  }
}, 60_000);

test('REDIS_REPLICA_URLS: redis(s):// URLs, comma-separated, and only with REDIS_URL', () => {
  const base = { REDIS_URL: 'redis://p:6380' };
  expect(loadConfig({ ...base, REDIS_REPLICA_URLS: 'redis://a:1, rediss://b:2,' }).replicaUrls)
    .toEqual(['redis://a:1', 'rediss://b:2']);
  expect(loadConfig(base).replicaUrls).toEqual([]);
  expect(() => loadConfig({ ...base, REDIS_REPLICA_URLS: 'http://a:1' }))
    .toThrow(/REDIS_REPLICA_URLS must be/);
  expect(() => loadConfig({ REDIS_REPLICA_URLS: 'redis://a:1', LEDGER_AUTH: 'off' }))
    .toThrow(/REDIS_REPLICA_URLS needs REDIS_URL/);
});

test('a write against a primary turned into a replica (READONLY) is 503 UNAVAILABLE',
  async () => {
    const other = await startRedis();
    try {
      const reconnects = await metric(o.app, 'ledger_redis_reconnects_total');
      await p.call('REPLICAOF', '127.0.0.1', String(other.port));
      const write = await call(o.base, 'POST', '/transfers',
        { id: 'after-failover', from: 'cash', to: 'bob', amount: '1' });
      expect([write.status, write.code]).toEqual([503, 'UNAVAILABLE']);
      expect(await errorCount(p, 'READONLY'), 'Redis refused the write').toBeGreaterThan(0);
      expect(write.retryAfter).toBe(String(limits.RETRY_AFTER_SECONDS));
      // ioredis drops the connection on READONLY (client.ts), to find the new primary.
      await until('a reconnection', async () =>
        (await metric(o.app, 'ledger_redis_reconnects_total')) > reconnects);
      // The node is a primary again: the service writes to it without a restart.
      await p.call('REPLICAOF', 'NO', 'ONE');
      await until('writes to be accepted again', async () => (await call(o.base, 'POST',
        '/accounts', { id: 'after', currency: 'USD' })).status === 201);
    } finally {
      await p.call('REPLICAOF', 'NO', 'ONE').catch(() => {});
      await other.dispose();
    }
  });
