/**
 * Money is exact at every edge a float or int64 would break, and overflow is a rejection
 * decided before any write.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { dumpLedger, type Fixture, fixture, json, withoutRejection } from '../helpers/ledger.js';

let f: Fixture;
const post = (url: string, payload: unknown) =>
  f.app.inject({ method: 'POST', url, headers: json,
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
const account = async (id: string) =>
  (await f.app.inject({ method: 'GET', url: `/accounts/${id}` })).json();
let n = 0;

beforeAll(async () => {
  f = await fixture();
  for (const [id, od] of [
    ['src', 'unlimited'], ['src2', 'unlimited'], ['dst', '0'], ['top', '0'],
  ]) {
    expect((await post('/accounts', { id, currency: 'XTS', overdraftLimit: od })).statusCode)
      .toBe(201);
  }
});
afterAll(async () => { await f.close(); });

const EDGES: Array<[string, bigint]> = [
  ['2^53-1', 2n ** 53n - 1n], ['2^53', 2n ** 53n], ['2^53+1', 2n ** 53n + 1n],
  ['10^14-1 (one limb)', 10n ** 14n - 1n], ['10^14 (two limbs)', 10n ** 14n],
  ['10^15+1', 10n ** 15n + 1n], ['2^63-1', 2n ** 63n - 1n], ['2^63', 2n ** 63n],
  ['2^63+1', 2n ** 63n + 1n], ['2^64+1', 2n ** 64n + 1n], ['10^28+7', 10n ** 28n + 7n],
];

test.each(EDGES)('%s moves exactly, and balances stay exact', async (_name, amount) => {
  const before = BigInt((await account('dst')).balance);
  const res = await post('/transfers',
    { id: `e${n++}`, from: 'src', to: 'dst', amount: amount.toString() });
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json().toBalanceAfter).toBe((before + amount).toString());
  const after = await account('dst');
  expect(after.balance).toBe((before + amount).toString());
  expect(BigInt((await account('src')).balance) + BigInt(after.balance)).toBe(0n);
});

test('a JSON number is an amount only while it is a safe integer', async () => {
  const ok = await post('/transfers',
    `{"id":"num1","from":"src","to":"dst","amount":9007199254740991}`);
  expect(ok.statusCode).toBe(201);
  expect(ok.json().amount).toBe('9007199254740991');
  for (const text of ['9007199254740993', '9007199254740992', '1.5', '-1', '0', '1e400']) {
    const res = await post('/transfers', `{"id":"num2","from":"src","to":"dst","amount":${text}}`);
    expect(res.statusCode, text).toBe(400);
  }
});

test('2^128-1 fits; one more unit of credits is BALANCE_OVERFLOW, ' +
  'decided before any write', async () => {
  const fill = await post('/transfers',
    { id: 'fill', from: 'src2', to: 'top', amount: (AMOUNT_MAX - 5n).toString() });
  expect(fill.statusCode).toBe(201);
  const over = { id: 'over', from: 'src2', to: 'top', amount: '6' };
  const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
  const res = await post('/transfers', over);
  expect(res.statusCode).toBe(422);
  expect(res.json().code).toBe('BALANCE_OVERFLOW');
  expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, 'over')).toEqual(before);
  const exact = await post('/transfers', { ...over, id: 'exact', amount: '5' });
  expect(exact.statusCode).toBe(201);
  expect((await account('top')).balance).toBe(AMOUNT_MAX.toString());
});

test('debits of an unlimited account overflow at 2^128-1 too, ' +
  'and the balance reaches -(2^128-1)', async () => {
  const g = await fixture();
  const gpost = (payload: object) =>
    g.app.inject({ method: 'POST', url: '/transfers', headers: json, payload });
  for (const id of ['u', 'v']) {
    await g.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'XTS', overdraftLimit: 'unlimited' } });
  }
  expect((await gpost({ id: 'a', from: 'u', to: 'v', amount: AMOUNT_MAX.toString() })).statusCode)
    .toBe(201);
  const res = await gpost({ id: 'b', from: 'u', to: 'v', amount: '1' });
  expect(res.json().code).toBe('BALANCE_OVERFLOW');
  const u = (await g.app.inject({ method: 'GET', url: '/accounts/u' })).json();
  expect(u).toMatchObject({
    balance: `-${AMOUNT_MAX}`, debits: AMOUNT_MAX.toString(), credits: '0',
  });
  // Paying back is fine: balances are credits − debits, each bounded on its own.
  expect((await gpost({ id: 'c', from: 'v', to: 'u', amount: AMOUNT_MAX.toString() })).statusCode)
    .toBe(201);
  expect((await g.app.inject({ method: 'GET', url: '/accounts/u' })).json().balance).toBe('0');
  await g.close();
});

test('amounts above 2^128-1 are malformed (400), not recorded', async () => {
  for (const amount of [(AMOUNT_MAX + 1n).toString(), '9'.repeat(39), '1'.repeat(40)]) {
    const res = await post('/transfers', { id: 'huge', from: 'src', to: 'dst', amount });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe('VALIDATION_ERROR');
  }
  expect((await f.app.inject({ method: 'GET', url: '/transfers/huge' })).statusCode).toBe(404);
});
