/**
 * Ledgers (issue 15): `POST /ledgers`, `GET /ledgers`, `GET /ledgers/{ledger}`, the routes of a
 * ledger under `/ledgers/{ledger}`, ledger-restricted API keys and the hold sweeper over every
 * ledger. Every fixture here has a key prefix of its own: the ledgers of one prefix share its
 * index (`<prefix>:ledgers`), which `GET /ledgers` lists and the sweepers of other test files
 * (prefix `test`) walk.
 *
 * A key restricted to some ledgers is tried on every route of a ledger, enumerated from the
 * routes the app registers (as test/http/auth.test.ts collects them), so that a route added
 * later fails here until TARGETS says how to call it.
 */
import diagnostics from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseApiKeys, sha256 } from '../../src/auth/keys.js';
import { limits } from '../../src/config/limits.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { bearer, TEST_KEYS } from '../helpers/auth.js';
import {
  dumpLedger, type Fixture, fixture, type FixtureOptions, json, uniqueLedgerName,
} from '../helpers/ledger.js';
import { type Answer, expectProblem } from './requests.js';

/** The default ledger of every fixture here (LEDGER_NAME). */
const MAIN = 'main';

/** Keys restricted to ledgers; `write` (so `read`) and `admin`, so no scope is what refuses. */
const SECRET = {
  onlyA: 'test-secret-only-ledger-a-0123456789abcdef',
  some: 'test-secret-some-ledgers-0123456789abcdef',
} as const;
const hex = (secret: string) => sha256(secret).toString('hex');
const KEYS = [...TEST_KEYS, ...parseApiKeys([
  `only-a:write+admin:${hex(SECRET.onlyA)}:ledgers=a`,
  // `ghost` never exists; `later` is created by this key; `main` is the default ledger.
  `some:write+admin:${hex(SECRET.some)}:ledgers=a|ghost|${MAIN}|later`,
].join(','))];

/** A fixture under a key prefix of its own, whose default ledger is MAIN. */
function ledgersFixture(options: FixtureOptions = {}): Promise<Fixture> {
  return fixture({ keyPrefix: `lg-${uniqueLedgerName().slice(2)}`, ledgerName: MAIN,
    auth: { mode: 'keys', keys: KEYS, ratePerSecond: 1_000_000 }, ...options });
}

let f: Fixture;
/** `METHOD url` of every route the app registered, as an onRoute hook saw them. */
const registered = new Set<string>();

beforeAll(async () => {
  // As in test/http/auth.test.ts: the hook is added inside Fastify(), before any route.
  const onInit = (message: unknown) => {
    (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', (r: RouteOptions) => {
      for (const method of [r.method].flat()) registered.add(`${method} ${r.url}`);
    });
  };
  diagnostics.subscribe('fastify.initialization', onInit);
  try {
    f = await ledgersFixture();
  } finally {
    diagnostics.unsubscribe('fastify.initialization', onInit);
  }
});
afterAll(async () => { await f.close(); });

type Method = 'GET' | 'HEAD' | 'POST';

/** A request to `g` with the test key (all scopes, every ledger) or `secret`'s key. */
function call(g: Fixture, method: Method, url: string, payload?: unknown, secret?: string) {
  return g.app.inject({ method, url,
    headers: { ...(payload === undefined ? {} : json),
      ...(secret === undefined ? {} : { authorization: bearer(secret) }) },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });
}

/** A write that must answer `status`; its JSON body. */
async function ok(g: Fixture, status: number, url: string, payload: unknown, secret?: string) {
  const res = await call(g, 'POST', url, payload, secret);
  expect(res.statusCode, `${url} ${JSON.stringify(payload)}: ${res.body}`).toBe(status);
  return res.json() as Record<string, unknown>;
}

async function read(g: Fixture, url: string, secret?: string) {
  const res = await call(g, 'GET', url, undefined, secret);
  expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
  return res.json() as Record<string, unknown>;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('create, read, replay', () => {
  test('201 once, then 200 marked as a replay with the same body; readable as created',
    async () => {
      const created = await call(f, 'POST', '/ledgers', { name: 'eu',
        metadata: { region: 'eu', team: 'payments' } });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.headers['idempotent-replayed']).toBeUndefined();
      expect(created.json()).toEqual({ name: 'eu', metadata: { region: 'eu',
        team: 'payments' }, createdAt: expect.stringMatching(ISO) });
      // The same fields again, metadata keys in another order: the same ledger.
      const again = await call(f, 'POST', '/ledgers', { name: 'eu',
        metadata: { team: 'payments', region: 'eu' } });
      expect(again.statusCode, again.body).toBe(200);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toBe(created.body);
      expect(await read(f, '/ledgers/eu')).toEqual(created.json());
    });

  test('no metadata is the same as {}; the default ledger exists without being created',
    async () => {
      expect(await ok(f, 201, '/ledgers', { name: 'bare' })).toMatchObject({ metadata: {} });
      expect(await ok(f, 200, '/ledgers', { name: 'bare', metadata: {} }))
        .toMatchObject({ name: 'bare', metadata: {} });
      expect(await read(f, `/ledgers/${MAIN}`)).toEqual({ name: MAIN, metadata: {},
        createdAt: expect.stringMatching(ISO) });
      const replay = await call(f, 'POST', '/ledgers', { name: MAIN });
      expect(replay.statusCode, replay.body).toBe(200);
      expect(replay.headers['idempotent-replayed']).toBe('true');
    });

  test('409 when the metadata differs, naming it; the ledger keeps what it was created with',
    async () => {
      const first = await ok(f, 201, '/ledgers', { name: 'conflicted', metadata: { v: '1' } });
      for (const metadata of [{ v: '2' }, {}, { v: '1', w: '1' }]) {
        const res = await call(f, 'POST', '/ledgers', { name: 'conflicted', metadata });
        expect(expectProblem(res, 409, 'LEDGER_EXISTS_WITH_DIFFERENT_FIELDS').detail)
          .toBe('ledger "conflicted" exists with different metadata');
      }
      expect(await read(f, '/ledgers/conflicted')).toEqual(first);
    });

  test('a ledger that does not exist is 404 LEDGER_NOT_FOUND', async () => {
    const res = await call(f, 'GET', '/ledgers/never-created');
    expect(expectProblem(res, 404, 'LEDGER_NOT_FOUND').detail)
      .toBe('no ledger "never-created"');
  });

  test('GET /ledgers/{ledger} refuses unknown query parameters, as every GET does', async () => {
    for (const url of ['/transfers/t0?x=1', '/accounts/a0?x=1', '/ledgers/eu?x=1']) {
      expectProblem(await call(f, 'GET', url), 400, 'VALIDATION_ERROR');
    }
  });

  test('the default ledger exists and is listed even after its record was lost', async () => {
    // As after a restore or a failover that lost the write of the record: the service says
    // the default ledger always exists, and records it again when it finds it missing.
    const g = await ledgersFixture();
    try {
      await g.redis.hdel(g.keys.meta(), 'ln', 'lm', 'lc');
      expect(await read(g, `/ledgers/${MAIN}`)).toMatchObject({ name: MAIN, metadata: {} });
      expect(await read(g, '/ledgers')).toMatchObject({ ledgers: [{ name: MAIN }] });
    } finally {
      await g.close();
    }
  });

  test('400 for a name outside 1–64 of a–z 0–9 _ -; nothing is created', async () => {
    const before = await read(f, '/ledgers?limit=1000');
    const longest = 'l'.repeat(limits.LEDGER_NAME_LENGTH_MAX);
    for (const name of ['', 'Upper', `${longest}l`, 'a.b', 'a b', 'é', 'a/b', 7, null]) {
      const res = await call(f, 'POST', '/ledgers', { name });
      expectProblem(res, 400, 'VALIDATION_ERROR');
    }
    for (const name of ['Upper', `${longest}l`, 'a.b']) {
      expectProblem(await call(f, 'GET', `/ledgers/${encodeURIComponent(name)}`), 404,
        'LEDGER_NOT_FOUND');
    }
    expect(await read(f, '/ledgers?limit=1000')).toEqual(before);
    // The edges themselves are names.
    for (const name of [longest, 'q', '_', '-', '0-z_9']) {
      await ok(f, 201, '/ledgers', { name });
    }
  });
});

describe('listing', () => {
  test('pages in name order by `after` and `limit`, the default ledger among them', async () => {
    const g = await ledgersFixture();
    try {
      // Names on both sides of the default one (`main`).
      const names = ['alpha', 'beta', 'm-1', 'mainz', 'zeta', 'zz'];
      for (const name of [...names].reverse()) await ok(g, 201, '/ledgers', { name });
      const all = [...names, MAIN].sort();
      const whole = await read(g, '/ledgers');
      expect(whole.next).toBeNull();
      expect((whole.ledgers as Array<{ name: string }>).map((l) => l.name)).toEqual(all);
      for (const limit of [1, 2, 3, all.length - 1, all.length, all.length + 1]) {
        const seen: string[] = [];
        let after: string | null | undefined;
        for (let page = 0; after !== null; page++) {
          expect(page, `limit ${limit}: too many pages`).toBeLessThan(all.length + 1);
          const query = after === undefined ? '' : `&after=${after}`;
          const body = await read(g, `/ledgers?limit=${limit}${query}`);
          const got = (body.ledgers as Array<{ name: string }>).map((l) => l.name);
          expect(got.length).toBeLessThanOrEqual(limit);
          seen.push(...got);
          after = body.next as string | null;
          // `next` is the page's last name while more follow, and null on the last page.
          expect(after, `limit ${limit}`).toBe(seen.length < all.length ? got.at(-1) : null);
        }
        expect(seen, `limit ${limit}`).toEqual(all);
      }
      // `after` need not be a ledger: the names after it.
      const tail = await read(g, '/ledgers?after=m');
      expect((tail.ledgers as Array<{ name: string }>).map((l) => l.name))
        .toEqual(all.filter((n) => n > 'm'));
      for (const bad of ['limit=0', `limit=${limits.LEDGERS_PAGE_LIMIT_MAX + 1}`, 'limit=01',
        'limit=1e2', 'x=1']) {
        expectProblem(await call(g, 'GET', `/ledgers?${bad}`), 400, 'VALIDATION_ERROR');
      }
    } finally {
      await g.close();
    }
  });
});

describe('isolation: the same ids in two ledgers and the default one', () => {
  /** [ledger, the base of its routes, its currency, the amount of transfer `t1`]. */
  const PLACES = [['x', '/ledgers/x', 'USD', '100'], ['y', '/ledgers/y', 'EUR', '200'],
    [MAIN, '', 'USD', '300']] as const;

  beforeAll(async () => {
    for (const name of ['x', 'y']) await ok(f, 201, '/ledgers', { name });
    for (const [, base, currency, amount] of PLACES) {
      // Same ids, other fields: created in each (201), never a conflict with another ledger.
      await ok(f, 201, `${base}/accounts`, { id: 'cash', currency, overdraftLimit: 'unlimited' });
      await ok(f, 201, `${base}/accounts`, { id: 'alice', currency });
      await ok(f, 201, `${base}/transfers`, { id: 't1', from: 'cash', to: 'alice', amount });
    }
  });

  test('balances, transfers and entries are each ledger\'s own', async () => {
    for (const [, base, currency, amount] of PLACES) {
      expect(await read(f, `${base}/accounts/alice`)).toMatchObject({ currency,
        balance: amount, credits: amount });
      // Each ledger has its own journal: t1 is the first transfer of each.
      expect(await read(f, `${base}/transfers/t1`)).toMatchObject({ amount, currency,
        seq: '1', toBalanceAfter: amount });
      const entries = await read(f, `${base}/accounts/alice/entries`);
      expect(entries.entries).toEqual([expect.objectContaining({ transferId: 't1', amount,
        balanceAfter: amount })]);
    }
    // The default ledger under its own name is the unprefixed one.
    expect(await read(f, `/ledgers/${MAIN}/transfers/t1`))
      .toEqual(await read(f, '/transfers/t1'));
  });

  test('a replay is a replay in its own ledger only', async () => {
    for (const [, base, , amount] of PLACES) {
      const again = await call(f, 'POST', `${base}/transfers`, { id: 't1', from: 'cash',
        to: 'alice', amount });
      expect(again.statusCode, again.body).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toMatchObject({ amount, seq: '1' });
      // Another ledger's fields under the same id: a conflict here, not that ledger's replay.
      const other = amount === '100' ? '200' : '100';
      const res = await call(f, 'POST', `${base}/transfers`, { id: 't1', from: 'cash',
        to: 'alice', amount: other });
      expectProblem(res, 409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
      expect(await read(f, `${base}/accounts/alice`)).toMatchObject({ balance: amount });
    }
  });

  test('what exists in one ledger does not exist in the others', async () => {
    await ok(f, 201, '/ledgers/x/accounts', { id: 'only-x', currency: 'USD' });
    await ok(f, 201, '/ledgers/x/transfers', { id: 'tx', from: 'cash', to: 'only-x',
      amount: '5' });
    await ok(f, 201, '/ledgers/x/transfers', { id: 'hx', from: 'cash', to: 'alice',
      amount: '5', pending: true });
    for (const [i, base] of ['/ledgers/y', '', `/ledgers/${MAIN}`].entries()) {
      expectProblem(await call(f, 'GET', `${base}/accounts/only-x`), 404, 'ACCOUNT_NOT_FOUND');
      expectProblem(await call(f, 'GET', `${base}/transfers/tx`), 404, 'TRANSFER_NOT_FOUND');
      expectProblem(await call(f, 'POST', `${base}/transfers/hx/post`, { id: `p-${i}` }),
        422, 'PENDING_TRANSFER_NOT_FOUND');
      expectProblem(await call(f, 'POST', `${base}/transfers`, { id: `to-only-x-${i}`,
        from: 'cash', to: 'only-x', amount: '1' }), 422, 'ACCOUNT_NOT_FOUND');
    }
    // Where the data lives: under the ledger's own hash tag.
    const x = ledgerKeys(f.keys.prefix, 'x');
    expect(await f.redis.hget(x.account('only-x'), 'cur')).toBe('USD');
    expect(await f.redis.exists(ledgerKeys(f.keys.prefix, 'y').account('only-x'))).toBe(0);
  });
});

/** The routes of a ledger as registered: under the prefix, and `GET /ledgers/:ledger`. */
const PREFIX = '/ledgers/:ledger';

interface Target { path: string; body?: object }
/**
 * How to call each route of a ledger (its path after the prefix), so that with the ledger the
 * key reaches it succeeds; ledgers `a` and `b` hold the same accounts and transfers.
 */
const TARGETS: Record<string, Target> = {
  'POST /accounts': { path: '/accounts', body: { id: 'new-acct', currency: 'USD' } },
  'POST /accounts/:id/close': { path: '/accounts/to-close/close', body: {} },
  'GET /accounts/:id': { path: '/accounts/alice' },
  'GET /accounts/:id/entries': { path: '/accounts/alice/entries' },
  'GET /accounts/:id/balance': { path: '/accounts/alice/balance?seq=1' },
  'POST /transfers': { path: '/transfers',
    body: { id: 'new-t', from: 'cash', to: 'alice', amount: '1' } },
  'POST /transfers/batch': { path: '/transfers/batch', body: { atomic: true,
    transfers: [{ id: 'new-b', from: 'cash', to: 'alice', amount: '1' }] } },
  'GET /transfers/:id': { path: '/transfers/seed' },
  'POST /transfers/:id/post': { path: '/transfers/h-post/post', body: { id: 'new-p' } },
  'POST /transfers/:id/void': { path: '/transfers/h-void/void', body: { id: 'new-v' } },
  'POST /transfers/:id/reversals': { path: '/transfers/seed/reversals',
    body: { id: 'new-r', amount: '1' } },
  'GET /journal': { path: '/journal' },
  // GET /ledgers/:ledger itself.
  'GET ': { path: '' },
};

/** `[method, path after the prefix]` of every registered route of a ledger. */
function ledgerRoutes(): Array<[Method, string]> {
  const out: Array<[Method, string]> = [];
  for (const route of registered) {
    const [method, url] = route.split(' ') as [Method, string];
    if (url === PREFIX || url.startsWith(`${PREFIX}/`)) {
      out.push([method, url.slice(PREFIX.length)]);
    }
  }
  return out;
}

describe('a key restricted to ledger a', () => {
  beforeAll(async () => {
    for (const name of ['a', 'b']) {
      await ok(f, 201, '/ledgers', { name });
      const base = `/ledgers/${name}`;
      await ok(f, 201, `${base}/accounts`, { id: 'cash', currency: 'USD',
        overdraftLimit: 'unlimited' });
      for (const id of ['alice', 'to-close']) {
        await ok(f, 201, `${base}/accounts`, { id, currency: 'USD' });
      }
      await ok(f, 201, `${base}/transfers`, { id: 'seed', from: 'cash', to: 'alice',
        amount: '10' });
      for (const id of ['h-post', 'h-void']) {
        await ok(f, 201, `${base}/transfers`, { id, from: 'cash', to: 'alice', amount: '3',
          pending: true });
      }
    }
  });

  test('finds every route of a ledger (a floor, so that a hook that saw nothing fails)', () => {
    const routes = ledgerRoutes();
    // 11 routes of a ledger, 4 of them GETs with their HEAD twins, and GET/HEAD /ledgers/:ledger.
    expect(routes.length).toBeGreaterThanOrEqual(17);
    for (const [method, path] of routes) {
      const key = `${method === 'HEAD' ? 'GET' : method} ${path}`;
      expect(TARGETS[key], `${key}: add it to TARGETS`).toBeDefined();
      // Every route of a ledger but GET /ledgers/:ledger has its unprefixed twin.
      if (path !== '') expect(registered.has(`${method} ${path}`), key).toBe(true);
    }
  });

  /**
   * `method path` in `ledger` (null: unprefixed) as `secret`'s key; for HEAD the body is that of
   * the GET (a HEAD answer has none).
   */
  async function attempt(method: Method, path: string, ledger: string | null, secret?: string) {
    const target = TARGETS[`${method === 'HEAD' ? 'GET' : method} ${path}`] as Target;
    const url = `${ledger === null ? '' : `/ledgers/${ledger}`}${target.path}`;
    return call(f, method, url, target.body, secret);
  }

  /** The problem with the ledger's name in its detail made generic. */
  const generic = (res: Answer, name: string) => {
    const body = res.json() as { detail: string };
    expect(body.detail).toBe(`no ledger "${name}"`);
    return { ...body, detail: body.detail.replace(`"${name}"`, '"<ledger>"') };
  };

  test('every route: 404 for another ledger exactly as for a missing one, and unprefixed',
    async () => {
      const b = ledgerKeys(f.keys.prefix, 'b');
      const bBefore = await dumpLedger(f.redis, b);
      const mainBefore = await dumpLedger(f.redis, f.keys);
      const routes = ledgerRoutes();
      for (const [method, path] of routes) {
        const where = `${method} ${PREFIX}${path}`;
        const other = await attempt(method, path, 'b', SECRET.onlyA);
        const main = await attempt(method, path, MAIN, SECRET.onlyA);
        const missing = await attempt(method, path, 'missing', SECRET.onlyA);
        // What a key that reaches every ledger gets for the missing one.
        const missingFree = await attempt(method, path, 'missing');
        for (const res of [other, main, missing, missingFree]) {
          expect(res.statusCode, `${where}: ${res.body}`).toBe(404);
          expect(res.headers['content-type'], where).toMatch(/^application\/problem\+json/);
        }
        if (method !== 'HEAD') {
          expectProblem(other, 404, 'LEDGER_NOT_FOUND');
          expect(generic(other, 'b'), where).toEqual(generic(missing, 'missing'));
          expect(generic(main, MAIN), where).toEqual(generic(missing, 'missing'));
          expect(missing.body, where).toBe(missingFree.body);
        }
        if (path !== '') {
          // The default ledger is not among the key's: the unprefixed route is 404 too.
          const unprefixed = await attempt(method, path, null, SECRET.onlyA);
          expect(unprefixed.statusCode, `${method} ${path}: ${unprefixed.body}`).toBe(404);
          if (method !== 'HEAD') {
            expect(generic(unprefixed, MAIN), where).toEqual(generic(missing, 'missing'));
          }
        }
        // The same call in the ledger the key reaches is answered (the key can do it).
        const own = await attempt(method, path, 'a', SECRET.onlyA);
        expect(own.statusCode, `${where} in a: ${own.body}`).toBeLessThan(300);
      }
      // Nothing reached b, the default ledger, or the missing one.
      expect(await dumpLedger(f.redis, b)).toBe(bBefore);
      expect(await dumpLedger(f.redis, f.keys)).toBe(mainBefore);
      expect(await dumpLedger(f.redis, ledgerKeys(f.keys.prefix, 'missing'))).toBe('[]');
    });

  test('GET /ledgers lists only the key\'s ledgers that exist', async () => {
    const list = async (secret: string) => ((await read(f, '/ledgers', secret)).ledgers as
      Array<{ name: string }>).map((l) => l.name);
    expect(await list(SECRET.onlyA)).toEqual(['a']);
    expect(await list(SECRET.some)).toEqual(['a', MAIN]);
    // The test key reaches every ledger.
    expect(await list(bearer().slice('Bearer '.length))).toEqual(expect.arrayContaining(['a',
      'b', MAIN, 'x']));
    const page = await read(f, '/ledgers?limit=1', SECRET.some);
    expect(page).toMatchObject({ ledgers: [{ name: 'a' }], next: 'a' });
    expect(await read(f, '/ledgers?after=a', SECRET.some))
      .toMatchObject({ ledgers: [{ name: MAIN }], next: null });
  });

  test('POST /ledgers of a name it does not list: 403 whether or not it exists', async () => {
    const existing = await call(f, 'POST', '/ledgers', { name: 'b' }, SECRET.onlyA);
    const missing = await call(f, 'POST', '/ledgers', { name: 'not-yet' }, SECRET.onlyA);
    for (const res of [existing, missing]) {
      expect(expectProblem(res, 403, 'FORBIDDEN').detail)
        .toBe('key "only-a" may create only the ledgers it names');
    }
    expect(existing.body).toBe(missing.body);
    expectProblem(await call(f, 'GET', '/ledgers/not-yet'), 404, 'LEDGER_NOT_FOUND');
    // Its own ledgers it may create, and find again.
    await ok(f, 200, '/ledgers', { name: 'a' }, SECRET.onlyA);
    await ok(f, 201, '/ledgers', { name: 'later' }, SECRET.some);
    await read(f, '/ledgers/later', SECRET.some);
    // A key that names the default ledger reaches it unprefixed and by name.
    await read(f, '/accounts/alice', SECRET.some);
    await read(f, `/ledgers/${MAIN}/accounts/alice`, SECRET.some);
    expectProblem(await call(f, 'GET', '/ledgers/ghost/accounts/alice', undefined, SECRET.some),
      404, 'LEDGER_NOT_FOUND');
  });
});

describe('the hold sweeper', () => {
  /** Generous: the suite shares two cores. */
  const RELEASE_DEADLINE_MS = 30_000;

  test('releases an expired hold in a ledger another instance created', async () => {
    // Two instances on one key prefix: `other` creates the ledger and the hold; `sweeping`
    // never serves a request of that ledger, so it can only know it from the index.
    const sweeping = await ledgersFixture({ sweepHolds: true });
    const other = await ledgersFixture({ keyPrefix: sweeping.keys.prefix });
    try {
      await ok(other, 201, '/ledgers', { name: 'swept' });
      const base = '/ledgers/swept';
      await ok(other, 201, `${base}/accounts`, { id: 'cash', currency: 'USD',
        overdraftLimit: 'unlimited' });
      await ok(other, 201, `${base}/accounts`, { id: 'alice', currency: 'USD' });
      await ok(other, 201, `${base}/transfers`, { id: 'fund', from: 'cash', to: 'alice',
        amount: '100' });
      // A hold that expires in a second, and one that does not: only the first is released.
      for (const [id, amount, timeoutSeconds] of [['short', '40', 1], ['long', '7', 3600]]) {
        await ok(other, 201, `${base}/transfers`, { id, from: 'alice', to: 'cash', amount,
          pending: true, timeoutSeconds });
      }
      expect(await read(other, `${base}/accounts/alice`)).toMatchObject({ debitsPending: '47' });
      const deadline = Date.now() + RELEASE_DEADLINE_MS;
      for (;;) {
        const alice = await read(other, `${base}/accounts/alice`);
        if (alice.debitsPending === '7') break;
        expect(Date.now(), 'the expired hold was not released in time').toBeLessThan(deadline);
        await sleep(50);
      }
      expect(await read(other, `${base}/transfers/short`))
        .toMatchObject({ pendingStatus: 'expired' });
      expect(await read(other, `${base}/transfers/long`))
        .toMatchObject({ pendingStatus: 'pending' });
      expect(await read(other, `${base}/accounts/alice`)).toMatchObject({ balance: '100',
        available: '93' });
      // The sweeping instance did it: `other` has no sweeper.
      const metrics = (await call(sweeping, 'GET', '/metrics')).body;
      expect(Number(/^ledger_hold_sweep_calls_total (\d+)$/m.exec(metrics)?.[1] ?? 0))
        .toBeGreaterThanOrEqual(1);
    } finally {
      await other.close();
      await sweeping.close();
    }
  });
});
