/**
 * Holds, posts and voids over HTTP (docs/holds.md): each rejection of a post or a void in
 * precedence order, every case built so that each later check would fail too; replays byte for
 * byte; 409s naming the fields; 400s recording nothing; expiry at its exact boundary on a clock
 * the test controls. Batches of holds and the sweeper: test/http/holds-sweep.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX, limits } from '../../src/config/limits.js';
import { type Fixture, fixture } from '../helpers/ledger.js';
import { expectProblem, expectRecordedRejection, expectReplay, requests } from './requests.js';

let clock = Date.UTC(2026, 11, 6, 10);
const iso = (ms: number) => new Date(ms).toISOString();
let f: Fixture;
const { post, get, ok, account, dump } = requests(() => f);
let n = 0;
const fresh = (what: string) => `${what}-${n++}`;

beforeAll(async () => {
  f = await fixture({ now: () => clock });
  await ok(201, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  for (const id of ['alice', 'bob']) await ok(201, '/accounts', { id, currency: 'USD' });
  await ok(201, '/transfers', { id: 'fund', from: 'cash', to: 'alice', amount: '100000' });
});
afterAll(async () => { await f.close(); });

/** A hold of alice's for bob; its id. */
async function hold(amount: string, extra: Record<string, unknown> = {}): Promise<string> {
  const id = fresh('hold');
  expect(await ok(201, '/transfers', { id, from: 'alice', to: 'bob', amount, pending: true,
    ...extra })).toMatchObject({ kind: 'hold', pendingStatus: 'pending' });
  return id;
}
type Verb = 'post' | 'void';
const settle = (verb: Verb, target: string, body: Record<string, unknown>) =>
  post(`/transfers/${target}/${verb}`, body);
const pending = async (id: string) => {
  const a = await account(id);
  return { balance: a.balance, debitsPending: BigInt(String(a.debitsPending)),
    creditsPending: BigInt(String(a.creditsPending)) };
};

describe('holds, posts and voids', () => {
  test('a hold reserves without moving: 201 with expiresAt; pending totals, available',
    async () => {
      const [a, b] = [await pending('alice'), await pending('bob')];
      const id = fresh('hold');
      const send = () => post('/transfers', { id, from: 'alice', to: 'bob', amount: '2500',
        pending: true, timeoutSeconds: 600, metadata: { order: '7' } });
      const res = await send();
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toEqual({ id, from: 'alice', to: 'bob', amount: '2500',
        status: 'committed', metadata: { order: '7' }, createdAt: iso(clock), kind: 'hold',
        currency: 'USD', seq: expect.stringMatching(/^[1-9]\d*$/), fromBalanceAfter: a.balance,
        toBalanceAfter: b.balance, createdBy: 'test', pendingStatus: 'pending',
        expiresAt: iso(clock + 600_000) });
      expect((await get(`/transfers/${id}`)).json()).toEqual(res.json());
      await expectReplay(f, res, send);
      const alice = await account('alice');
      expect(alice).toMatchObject({ balance: a.balance,
        debitsPending: String(a.debitsPending + 2500n),
        available: String(BigInt(String(a.balance)) - a.debitsPending - 2500n) });
      expect(await pending('bob')).toEqual({ ...b, creditsPending: b.creditsPending + 2500n });
      // Holds are no entries.
      const entries = (await get('/accounts/alice/entries')).json() as
        { entries: Array<{ transferId: string }> };
      expect(entries.entries.map((e) => e.transferId)).not.toContain(id);
      // Without a timeout it never expires.
      expect((await get(`/transfers/${await hold('1')}`)).json().expiresAt).toBeNull();
    });

  test('the funds check counts pending debits, never pending credits', async () => {
    const carol = fresh('carol');
    await ok(201, '/accounts', { id: carol, currency: 'USD' });
    await ok(201, '/transfers', { id: fresh('t'), from: 'cash', to: carol, amount: '1000' });
    await ok(201, '/transfers', { id: fresh('h'), from: carol, to: 'bob', amount: '600',
      pending: true });
    for (const pendingHold of [false, true]) {
      expectProblem(await post('/transfers', { id: fresh('t'), from: carol, to: 'bob',
        amount: '401', pending: pendingHold }), 422, 'INSUFFICIENT_FUNDS');
    }
    await ok(201, '/transfers', { id: fresh('t'), from: carol, to: 'bob', amount: '400' });
    // bob has nothing but pending credits: he cannot spend them.
    const dan = fresh('dan');
    await ok(201, '/accounts', { id: dan, currency: 'USD' });
    await ok(201, '/transfers', { id: fresh('h'), from: 'cash', to: dan, amount: '50',
      pending: true });
    expectProblem(await post('/transfers', { id: fresh('t'), from: dan, to: 'bob', amount: '1' }),
      422, 'INSUFFICIENT_FUNDS');
  });

  test('a post moves all or part and releases the rest; a void releases all', async () => {
    const [a, b] = [await pending('alice'), await pending('bob')];
    const [partial, whole, voided] = [await hold('1000'), await hold('300'), await hold('200')];
    const postId = fresh('post');
    const send = () => settle('post', partial, { id: postId, amount: '600',
      metadata: { capture: '1' } });
    const res = await send();
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ id: postId, from: 'alice', to: 'bob', amount: '600',
      status: 'committed', metadata: { capture: '1' }, createdAt: iso(clock), kind: 'post',
      currency: 'USD', seq: expect.stringMatching(/^[1-9]\d*$/),
      fromBalanceAfter: String(BigInt(String(a.balance)) - 600n),
      toBalanceAfter: String(BigInt(String(b.balance)) + 600n), createdBy: 'test',
      pendingId: partial, reversedAmount: '0' });
    await expectReplay(f, res, send);
    expect((await get(`/transfers/${partial}`)).json())
      .toMatchObject({ pendingStatus: 'posted', postedAmount: '600' });
    const all = await ok(201, `/transfers/${whole}/post`, { id: fresh('post') });
    expect(all).toMatchObject({ amount: '300', pendingId: whole });
    const v = await ok(201, `/transfers/${voided}/void`, { id: fresh('void') });
    expect(v).toMatchObject({ kind: 'void', amount: '200', pendingId: voided,
      fromBalanceAfter: String(BigInt(String(a.balance)) - 900n) });
    expect((await get(`/transfers/${voided}`)).json()).toMatchObject({ pendingStatus: 'voided' });
    // Every reservation released, 900 moved.
    expect(await pending('alice')).toEqual({ ...a,
      balance: String(BigInt(String(a.balance)) - 900n) });
    expect(await pending('bob')).toEqual({ ...b,
      balance: String(BigInt(String(b.balance)) + 900n) });
    // The post is an entry of its kind; the void is none.
    const entries = (await get('/accounts/alice/entries?limit=3')).json() as
      { entries: Array<{ transferId: string; kind: string }> };
    expect(entries.entries.map((e) => [e.kind, e.transferId]).slice(0, 2))
      .toEqual([['post', all.id], ['post', postId]]);
  });

  test('a hold answers its creation as first decided, even once posted', async () => {
    const id = fresh('hold');
    const send = () => post('/transfers', { id, from: 'alice', to: 'bob', amount: '5',
      pending: true, timeoutSeconds: 60 });
    const first = await send();
    await ok(201, `/transfers/${id}/post`, { id: fresh('post') });
    clock += 61_000;
    await expectReplay(f, first, send);
    expect(first.json().pendingStatus).toBe('pending');
  });
});

/** A hold of 100 with a timeout of 60 s, `then` done to it, and the clock moved past expiry. */
async function heldThen(then: (id: string) => Promise<void>): Promise<string> {
  const id = await hold('100', { timeoutSeconds: 60 });
  await then(id);
  clock += 60_000;
  return id;
}
/**
 * The rejections of a post or void in precedence order. Each target fails every later check
 * too: the post asks 101 (more than any hold here), a settled hold is also past its expiry.
 */
const REJECTIONS: Array<[string, string, Verb[], () => Promise<string>]> = [
  ['PENDING_TRANSFER_NOT_FOUND', 'no such id', ['post', 'void'], async () => 'never-held'],
  ['PENDING_TRANSFER_NOT_FOUND', 'a rejected hold', ['post', 'void'], async () => {
    const id = fresh('big');
    expectProblem(await post('/transfers', { id, from: 'alice', to: 'bob', pending: true,
      amount: AMOUNT_MAX.toString() }), 422, 'INSUFFICIENT_FUNDS');
    return id;
  }],
  ['PENDING_TRANSFER_NOT_PENDING', 'a transfer', ['post', 'void'],
    async () => String((await ok(201, '/transfers', { id: fresh('t'), from: 'alice',
      to: 'bob', amount: '100' })).id)],
  ['PENDING_TRANSFER_NOT_PENDING', 'a post', ['post', 'void'], async () => {
    const id = fresh('post');
    await heldThen(async (h) => { await ok(201, `/transfers/${h}/post`, { id }); });
    return id;
  }],
  ['PENDING_TRANSFER_ALREADY_POSTED', 'a posted hold', ['post', 'void'], () => heldThen(
    async (h) => { await ok(201, `/transfers/${h}/post`, { id: fresh('post'), amount: 1 }); })],
  ['PENDING_TRANSFER_ALREADY_VOIDED', 'a voided hold', ['post', 'void'], () => heldThen(
    async (h) => { await ok(201, `/transfers/${h}/void`, { id: fresh('void') }); })],
  ['PENDING_TRANSFER_EXPIRED', 'an expired hold', ['post', 'void'], () => heldThen(async () => {})],
  ['EXCEEDS_PENDING_AMOUNT', 'a hold of 100', ['post'], () => hold('100')],
];
const CASES = REJECTIONS.flatMap(([code, what, verbs, make]) =>
  verbs.map((verb) => [`${verb} ${code} (${what})`, verb, code, make] as const));

test.each(CASES)('422 %s: recorded under its own id, replayed, nothing else written',
  async (_name, verb, code, make) => {
    const target = await make();
    const id = fresh(verb);
    const [a, b] = [await pending('alice'), await pending('bob')];
    const released = code === 'PENDING_TRANSFER_EXPIRED';
    const res = await expectRecordedRejection(f, () => settle(verb, target,
      verb === 'post' ? { id, amount: '101' } : { id }), id, code, released);
    expect(res.json().detail).toContain(`"${target}"`);
    expect((await get(`/transfers/${id}`)).json()).toMatchObject({ kind: verb, pendingId: target });
    // Found expired, the hold is released there and then, exactly once.
    expect(await pending('alice')).toEqual(released
      ? { ...a, debitsPending: a.debitsPending - 100n } : a);
    expect(await pending('bob')).toEqual(released
      ? { ...b, creditsPending: b.creditsPending - 100n } : b);
    if (released) {
      expect((await get(`/transfers/${target}`)).json().pendingStatus).toBe('expired');
    }
  });

test('expiry at its boundary: 1 ms before expiresAt a post or void commits; at it, neither',
  async () => {
    const created = clock;
    const [early, earlyVoid, late, lateVoid] = [await hold('10', { timeoutSeconds: 10 }),
      await hold('10', { timeoutSeconds: 10 }), await hold('10', { timeoutSeconds: 10 }),
      await hold('10', { timeoutSeconds: 10 })];
    const expiresAt = created + 10_000;
    expect((await get(`/transfers/${late}`)).json().expiresAt).toBe(iso(expiresAt));
    clock = expiresAt - 1;
    const posted = await post(`/transfers/${early}/post`, { id: `${early}-post` });
    expect(posted.statusCode, posted.body).toBe(201);
    await ok(201, `/transfers/${earlyVoid}/void`, { id: `${earlyVoid}-void` });
    clock = expiresAt;
    expectProblem(await post(`/transfers/${late}/post`, { id: `${late}-post` }), 422,
      'PENDING_TRANSFER_EXPIRED');
    expectProblem(await post(`/transfers/${lateVoid}/void`, { id: `${lateVoid}-void` }), 422,
      'PENDING_TRANSFER_EXPIRED');
    for (const id of [late, lateVoid]) {
      expect((await get(`/transfers/${id}`)).json()).toMatchObject({ pendingStatus: 'expired' });
    }
    // Decided before the expiry, the post stays decided after it.
    await expectReplay(f, posted, () => post(`/transfers/${early}/post`, { id: `${early}-post` }));
  });

describe('409: the id was decided with other fields, named; nothing written', () => {
  const ids = { post: 'post-409', void: 'void-409', hold: 'hold-409' };
  let [held, other] = ['', ''];
  const holdBody = { id: ids.hold, from: 'alice', to: 'bob', amount: '7', pending: true,
    timeoutSeconds: 3600 };
  beforeAll(async () => {
    [held, other] = [await hold('100'), await hold('100')];
    await ok(201, `/transfers/${held}/post`, { id: ids.post, amount: '60',
      metadata: { a: '1' } });
    await ok(201, `/transfers/${other}/void`, { id: ids.void });
    await ok(201, '/transfers', holdBody);
  });
  const CONFLICTS: Array<[string, () => [string, Record<string, unknown>]]> = [
    ['amount', () => [`/transfers/${held}/post`, { id: ids.post, amount: '61',
      metadata: { a: '1' } }]],
    ['amount', () => [`/transfers/${held}/post`, { id: ids.post, metadata: { a: '1' } }]],
    ['holdId', () => [`/transfers/${other}/post`, { id: ids.post, amount: '60',
      metadata: { a: '1' } }]],
    ['metadata', () => [`/transfers/${held}/post`, { id: ids.post, amount: '60' }]],
    ['holdId', () => [`/transfers/${held}/void`, { id: ids.void }]],
    ['kind', () => [`/transfers/${held}/void`, { id: ids.post, metadata: { a: '1' } }]],
    ['kind', () => [`/transfers/${other}/post`, { id: ids.void }]],
    ['kind', () => ['/transfers/fund/reversals', { id: ids.post }]],
    ['kind', () => ['/transfers', { id: ids.void, from: 'alice', to: 'bob', amount: '100' }]],
    ['pending', () => ['/transfers', { ...holdBody, pending: undefined,
      timeoutSeconds: undefined }]],
    ['timeoutSeconds', () => ['/transfers', { ...holdBody, timeoutSeconds: 3601 }]],
  ];
  test.each(CONFLICTS)('409 naming %s', async (fields, make) => {
    const [url, body] = make();
    const before = await dump();
    const res = await post(url, body);
    const { detail } = expectProblem(res, 409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
    expect(detail).toMatch(new RegExp(`^transfer "${String(body.id)}" was decided with ` +
      `different (.*, )?${fields}(, .*)?$`));
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    expect(await dump()).toBe(before);
  });
});

describe('400: refused before anything is decided; nothing recorded', () => {
  let held = '';
  beforeAll(async () => { held = await hold('100'); });
  const toBob = { from: 'alice', to: 'bob', amount: '1' };
  const MAX = limits.HOLD_TIMEOUT_SECONDS_MAX;
  const BAD: Array<[string, () => string, Record<string, unknown>]> = [
    ['timeoutSeconds without pending', () => '/transfers', { ...toBob, timeoutSeconds: 60 }],
    ['timeoutSeconds, pending false', () => '/transfers',
      { ...toBob, pending: false, timeoutSeconds: 60 }],
    ['timeoutSeconds 0', () => '/transfers', { ...toBob, pending: true, timeoutSeconds: 0 }],
    [`timeoutSeconds ${MAX + 1}`, () => '/transfers',
      { ...toBob, pending: true, timeoutSeconds: MAX + 1 }],
    ['timeoutSeconds 1.5', () => '/transfers', { ...toBob, pending: true, timeoutSeconds: 1.5 }],
    ['timeoutSeconds "60"', () => '/transfers',
      { ...toBob, pending: true, timeoutSeconds: '60' }],
    ['pending "true"', () => '/transfers', { ...toBob, pending: 'true' }],
    ['a post of amount 0', () => `/transfers/${held}/post`, { amount: 0 }],
    ['a post of amount "0"', () => `/transfers/${held}/post`, { amount: '0' }],
    ['a post of 2^128', () => `/transfers/${held}/post`,
      { amount: (AMOUNT_MAX + 1n).toString() }],
    ['a post with an unknown field', () => `/transfers/${held}/post`, { pending: true }],
    ['a void with an amount', () => `/transfers/${held}/void`, { amount: '1' }],
    ['a void with an unknown field', () => `/transfers/${held}/void`, { reason: 'x' }],
  ];
  test.each(BAD)('400 VALIDATION_ERROR: %s', async (_name, url, fields) => {
    const id = fresh('bad');
    const before = await dump();
    expectProblem(await post(url(), { id, ...fields }), 400, 'VALIDATION_ERROR');
    expect(await dump()).toBe(before);
    expectProblem(await get(`/transfers/${id}`), 404, 'TRANSFER_NOT_FOUND');
  });

  test('the timeout bounds themselves are accepted: 1 s and 365 days', async () => {
    for (const timeoutSeconds of [1, MAX]) {
      const id = await hold('1', { timeoutSeconds });
      expect((await get(`/transfers/${id}`)).json().expiresAt)
        .toBe(iso(clock + timeoutSeconds * 1000));
    }
  });
});
