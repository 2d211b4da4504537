/**
 * Every HTTP status the API answers, one case each, in the order a request meets them, all
 * through real HTTP handling (inject) over the real Redis. Each asserts the problem body.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX, limits } from '../../src/config/limits.js';
import { dumpLedger, type Fixture, fixture, json, withoutRejection } from '../helpers/ledger.js';

let f: Fixture;
const post = (url: string, payload: unknown, headers: Record<string, string> = json) =>
  f.app.inject({ method: 'POST', url, headers,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
const get = (url: string) => f.app.inject({ method: 'GET', url });

function expectProblem(res: Awaited<ReturnType<typeof get>>, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({ status, code, title: expect.any(String), detail: expect.any(String),
    type: expect.stringMatching(/^urn:atomic-ledger:problem:/) });
  return body as { detail: string };
}

beforeAll(async () => {
  f = await fixture();
  expect((await post('/accounts',
    { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' })).statusCode).toBe(201);
  expect((await post('/accounts', { id: 'alice', currency: 'USD' })).statusCode).toBe(201);
  expect((await post('/accounts', { id: 'euro', currency: 'EUR' })).statusCode).toBe(201);
});
afterAll(async () => { await f.close(); });

describe('accounts', () => {
  test('201 created, with the account', async () => {
    const res = await post('/accounts', { id: 'bob', currency: 'USD', metadata: { team: 'x' } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({ id: 'bob', currency: 'USD', balance: '0', debits: '0',
      credits: '0', debitsPending: '0', creditsPending: '0', available: '0',
      overdraftLimit: '0', metadata: { team: 'x' }, createdAt: expect.stringMatching(/Z$/),
      closedAt: null, createdBy: 'test' });
  });

  test('201 without an id: a UUID v7 is generated', async () => {
    const res = await post('/accounts', { currency: 'USD' });
    expect(res.statusCode).toBe(201);
    expect(res.json().id)
      .toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test('200 for the same id and fields, marked replayed', async () => {
    const res = await post('/accounts',
      { id: 'bob', currency: 'USD', overdraftLimit: 0, metadata: { team: 'x' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['idempotent-replayed']).toBe('true');
    expect(res.json().id).toBe('bob');
  });

  test('400 VALIDATION_ERROR', async () => {
    expectProblem(await post('/accounts', { id: 'b', currency: 'usd' }), 400, 'VALIDATION_ERROR');
  });

  test('404 ACCOUNT_NOT_FOUND on GET', async () => {
    expectProblem(await get('/accounts/nobody'), 404, 'ACCOUNT_NOT_FOUND');
    expectProblem(await get('/accounts/nobody/entries'), 404, 'ACCOUNT_NOT_FOUND');
  });

  test('409 ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS names the fields', async () => {
    const body = expectProblem(
      await post('/accounts', { id: 'bob', currency: 'EUR', overdraftLimit: '5' }),
      409, 'ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS');
    expect(body.detail).toContain('currency, overdraftLimit, metadata');
  });
});

describe('transfers', () => {
  test('201 committed', async () => {
    const res = await post('/transfers',
      { id: 't1', from: 'cash', to: 'alice', amount: '500', metadata: { order: '7' } });
    expect(res.statusCode).toBe(201);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(res.json()).toEqual({ id: 't1', from: 'cash', to: 'alice', amount: '500',
      currency: 'USD', status: 'committed', seq: expect.stringMatching(/^[1-9]\d*$/),
      fromBalanceAfter: '-500', toBalanceAfter: '500', metadata: { order: '7' },
      createdAt: expect.stringMatching(/Z$/), createdBy: 'test', kind: 'transfer',
      reversedAmount: '0' });
    expect((await get('/transfers/t1')).json()).toEqual(res.json());
  });

  test('400 VALIDATION_ERROR before SAME_ACCOUNT', async () => {
    expectProblem(await post('/transfers', { id: 'v', from: 'alice', to: 'alice', amount: '0' }),
      400, 'VALIDATION_ERROR');
  });

  test('400 SAME_ACCOUNT, not recorded', async () => {
    expectProblem(await post('/transfers', { id: 'same', from: 'alice', to: 'alice', amount: '1' }),
      400, 'SAME_ACCOUNT');
    expectProblem(await get('/transfers/same'), 404, 'TRANSFER_NOT_FOUND');
  });

  test('404 TRANSFER_NOT_FOUND', async () => {
    expectProblem(await get('/transfers/never'), 404, 'TRANSFER_NOT_FOUND');
  });

  test('409 TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', async () => {
    expectProblem(await post('/transfers', { id: 't1', from: 'cash', to: 'alice', amount: '501' }),
      409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
  });

  test('413 PAYLOAD_TOO_LARGE', async () => {
    const payload = JSON.stringify({ id: 'big', from: 'cash', to: 'alice', amount: '1',
      metadata: { pad: 'x'.repeat(limits.BODY_BYTES_MAX) } });
    expectProblem(await post('/transfers', payload), 413, 'PAYLOAD_TOO_LARGE');
  });

  test('415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const body = JSON.stringify({ id: 'ct', from: 'cash', to: 'alice', amount: '1' });
    expectProblem(await post('/transfers', body, { 'content-type': 'text/plain' }),
      415, 'UNSUPPORTED_MEDIA_TYPE');
    expectProblem(
      await post('/transfers', body, { 'content-type': 'application/x-www-form-urlencoded' }),
      415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test.each([
    ['ACCOUNT_NOT_FOUND', { from: 'ghost', to: 'alice', amount: '1' }],
    ['CURRENCY_MISMATCH', { from: 'alice', to: 'euro', amount: '1' }],
    ['INSUFFICIENT_FUNDS', { from: 'alice', to: 'cash', amount: '501' }],
    ['BALANCE_OVERFLOW', { from: 'cash', to: 'alice', amount: AMOUNT_MAX.toString() }],
  ])('422 %s: recorded, visible as rejected, nothing else written', async (code, fields) => {
    const id = `r-${code}`;
    const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
    const res = await post('/transfers', { id, ...fields });
    expectProblem(res, 422, code);
    expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, id)).toEqual(before);
    expect((await get(`/transfers/${id}`)).json())
      .toMatchObject({ id, status: 'rejected', reason: code });
  });
});

describe('operations', () => {
  test('200 healthz and readyz', async () => {
    expect((await get('/healthz')).statusCode).toBe(200);
    const ready = await get('/readyz');
    expect(ready.json()).toEqual({ status: 'ready', checks: { scripts: 'ok', dataFormat: 'ok',
      aof: 'ok', appendfsync: 'ok', aofLoadTruncated: 'ok', maxmemoryPolicy: 'ok',
      aofLastWrite: 'ok' }, advisory: { busyReplyThreshold: 'ok' } });
  });

  test('a ledger in a data format this release does not read: readyz 503 says so', async () => {
    const g = await fixture();
    try {
      await g.redis.hset(g.keys.meta(), 'fmt', '1');
      const res = await g.app.inject({ method: 'GET', url: '/readyz' });
      expectProblem(res, 503, 'NOT_READY');
      expect(JSON.stringify(res.json()))
        .toMatch(/data is in format 1; this release reads formats? [0-9]/);
    } finally {
      await g.close();
    }
  });

  test('404 NOT_FOUND for an unknown route', async () => {
    expectProblem(await get('/nope'), 404, 'NOT_FOUND');
  });

  test('503 UNAVAILABLE with Retry-After when Redis is gone; readyz 503', async () => {
    const g = await fixture();
    g.redis.disconnect();
    const res = await g.app.inject({ method: 'POST', url: '/transfers', headers: json,
      payload: { id: 'u', from: 'a', to: 'b', amount: '1' } });
    expectProblem(res, 503, 'UNAVAILABLE');
    expect(res.headers['retry-after']).toBe(String(limits.RETRY_AFTER_SECONDS));
    expectProblem(await g.app.inject({ method: 'GET', url: '/accounts/a' }), 503, 'UNAVAILABLE');
    expectProblem(await g.app.inject({ method: 'GET', url: '/readyz' }), 503, 'NOT_READY');
    await g.app.close();
  });
});
