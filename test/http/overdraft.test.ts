/**
 * The overdraft boundary, by example: an account with overdraft limit L and balance B may pay
 * B + L, which leaves its balance at exactly −L; one more unit is INSUFFICIENT_FUNDS (422),
 * decided before any write. Checked for L = 0, for amounts at 2^128−1, across the 14-digit
 * limbs of the Lua arithmetic, and through `POST /transfers` and both kinds of batch (the
 * scripts share the decision, but each calls it with its own reads).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { dumpLedger, type Fixture, fixture, json, withoutRejection } from '../helpers/ledger.js';

let f: Fixture;
beforeAll(async () => { f = await fixture(); });
afterAll(async () => { await f.close(); });

type Mode = 'single' | 'batch' | 'atomic batch';
const MODES: Mode[] = ['single', 'batch', 'atomic batch'];
interface Decided { status: number; code?: string; fromBalanceAfter?: string }

let n = 0;
const post = async (url: string, payload: object) =>
  f.app.inject({ method: 'POST', url, headers: json, payload });

/** One transfer through `mode`, answered as `POST /transfers` would answer it. */
async function send(mode: Mode, from: string, to: string, amount: bigint): Promise<Decided> {
  const t = { id: `t${n++}`, from, to, amount: amount.toString() };
  if (mode === 'single') {
    const res = await post('/transfers', t);
    const body = res.json();
    return { status: res.statusCode, code: body.code, fromBalanceAfter: body.fromBalanceAfter };
  }
  const res = await post('/transfers/batch', { atomic: mode === 'atomic batch', transfers: [t] });
  const body = res.json();
  if (res.statusCode !== 200) return { status: res.statusCode, code: body.code };
  const r = body.results[0];
  return { status: r.status, code: r.problem?.code,
    fromBalanceAfter: r.transfer?.fromBalanceAfter };
}

/** New account ids, one per name given. */
const fresh = <T extends string[]>(...names: T) =>
  names.map((name) => `${name}${n++}`) as { [K in keyof T]: string };

async function account(id: string) {
  const res = await f.app.inject({ method: 'GET', url: `/accounts/${id}` });
  expect(res.statusCode).toBe(200);
  const { balance, debits, credits } = res.json();
  return { balance, debits, credits };
}

async function createAccount(id: string, overdraftLimit: string) {
  const res = await post('/accounts', { id, currency: 'XTS', overdraftLimit });
  expect(res.statusCode, res.body).toBe(201);
}

/**
 * `amount` from `from` is INSUFFICIENT_FUNDS (or `code`), and changes nothing but the record of
 * the rejection (an atomic batch records nothing).
 */
async function expectRefused(mode: Mode, from: string, to: string, amount: bigint,
  code = 'INSUFFICIENT_FUNDS') {
  const before = await dumpLedger(f.redis, f.keys);
  const id = `t${n}`;
  expect(await send(mode, from, to, amount)).toEqual({ status: 422, code });
  const after = await dumpLedger(f.redis, f.keys);
  if (mode === 'atomic batch') expect(after).toBe(before);
  else expect(withoutRejection(after, f.keys, id)).toEqual(JSON.parse(before));
}

/** [what, overdraft limit L, balance B]; B + L is at most 2^128−1, so one transfer pays it. */
const EDGES: Array<[string, bigint, bigint]> = [
  ['limit 100, balance 30', 100n, 30n],
  ['limit 0, balance 5', 0n, 5n],
  ['limit 0, balance 2^128-1', 0n, AMOUNT_MAX],
  ['limit 2^128-1, balance 0', AMOUNT_MAX, 0n],
  ['limit 2^128-2, balance 1', AMOUNT_MAX - 1n, 1n],
  ['limit 1, balance 2^128-2', 1n, AMOUNT_MAX - 1n],
  ['limit 2^64, balance 10^14-1 (one limb below two)', 2n ** 64n, 10n ** 14n - 1n],
];

describe.each(MODES)('%s', (mode) => {
  test.each(EDGES)('%s: the balance reaches exactly -L, one unit more is refused',
    async (_name, limit, funds) => {
      const [src, payer, sink] = fresh('src', 'payer', 'sink');
      await createAccount(src, 'unlimited');
      await createAccount(payer, limit.toString());
      await createAccount(sink, '0');
      if (funds > 0n) {
        expect(await send('single', src, payer, funds)).toMatchObject({ status: 201 });
      }
      const funded = { balance: funds.toString(), debits: '0', credits: funds.toString() };
      expect(await account(payer)).toEqual(funded);
      if (funds + limit + 1n <= AMOUNT_MAX) {
        await expectRefused(mode, payer, sink, funds + limit + 1n);
        expect(await account(payer)).toEqual(funded);
      }
      expect(await send(mode, payer, sink, funds + limit))
        .toEqual({ status: 201, fromBalanceAfter: (-limit).toString() });
      const drawn = { balance: (-limit).toString(), debits: (funds + limit).toString(),
        credits: funds.toString() };
      expect(await account(payer)).toEqual(drawn);
      expect(await account(sink)).toMatchObject({ balance: (funds + limit).toString() });
      await expectRefused(mode, payer, sink, 1n);
      expect(await account(payer)).toEqual(drawn);
    });

  test('credits at 2^128-1, limit 5: funds allow 5 more, but debits would pass 2^128-1',
    async () => {
      const [src, payer, sink, sink2] = fresh('src', 'payer', 'sink', 'sink');
      await createAccount(src, 'unlimited');
      await createAccount(payer, '5');
      await createAccount(sink, '0');
      await createAccount(sink2, '0');
      expect(await send('single', src, payer, AMOUNT_MAX)).toMatchObject({ status: 201 });
      expect(await send(mode, payer, sink, AMOUNT_MAX))
        .toEqual({ status: 201, fromBalanceAfter: '0' });
      const spent = { balance: '0', debits: AMOUNT_MAX.toString(),
        credits: AMOUNT_MAX.toString() };
      // Funds first: debits + 6 exceed credits + limit (both past 2^128-1, compared exactly).
      await expectRefused(mode, payer, sink2, 6n);
      // Within credits + limit, but the debits total would be 2^128-1 + 5.
      await expectRefused(mode, payer, sink2, 5n, 'BALANCE_OVERFLOW');
      expect(await account(payer)).toEqual(spent);
    });
});
