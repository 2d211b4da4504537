/**
 * Authentication and scopes on every endpoint (the scope × endpoint matrix), per-key rate
 * limits, createdBy, and secrets kept out of the log.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { authenticate, parseApiKeys, sha256 } from '../../src/auth/keys.js';
import { bearer, SECRETS, TEST_KEYS } from '../helpers/auth.js';
import { type Fixture, fixture, json } from '../helpers/ledger.js';

let f: Fixture;
let n = 0;
beforeAll(async () => {
  f = await fixture();
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0']]) {
    await f.app.inject({ method: 'POST', url: '/accounts', headers: json, payload: { id, currency: 'USD', overdraftLimit: od } });
  }
  await f.app.inject({ method: 'POST', url: '/transfers', headers: json, payload: { id: 'seed', from: 'cash', to: 'alice', amount: '5' } });
});
afterAll(async () => { await f.close(); });

type Caller = 'none' | 'wrong' | keyof typeof SECRETS;
const CALLERS: Caller[] = ['none', 'wrong', 'reader', 'writer', 'metrics', 'admin', 'test'];
const header = (c: Caller) => (c === 'none' ? '' : bearer(c === 'wrong' ? 'not-a-key' : SECRETS[c]));

type Need = 'public' | 'read' | 'write' | 'metrics';
const ENDPOINTS: Array<[string, Need, () => { method: 'GET' | 'POST'; url: string; payload?: object }]> = [
  ['POST /accounts', 'write', () => ({ method: 'POST', url: '/accounts', payload: { id: `acc-${n++}`, currency: 'USD' } })],
  ['GET /accounts/:id', 'read', () => ({ method: 'GET', url: '/accounts/alice' })],
  ['GET /accounts/:id/entries', 'read', () => ({ method: 'GET', url: '/accounts/alice/entries' })],
  ['POST /transfers', 'write', () => ({ method: 'POST', url: '/transfers', payload: { id: `t-${n++}`, from: 'cash', to: 'alice', amount: '1' } })],
  ['GET /transfers/:id', 'read', () => ({ method: 'GET', url: '/transfers/seed' })],
  ['GET /metrics', 'metrics', () => ({ method: 'GET', url: '/metrics' })],
  ['GET /healthz', 'public', () => ({ method: 'GET', url: '/healthz' })],
  ['GET /readyz', 'public', () => ({ method: 'GET', url: '/readyz' })],
  ['GET /openapi.json', 'public', () => ({ method: 'GET', url: '/openapi.json' })],
  ['GET /docs', 'public', () => ({ method: 'GET', url: '/docs' })],
  ['GET /no/such/route', 'read', () => ({ method: 'GET', url: '/no/such/route' })],
];

function expected(need: Need, caller: Caller): 'ok' | 401 | 403 {
  if (need === 'public') return 'ok';
  if (caller === 'none' || caller === 'wrong') return 401;
  const scopes: Record<string, string[]> = { reader: ['read'], writer: ['read', 'write'],
    metrics: ['metrics'], admin: ['admin'], test: ['read', 'write', 'metrics', 'admin'] };
  return scopes[caller]?.includes(need) ? 'ok' : 403;
}

describe.each(ENDPOINTS)('%s (needs %s)', (_name, need, make) => {
  test.each(CALLERS)('caller %s', async (caller) => {
    const r = make();
    const res = await f.app.inject({ method: r.method, url: r.url,
      headers: { ...(r.payload ? json : {}), authorization: header(caller) },
      ...(r.payload ? { payload: r.payload } : {}) });
    const want = expected(need, caller);
    if (want === 'ok') {
      expect(res.statusCode, res.body).not.toBe(401);
      expect(res.statusCode, res.body).not.toBe(403);
      expect(res.statusCode, res.body).toBeLessThan(r.url === '/no/such/route' ? 405 : 400);
    } else {
      expect(res.statusCode, res.body).toBe(want);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json().code).toBe(want === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
      if (want === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
  });
});

test('rejected calls write nothing; accepted ones record the key name as createdBy', async () => {
  const denied = await f.app.inject({ method: 'POST', url: '/transfers', headers: { ...json, authorization: bearer(SECRETS.reader) },
    payload: { id: 'by-reader', from: 'cash', to: 'alice', amount: '1' } });
  expect(denied.statusCode).toBe(403);
  expect((await f.app.inject({ method: 'GET', url: '/transfers/by-reader' })).statusCode).toBe(404);
  const made = await f.app.inject({ method: 'POST', url: '/transfers', headers: { ...json, authorization: bearer(SECRETS.writer) },
    payload: { id: 'by-writer', from: 'cash', to: 'alice', amount: '1' } });
  expect(made.json()).toMatchObject({ status: 'committed', createdBy: 'writer' });
  // A replay by another key returns the original, createdBy included.
  const replay = await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id: 'by-writer', from: 'cash', to: 'alice', amount: '1' } });
  expect(replay.body).toBe(made.body);
  const acct = await f.app.inject({ method: 'POST', url: '/accounts', headers: { ...json, authorization: bearer(SECRETS.writer) },
    payload: { id: 'acct-by-writer', currency: 'USD' } });
  expect(acct.json().createdBy).toBe('writer');
});

test('malformed Authorization headers are 401, never 500', async () => {
  for (const value of ['Bearer', 'Bearer ', 'Basic abc', `bearer ${SECRETS.test}`, `Bearer  ${SECRETS.test}`,
    `Bearer ${'x'.repeat(600)}`, 'Bearer \u00e9\u00e9']) {
    const res = await f.app.inject({ method: 'GET', url: '/accounts/alice', headers: { authorization: value } });
    expect(res.statusCode, value).toBe(401);
  }
});

test('a key over its rate gets 429 with Retry-After; other keys are unaffected', async () => {
  const g = await fixture({ auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 5 } });
  const get = (secret: string) => g.app.inject({ method: 'GET', url: '/accounts/x', headers: { authorization: bearer(secret) } });
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await get(SECRETS.reader)).statusCode);
  // Burst: 5/s × RATE_LIMIT_BURST_SECONDS (2) = 10 requests pass, then 429.
  expect(statuses.slice(0, 10).every((s) => s === 404)).toBe(true);
  const limited = await get(SECRETS.reader);
  expect(limited.statusCode).toBe(429);
  expect(limited.json().code).toBe('RATE_LIMITED');
  expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect((await get(SECRETS.writer)).statusCode).toBe(404);
  await g.close();
});

test('secrets never reach the log, even at trace level', async () => {
  let logged = '';
  const stream = new Writable({ write(chunk, _enc, done) { logged += chunk; done(); } });
  const { buildApp } = await import('../../src/app.js');
  const app = await buildApp({ ledger: f.ledger, redis: f.redis, metrics: false,
    auth: { mode: 'keys', keys: TEST_KEYS }, logger: { level: 'trace', stream } });
  await app.inject({ method: 'GET', url: '/accounts/alice', headers: { authorization: bearer(SECRETS.test) } });
  await app.inject({ method: 'GET', url: '/accounts/alice', headers: { authorization: bearer('guess') } });
  await app.close();
  expect(logged.length).toBeGreaterThan(0);
  expect(logged).not.toContain(SECRETS.test);
  expect(logged).not.toContain('guess');
});

test('LEDGER_API_KEYS parsing and lookup', () => {
  const hex = sha256('s3cret').toString('hex');
  const keys = parseApiKeys(` a:read:${hex} , b:write+metrics:${sha256('other').toString('hex')}`);
  expect(keys.map((k) => [k.name, [...k.scopes]])).toEqual([['a', ['read']], ['b', ['write', 'metrics']]]);
  expect(authenticate(keys, 's3cret')?.name).toBe('a');
  expect(authenticate(keys, 's3cre')).toBeUndefined();
  for (const bad of [`a:read`, `a:root:${hex}`, `a:read:${hex.toUpperCase()}`, `a b:read:${hex}`,
    `a:read:${hex},a:write:${sha256('x').toString('hex')}`, `a:read:${hex},b:write:${hex}`]) {
    expect(() => parseApiKeys(bad), bad).toThrow(/LEDGER_API_KEYS/);
  }
});
