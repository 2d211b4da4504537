/**
 * A decided id is final: replays return the original status, body and a replay header; any
 * changed field is a 409 naming it; concurrent duplicates apply once.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Fixture, fixture, json, listen, postJson } from '../helpers/ledger.js';

let f: Fixture;
const post = (url: string, payload: object) =>
  f.app.inject({ method: 'POST', url, headers: json, payload });

beforeAll(async () => {
  f = await fixture();
  await post('/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  await post('/accounts', { id: 'alice', currency: 'USD' });
  await post('/accounts', { id: 'bob', currency: 'USD' });
  await post('/accounts', { id: 'euro', currency: 'EUR', overdraftLimit: 'unlimited' });
});
afterAll(async () => { await f.close(); });

describe('transfer replays', () => {
  const original = {
    id: 'p1', from: 'cash', to: 'alice', amount: '300', metadata: { a: '1', b: '2' },
  };

  test('an identical replay returns the same status and body, ' +
    'with Idempotent-Replayed', async () => {
    const first = await post('/transfers', original);
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    // Equivalent spellings are the same request: amount as a number, metadata in another
    // order, the currency given explicitly as the accounts' currency.
    for (const same of [original, { ...original, amount: 300 },
      { ...original, metadata: { b: '2', a: '1' } }, { ...original, currency: 'USD' }]) {
      const again = await post('/transfers', same);
      expect(again.statusCode).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toBe(first.body);
    }
    expect((await f.app.inject({ method: 'GET', url: '/accounts/alice' })).json().balance)
      .toBe('300');
  });

  test.each([
    ['from', { from: 'bob' }],
    ['to', { to: 'bob' }],
    ['amount', { amount: '301' }],
    ['currency', { currency: 'EUR' }],
    ['metadata', { metadata: { a: '1' } }],
    ['from, to, amount', { from: 'alice', to: 'cash', amount: '1' }],
  ])('a different %s → 409 naming it, nothing applied', async (names, change) => {
    const res = await post('/transfers', { ...original, ...change });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS' });
    expect(res.json().detail).toBe(`transfer "p1" was decided with different ${names}`);
    expect((await f.app.inject({ method: 'GET', url: '/accounts/alice' })).json().balance)
      .toBe('300');
  });

  test('a rejection is recorded and replayed with the same problem body', async () => {
    const request = { id: 'p2', from: 'bob', to: 'alice', amount: '5' };
    const first = await post('/transfers', request);
    expect(first.statusCode).toBe(422);
    expect(first.json().code).toBe('INSUFFICIENT_FUNDS');
    // Funding bob afterwards does not change the decided outcome.
    expect((await post('/transfers',
      { id: 'fund-bob', from: 'cash', to: 'bob', amount: '50' })).statusCode).toBe(201);
    const again = await post('/transfers', request);
    expect(again.statusCode).toBe(422);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first.body);
    expect((await post('/transfers', { ...request, amount: '6' })).statusCode).toBe(409);
  });

  test('an omitted currency means the accounts\' currency, on a rejection too', async () => {
    const request = { id: 'p3', from: 'ghost', to: 'alice', amount: '5' };
    expect((await post('/transfers', request)).statusCode).toBe(422);
    // The accounts' currency is known from "alice": USD.
    expect((await post('/transfers', { ...request, currency: 'USD' })).statusCode).toBe(422);
    expect((await post('/transfers', { ...request, currency: 'EUR' })).statusCode).toBe(409);
    const mismatch = { id: 'p4', from: 'alice', to: 'euro', amount: '1', currency: 'EUR' };
    expect((await post('/transfers', mismatch)).json().code).toBe('CURRENCY_MISMATCH');
    // Omitted now means alice's USD, which differs from the EUR given originally.
    expect((await post('/transfers', { ...mismatch, currency: undefined })).statusCode).toBe(409);
  });

  test('50 concurrent identical requests over HTTP apply once and answer identically', async () => {
    const request = { id: 'c50', from: 'cash', to: 'bob', amount: '7' };
    const before = (await f.app.inject({ method: 'GET', url: '/accounts/bob' })).json();
    const base = await listen(f);
    const replies = await Promise.all(Array.from({ length: 50 }, () =>
      postJson(base, '/transfers', request)));
    expect(new Set(replies.map((r) => r.status))).toEqual(new Set([201]));
    expect(new Set(replies.map((r) => r.text)).size).toBe(1);
    expect(replies.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    const after = (await f.app.inject({ method: 'GET', url: '/accounts/bob' })).json();
    expect(BigInt(after.balance) - BigInt(before.balance)).toBe(7n);
    const entries = await f.app.inject({ method: 'GET', url: '/accounts/bob/entries?limit=1000' });
    expect(entries.json().entries.filter((e: { transferId: string }) => e.transferId === 'c50'))
      .toHaveLength(1);
  });
});

describe('account replays', () => {
  test('no id means a new account each time; an id makes creation idempotent', async () => {
    const a = await post('/accounts', { currency: 'USD' });
    const b = await post('/accounts', { currency: 'USD' });
    expect(a.json().id).not.toBe(b.json().id);
    const replies = await Promise.all(Array.from({ length: 20 }, () =>
      post('/accounts', { id: 'once', currency: 'USD', metadata: { k: 'v' } })));
    expect(replies.filter((r) => r.statusCode === 201)).toHaveLength(1);
    expect(replies.filter((r) => r.statusCode === 200)).toHaveLength(19);
  });
});
