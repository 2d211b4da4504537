/**
 * Authentication and scopes on every route (the scope × route matrix), per-key rate limits,
 * createdBy, and secrets kept out of the log.
 *
 * The matrix is checked against the routes the app really registers, so a new route fails here
 * until ROUTES says which scope it needs. They are collected with an `onRoute` hook added
 * through Fastify's `fastify.initialization` diagnostics channel, which fires inside `Fastify()`
 * before buildApp registers any plugin: the hook then sees every route of every plugin (ours and
 * swagger-ui's), HEAD routes included, with its full URL. The alternatives miss some:
 * `app.swagger()` leaves out hidden routes (`/openapi.json`, `/docs/*`, every HEAD);
 * `printRoutes()` prints a wildcard without its parent path (`/docs/static/*` shows as `*`);
 * `findRoute()` needs the URL known beforehand. The hook does not see the trailing-slash twin
 * that Fastify adds for a prefixed `/` route (`GET /docs/`): it shares the options, and so the
 * scope, of the route it twins (`GET /docs`).
 */
import diagnostics from 'node:diagnostics_channel';
import { Writable } from 'node:stream';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { authenticate, parseApiKeys, sha256 } from '../../src/auth/keys.js';
import { bearer, SECRETS, TEST_KEYS } from '../helpers/auth.js';
import { dumpLedger, type Fixture, fixture, json } from '../helpers/ledger.js';

type Need = 'public' | 'read' | 'write' | 'metrics' | 'admin';

/** The routes of a ledger: registered unprefixed (the default ledger) and under PREFIX. */
const LEDGER_ROUTES: Array<[string, string, Need]> = [
  ['POST', '/accounts', 'write'],
  ['POST', '/accounts/:id/close', 'write'],
  ['GET HEAD', '/accounts/:id', 'read'],
  ['GET HEAD', '/accounts/:id/entries', 'read'],
  ['GET HEAD', '/accounts/:id/balance', 'read'],
  ['POST', '/transfers', 'write'],
  ['POST', '/transfers/batch', 'write'],
  ['POST', '/transfers/:id/post', 'write'],
  ['POST', '/transfers/:id/void', 'write'],
  ['POST', '/transfers/:id/reversals', 'write'],
  ['GET HEAD', '/transfers/:id', 'read'],
  ['GET HEAD', '/journal', 'read'],
];
const PREFIX = '/ledgers/:ledger';

/**
 * The expected scope of every registered route: `[methods, url as registered, need]`. The API
 * description and health checks are public (README, Authentication); reads need `read`, writes
 * `write`, `/metrics` needs `metrics`, creating a ledger `admin`.
 */
const ROUTES: Array<[string, string, Need]> = [
  ...LEDGER_ROUTES,
  ...LEDGER_ROUTES.map(([methods, url, need]): [string, string, Need] =>
    [methods, `${PREFIX}${url}`, need]),
  ['POST', '/ledgers', 'admin'],
  ['GET HEAD', '/ledgers', 'read'],
  ['GET HEAD', '/ledgers/:ledger', 'read'],
  ['GET HEAD', '/metrics', 'metrics'],
  ['GET HEAD', '/healthz', 'public'],
  ['GET HEAD', '/readyz', 'public'],
  ['GET HEAD', '/openapi.json', 'public'],
  // swagger-ui's routes under /docs.
  ['GET HEAD', '/docs', 'public'],
  ['HEAD', '/docs/', 'public'],
  ['GET HEAD', '/docs/json', 'public'],
  ['GET HEAD', '/docs/yaml', 'public'],
  ['GET HEAD', '/docs/static/index.html', 'public'],
  ['GET HEAD', '/docs/static/swagger-initializer.js', 'public'],
  ['GET HEAD', '/docs/static/*', 'public'],
];

type Method = 'GET' | 'HEAD' | 'POST';
interface Row { method: Method; url: string; need: Need }
const ROWS: Row[] = ROUTES.flatMap(([methods, url, need]) =>
  methods.split(' ').map((method) => ({ method: method as Method, url, need })));
const routeName = (method: string, url: string) => `${method} ${url}`;

let f: Fixture;
/** `METHOD url` of every route the app registered, as the onRoute hook saw them. */
const registered = new Set<string>();
let n = 0;

beforeAll(async () => {
  const onInit = (message: unknown) => {
    (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', (r: RouteOptions) => {
      for (const method of [r.method].flat()) registered.add(routeName(method, r.url));
    });
  };
  diagnostics.subscribe('fastify.initialization', onInit);
  try {
    // Its own key prefix: the ledgers it creates are in no other file's index of ledgers.
    f = await fixture({ keyPrefix: 'auth' });
  } finally {
    diagnostics.unsubscribe('fastify.initialization', onInit);
  }
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0']]) {
    const res = await f.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: od } });
    expect(res.statusCode).toBe(201);
  }
  const seed = await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id: 'seed', from: 'cash', to: 'alice', amount: '5' } });
  expect(seed.statusCode).toBe(201);
});
afterAll(async () => { await f.close(); });

test('every registered route has a row in ROUTES, and every row is a registered route', () => {
  // A floor, so that a hook that saw nothing cannot pass.
  expect(registered.size).toBeGreaterThanOrEqual(ROWS.length);
  const table = new Set(ROWS.map((r) => routeName(r.method, r.url)));
  expect([...registered].filter((route) => !table.has(route)), 'routes with no expected scope')
    .toEqual([]);
  expect([...table].filter((route) => !registered.has(route)), 'rows for no route').toEqual([]);
  for (const r of ROWS) {
    expect(f.app.hasRoute({ method: r.method, url: r.url }), routeName(r.method, r.url))
      .toBe(true);
  }
});

/** Where a route has path parameters, a URL that names what the fixture created. */
const CONCRETE: Record<string, string> = {
  '/accounts/:id': '/accounts/alice',
  '/accounts/:id/entries': '/accounts/alice/entries',
  '/accounts/:id/balance': '/accounts/alice/balance',
  '/transfers/:id': '/transfers/seed',
  '/docs/static/*': '/docs/static/swagger-ui.css',
};

/** Made with the test key, so that a call of the route under test can succeed. */
async function created(url: string, payload: object): Promise<string> {
  const id = `m-${n++}`;
  const res = await f.app.inject({ method: 'POST', url, headers: json,
    payload: { id, ...payload } });
  expect(res.statusCode, res.body).toBe(201);
  return id;
}

/**
 * Writes whose path names what they act on: a fresh one for each call (made before the ledger
 * is dumped), so that an accepted call succeeds and a refused one is seen to change nothing.
 */
const TARGETS: Record<string, () => Promise<string>> = {
  'POST /accounts/:id/close': async () =>
    `/accounts/${await created('/accounts', { currency: 'USD' })}/close`,
  'POST /transfers/:id/post': async () => `/transfers/${await created('/transfers',
    { from: 'cash', to: 'alice', amount: '2', pending: true })}/post`,
  'POST /transfers/:id/void': async () => `/transfers/${await created('/transfers',
    { from: 'cash', to: 'alice', amount: '2', pending: true })}/void`,
  'POST /transfers/:id/reversals': async () => `/transfers/${await created('/transfers',
    { from: 'cash', to: 'alice', amount: '2' })}/reversals`,
};

/**
 * A route of a ledger under PREFIX: the same route unprefixed, and the base that names the
 * fixture's ledger (the default one, so that the dump sees what a refused call might write).
 */
function unprefixed(url: string): { url: string; base: string } {
  if (url !== PREFIX && !url.startsWith(`${PREFIX}/`)) return { url, base: '' };
  return { url: url.slice(PREFIX.length), base: `/ledgers/${f.keys.ledger}` };
}

async function concreteUrl(method: Method, registered: string): Promise<string> {
  const { url, base } = unprefixed(registered);
  const target = TARGETS[routeName(method, url)];
  const concrete = base + (target === undefined ? CONCRETE[url] ?? url : await target());
  if (/[:*]/.test(concrete)) throw new Error(`no concrete URL for ${url}: add one to CONCRETE`);
  return concrete;
}

/** A body for each write route, new each time (fresh ids) so that an accepted call succeeds. */
const BODIES: Record<string, () => object> = {
  'POST /accounts': () => ({ id: `acc-${n++}`, currency: 'USD' }),
  'POST /transfers': () => ({ id: `t-${n++}`, from: 'cash', to: 'alice', amount: '1' }),
  'POST /transfers/batch': () => ({ atomic: false, transfers: [
    { id: `b-${n++}`, from: 'cash', to: 'alice', amount: '1' },
    { id: `b-${n++}`, from: 'cash', to: 'alice', amount: '1', pending: true }] }),
  'POST /accounts/:id/close': () => ({}),
  'POST /transfers/:id/post': () => ({ id: `p-${n++}`, amount: '1' }),
  'POST /transfers/:id/void': () => ({ id: `v-${n++}` }),
  'POST /transfers/:id/reversals': () => ({ id: `r-${n++}`, amount: '1' }),
  // A new name each time, after the fixture's own (unique to this run of this file).
  'POST /ledgers': () => ({ name: `${f.keys.ledger}-l${n++}` }),
};

async function request(row: Row): Promise<{ method: Method; url: string; payload?: object }> {
  const url = await concreteUrl(row.method, row.url);
  if (row.method !== 'POST') return { method: row.method, url };
  const body = BODIES[routeName(row.method, unprefixed(row.url).url)];
  if (body === undefined) throw new Error(`no body for ${row.method} ${row.url}: add one`);
  return { method: row.method, url, payload: body() };
}

type Caller = 'none' | 'wrong' | keyof typeof SECRETS;
const CALLERS: Caller[] = ['none', 'wrong', 'reader', 'writer', 'metrics', 'admin', 'test'];
const header = (c: Caller) =>
  (c === 'none' ? '' : bearer(c === 'wrong' ? 'not-a-key' : SECRETS[c]));
/**
 * The needs each test key meets (test/helpers/auth.ts): `write` implies `read`; `admin`
 * implies neither.
 */
const SCOPES: Record<keyof typeof SECRETS, Need[]> = { reader: ['read'],
  writer: ['read', 'write'], metrics: ['metrics'], admin: ['admin'],
  test: ['read', 'write', 'metrics', 'admin'] };

function expected(need: Need, caller: Caller): 'ok' | 401 | 403 {
  if (need === 'public') return 'ok';
  if (caller === 'none' || caller === 'wrong') return 401;
  return SCOPES[caller].includes(need) ? 'ok' : 403;
}

/** Unmatched URLs need a key with `read` too, so that routes cannot be probed anonymously. */
const UNMATCHED: Row = { method: 'GET', url: '/no/such/route', need: 'read' };

const MATRIX = [...ROWS, UNMATCHED].map((row): [string, Row] =>
  [`${routeName(row.method, row.url)} (needs ${row.need})`, row]);
describe.each(MATRIX)('%s', (_name, row) => {
  test.each(CALLERS)('caller %s', async (caller) => {
    const r = row === UNMATCHED ? { method: row.method, url: row.url } : await request(row);
    const before = await dumpLedger(f.redis, f.keys);
    const res = await f.app.inject({ method: r.method, url: r.url,
      headers: { ...(r.payload ? json : {}), authorization: header(caller) },
      ...(r.payload ? { payload: r.payload } : {}) });
    const want = expected(row.need, caller);
    if (want === 'ok') {
      expect(res.statusCode, res.body).not.toBe(401);
      expect(res.statusCode, res.body).not.toBe(403);
      expect(res.statusCode, res.body).toBeLessThan(row === UNMATCHED ? 405 : 400);
      return;
    }
    expect(res.statusCode, res.body).toBe(want);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    if (r.method !== 'HEAD') {
      expect(res.json().code).toBe(want === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN');
    }
    if (want === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    // A refused call wrote nothing at all; a refused ledger was not created either (its keys
    // are not the fixture's, so the dump would not show it).
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    const name = (r.payload as { name?: unknown } | undefined)?.name;
    if (row.url === '/ledgers' && typeof name === 'string') {
      const read = await f.app.inject({ method: 'GET', url: `/ledgers/${name}` });
      expect(read.statusCode, read.body).toBe(404);
    }
  });
});

test('rejected calls write nothing; accepted ones record the key name as createdBy', async () => {
  const as = (name: keyof typeof SECRETS) => ({ ...json, authorization: bearer(SECRETS[name]) });
  const denied = await f.app.inject({ method: 'POST', url: '/transfers', headers: as('reader'),
    payload: { id: 'by-reader', from: 'cash', to: 'alice', amount: '1' } });
  expect(denied.statusCode).toBe(403);
  const notThere = await f.app.inject({ method: 'GET', url: '/transfers/by-reader' });
  expect(notThere.statusCode).toBe(404);
  const deniedBatch = await f.app.inject({ method: 'POST', url: '/transfers/batch',
    headers: as('reader'), payload: { atomic: true,
      transfers: [{ id: 'batch-by-reader', from: 'cash', to: 'alice', amount: '1' }] } });
  expect(deniedBatch.statusCode).toBe(403);
  const batchNotThere = await f.app.inject({ method: 'GET', url: '/transfers/batch-by-reader' });
  expect(batchNotThere.statusCode).toBe(404);
  const made = await f.app.inject({ method: 'POST', url: '/transfers', headers: as('writer'),
    payload: { id: 'by-writer', from: 'cash', to: 'alice', amount: '1' } });
  expect(made.json()).toMatchObject({ status: 'committed', createdBy: 'writer' });
  // A replay by another key returns the original, createdBy included.
  const replay = await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id: 'by-writer', from: 'cash', to: 'alice', amount: '1' } });
  expect(replay.body).toBe(made.body);
  const acct = await f.app.inject({ method: 'POST', url: '/accounts', headers: as('writer'),
    payload: { id: 'acct-by-writer', currency: 'USD' } });
  expect(acct.json().createdBy).toBe('writer');
  // A post, void or reversal records its own caller, not the one of what it names.
  const holdId = await created('/transfers', { from: 'cash', to: 'alice', amount: '2',
    pending: true });
  const deniedPost = await f.app.inject({ method: 'POST', url: `/transfers/${holdId}/post`,
    headers: as('reader'), payload: { id: 'post-by-reader' } });
  expect(deniedPost.statusCode).toBe(403);
  expect((await f.app.inject({ method: 'GET', url: '/transfers/post-by-reader' })).statusCode)
    .toBe(404);
  const posted = await f.app.inject({ method: 'POST', url: `/transfers/${holdId}/post`,
    headers: as('writer'), payload: { id: 'post-by-writer' } });
  expect(posted.json()).toMatchObject({ kind: 'post', pendingId: holdId, createdBy: 'writer' });
  const reversed = await f.app.inject({ method: 'POST', url: '/transfers/post-by-writer/reversals',
    headers: as('writer'), payload: { id: 'reversal-by-writer' } });
  expect(reversed.json()).toMatchObject({ kind: 'reversal', amount: '2', createdBy: 'writer' });
});

test('malformed Authorization headers are 401, never 500', async () => {
  for (const value of ['Bearer', 'Bearer ', 'Basic abc', `bearer ${SECRETS.test}`,
    `Bearer  ${SECRETS.test}`, `Bearer ${'x'.repeat(600)}`, 'Bearer \u00e9\u00e9']) {
    const res = await f.app.inject({ method: 'GET', url: '/accounts/alice',
      headers: { authorization: value } });
    expect(res.statusCode, value).toBe(401);
  }
});

test('a key over its rate gets 429 with Retry-After; other keys are unaffected', async () => {
  const g = await fixture({ auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 5 } });
  const get = (secret: string) => g.app.inject({ method: 'GET', url: '/accounts/x',
    headers: { authorization: bearer(secret) } });
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
  await app.inject({ method: 'GET', url: '/accounts/alice',
    headers: { authorization: bearer(SECRETS.test) } });
  await app.inject({ method: 'GET', url: '/accounts/alice',
    headers: { authorization: bearer('guess') } });
  await app.close();
  expect(logged.length).toBeGreaterThan(0);
  expect(logged).not.toContain(SECRETS.test);
  expect(logged).not.toContain('guess');
});

test('LEDGER_API_KEYS parsing and lookup', () => {
  const hex = sha256('s3cret').toString('hex');
  const other = sha256('other').toString('hex');
  const keys = parseApiKeys(` a:read:${hex} , b:write+metrics:${other}`);
  expect(keys.map((k) => [k.name, [...k.scopes]]))
    .toEqual([['a', ['read']], ['b', ['write', 'metrics']]]);
  expect(authenticate(keys, 's3cret')?.name).toBe('a');
  expect(authenticate(keys, 's3cre')).toBeUndefined();
  for (const bad of [`a:read`, `a:root:${hex}`, `a:read:${hex.toUpperCase()}`, `a b:read:${hex}`,
    `a:read:${hex},a:write:${sha256('x').toString('hex')}`, `a:read:${hex},b:write:${hex}`]) {
    expect(() => parseApiKeys(bad), bad).toThrow(/LEDGER_API_KEYS/);
  }
  // `:ledgers=a|b` restricts a key to those ledgers; without it, a key reaches every ledger.
  const [restricted, free] = parseApiKeys(`r:write:${hex}:ledgers=eu|main,f:read:${other}`);
  expect([...(restricted?.ledgers ?? [])]).toEqual(['eu', 'main']);
  expect(free?.ledgers).toBeUndefined();
  for (const bad of [`a:read:${hex}:ledgers=`, `a:read:${hex}:ledgers=a||b`,
    `a:read:${hex}:ledgers=a b`, `a:read:${hex}:only=a`, `a:read:${hex}:ledgers=a:x`,
    `a:read:${hex}:ledgers=${'l'.repeat(65)}`]) {
    expect(() => parseApiKeys(bad), bad).toThrow(/LEDGER_API_KEYS/);
  }
});

test('fails closed: a route that declares no scope is refused when it is added', async () => {
  const Fastify = (await import('fastify')).default;
  const { default: auth } = await import('../../src/plugins/auth.js');
  for (const options of [{ mode: 'keys', keys: TEST_KEYS }, { mode: 'off' }] as const) {
    const app = Fastify();
    await app.register(auth, options);
    // Not public for sharing a prefix with the docs; only /docs and /docs/… are.
    expect(() => app.get('/docs-admin', async () => 'secret'))
      .toThrow(/GET \/docs-admin declares no config\.scope/);
    app.get('/docs/extra', async () => 'docs');
    await app.ready();
    await app.close();
  }
});
