/**
 * Holds in batches (atomic or not), and expired holds released by the app's own sweeper
 * (fixture({ sweepHolds: true })): on the real clock, a hold of 1 s is released with nobody
 * asking, never before its expiresAt; on a clock the test controls, the sweeper leaves it alone
 * 1 ms before and releases it at expiresAt.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Fixture, fixture } from '../helpers/ledger.js';
import { expectProblem, requests } from './requests.js';

/** Generous: the suite shares two cores. */
const RELEASE_DEADLINE_MS = 60_000;
const POLL_MS = 25;

let f: Fixture;
const { post, get, ok, account, dump } = requests(() => f);
let n = 0;
const fresh = (what: string) => `${what}-${n++}`;

beforeAll(async () => {
  f = await fixture();
  await ok(201, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  await ok(201, '/accounts', { id: 'bob', currency: 'USD' });
});
afterAll(async () => { await f.close(); });

/** A new account holding `amount`. */
async function funded(amount: string): Promise<string> {
  const id = fresh('acct');
  await ok(201, '/accounts', { id, currency: 'USD' });
  await ok(201, '/transfers', { id: fresh('fund'), from: 'cash', to: id, amount });
  return id;
}

interface Result { id: string; status: number; replayed: boolean;
  transfer?: Record<string, unknown>; problem?: { code: string } }

describe('holds in batches', () => {
  test('atomic: holds and transfers together; its own holds count against the funds',
    async () => {
      const dave = await funded('1000');
      const [h, t] = [fresh('h'), fresh('t')];
      const res = await ok(200, '/transfers/batch', { atomic: true, transfers: [
        { id: h, from: dave, to: 'bob', amount: '600', pending: true, timeoutSeconds: 60 },
        { id: t, from: dave, to: 'bob', amount: '300' }] });
      const results = res.results as Result[];
      expect(results.map((r) => [r.id, r.status, r.transfer?.kind]))
        .toEqual([[h, 201, 'hold'], [t, 201, 'transfer']]);
      expect(results[0]?.transfer).toMatchObject({ pendingStatus: 'pending',
        expiresAt: expect.any(String) });
      expect(await account(dave)).toMatchObject({ balance: '700', debitsPending: '600',
        available: '100' });
      // 60 + 50 > 100 available: the second hold spoils the batch, and nothing is applied.
      const before = await dump();
      const [x, y] = [fresh('h'), fresh('h')];
      const refused = await post('/transfers/batch', { atomic: true, transfers: [
        { id: x, from: dave, to: 'bob', amount: '60', pending: true },
        { id: y, from: dave, to: 'bob', amount: '50', pending: true }] });
      expectProblem(refused, 422, 'INSUFFICIENT_FUNDS');
      expect(refused.json()).toMatchObject({ index: 1, transferId: y });
      expect(await dump()).toBe(before);
      for (const id of [x, y]) expect((await get(`/transfers/${id}`)).statusCode).toBe(404);
      // A hold made by a batch settles like any other.
      expect(await ok(201, `/transfers/${h}/post`, { id: fresh('post'), amount: '100' }))
        .toMatchObject({ kind: 'post', pendingId: h, fromBalanceAfter: '600' });
      expect(await account(dave)).toMatchObject({ debitsPending: '0', available: '600' });
    });

  test('not atomic: each hold decided on its own, recorded, and replayed', async () => {
    const erin = await funded('100');
    const ids = [fresh('h'), fresh('h'), fresh('t'), fresh('h')];
    const body = { atomic: false, transfers: [
      { id: ids[0], from: erin, to: 'bob', amount: '70', pending: true },
      { id: ids[1], from: erin, to: 'bob', amount: '31', pending: true },
      { id: ids[2], from: erin, to: 'bob', amount: '30' },
      { id: ids[3], from: 'cash', to: erin, amount: '5', pending: true, timeoutSeconds: 1 }] };
    const res = await post('/transfers/batch', body);
    expect(res.statusCode, res.body).toBe(200);
    const results = res.json().results as Result[];
    expect(results.map((r) => [r.status, r.transfer?.kind ?? r.problem?.code]))
      .toEqual([[201, 'hold'], [422, 'INSUFFICIENT_FUNDS'], [201, 'transfer'], [201, 'hold']]);
    expect((await get(`/transfers/${ids[1]}`)).json())
      .toMatchObject({ status: 'rejected', kind: 'hold', reason: 'INSUFFICIENT_FUNDS' });
    expect(await account(erin)).toMatchObject({ balance: '70', debitsPending: '70',
      creditsPending: '5', available: '0' });
    const before = await dump();
    const again = (await ok(200, '/transfers/batch', body)).results as Result[];
    expect(again.map((r) => r.replayed)).toEqual([true, true, true, true]);
    expect(again.map(({ replayed: _, ...r }) => r))
      .toEqual(results.map(({ replayed: _, ...r }) => r));
    expect(await dump()).toBe(before);
  });

  test('an item with timeoutSeconds but no pending: 400, nothing applied', async () => {
    const before = await dump();
    const res = await post('/transfers/batch', { atomic: false, transfers: [
      { id: fresh('t'), from: 'cash', to: 'bob', amount: '1' },
      { id: fresh('t'), from: 'cash', to: 'bob', amount: '1', timeoutSeconds: 5 }] });
    expect(expectProblem(res, 400, 'VALIDATION_ERROR').detail).toMatch(/^transfers\/1: /);
    expect(await dump()).toBe(before);
  });
});

/** The sweeper's script calls so far (one with holds to release, at least), from /metrics. */
async function sweepCalls(g: Fixture): Promise<number> {
  const text = (await g.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = /^ledger_hold_sweep_calls_total (\d+)$/m.exec(text);
  return Number(line?.[1] ?? 0);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + RELEASE_DEADLINE_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${RELEASE_DEADLINE_MS} ms: ${what}`);
    await sleep(POLL_MS);
  }
}

/** A ledger with the sweeper on, and alice holding 100. */
async function sweptLedger(now?: () => number) {
  const g = await fixture({ sweepHolds: true, ...(now ? { now } : {}) });
  const s = requests(() => g);
  await s.ok(201, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  for (const id of ['alice', 'bob']) await s.ok(201, '/accounts', { id, currency: 'USD' });
  await s.ok(201, '/transfers', { id: 'fund', from: 'cash', to: 'alice', amount: '100' });
  /** A hold of alice's for bob, of 1 s; its expiresAt. */
  const hold = async (id: string, amount: string) => {
    const h = await s.ok(201, '/transfers', { id, from: 'alice', to: 'bob', amount,
      pending: true, timeoutSeconds: 1 });
    const expiresAt = Date.parse(String(h.expiresAt));
    expect(expiresAt).toBe(Date.parse(String(h.createdAt)) + 1000);
    return expiresAt;
  };
  return { g, s, hold };
}

/** Every hold released exactly: the posted balances as they were, no reservation left. */
async function expectReleased(s: ReturnType<typeof requests>, ids: string[]): Promise<void> {
  expect(await s.account('alice')).toMatchObject({ balance: '100', debitsPending: '0',
    available: '100' });
  expect(await s.account('bob')).toMatchObject({ balance: '0', creditsPending: '0' });
  for (const id of ids) {
    expect((await s.get(`/transfers/${id}`)).json().pendingStatus).toBe('expired');
    expectProblem(await s.post(`/transfers/${id}/post`, { id: `${id}-late` }), 422,
      'PENDING_TRANSFER_EXPIRED');
  }
}

describe('expiry by the service itself (the sweeper)', () => {
  test('real clock: a hold of 1 s is released with nobody asking, not before its expiresAt',
    async () => {
      const { g, s, hold } = await sweptLedger();
      try {
        const expiresAt = await hold('short', '40');
        await until('the hold released', async () => {
          const reserved = (await s.account('alice')).debitsPending;
          const seenAt = Date.now();
          if (reserved === '40') return undefined;
          expect(reserved).toBe('0');
          // Seen released at seenAt, so released by then: never before its expiry.
          expect(seenAt).toBeGreaterThanOrEqual(expiresAt);
          return true;
        });
        await expectReleased(s, ['short']);
        expect(await sweepCalls(g)).toBeGreaterThanOrEqual(1);
      } finally {
        await g.close();
      }
    });

  test('controlled clock: a sweep 1 ms before expiresAt leaves the hold; one at it releases it',
    async () => {
      let clock = Date.now();
      const { g, s, hold } = await sweptLedger(() => clock);
      try {
        await hold('first', '30');
        clock += 500;
        const expiresAt = await hold('short', '40');
        // The only time the clock ever shows past `first`'s expiry is 1 ms before `short`'s:
        // the sweep that releases `first` runs then, and must leave `short` alone.
        clock = expiresAt - 1;
        await until('first released', async () =>
          ((await s.account('alice')).debitsPending === '40' ? true : undefined));
        expect(await sweepCalls(g)).toBeGreaterThanOrEqual(1);
        expect((await s.get('/transfers/short')).json().pendingStatus).toBe('pending');
        clock = expiresAt;
        await until('short released', async () =>
          ((await s.account('alice')).debitsPending === '0' ? true : undefined));
        await expectReleased(s, ['first', 'short']);
      } finally {
        await g.close();
      }
    });
});
