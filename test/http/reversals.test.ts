/**
 * Reversals and closed accounts over HTTP (docs/holds.md): each rejection of a reversal in
 * precedence order, every case built so that each later check would fail too; partial
 * reversals adding up to at most the original; replays that move nothing; closing an account
 * (200, again 200, 404) and ACCOUNT_CLOSED for what names it, in transfers, holds and batches,
 * while holds opened before still settle.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { type Fixture, fixture } from '../helpers/ledger.js';
import { expectProblem, expectRecordedRejection, expectReplay, requests } from './requests.js';

let clock = Date.UTC(2026, 11, 6, 12);
const iso = (ms: number) => new Date(ms).toISOString();
let f: Fixture;
const { post, get, ok, account, dump } = requests(() => f);
let n = 0;
const fresh = (what: string) => `${what}-${n++}`;

beforeAll(async () => {
  f = await fixture({ now: () => clock });
  await ok(201, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  await ok(201, '/accounts', { id: 'sink', currency: 'USD', overdraftLimit: 'unlimited' });
});
afterAll(async () => { await f.close(); });

async function newAccount(overdraftLimit = '0', currency = 'USD'): Promise<string> {
  const id = fresh('acct');
  await ok(201, '/accounts', { id, currency, overdraftLimit });
  return id;
}
/** A committed transfer; its id. */
async function paid(from: string, to: string, amount: string): Promise<string> {
  const id = fresh('t');
  await ok(201, '/transfers', { id, from, to, amount });
  return id;
}
const reverse = (target: string, body: Record<string, unknown>) =>
  post(`/transfers/${target}/reversals`, body);

/** 100 from cash to a new account that has spent it all (to `sink`): its id and the transfer. */
async function spent(): Promise<{ to: string; t: string }> {
  const to = await newAccount();
  const t = await paid('cash', to, '100');
  await paid(to, 'sink', '100');
  return { to, t };
}

/**
 * The rejections of a reversal in precedence order; each target fails every later check too
 * (the reversal asks 101 of a transfer of 100 unless said otherwise).
 */
const REJECTIONS: Array<[string, string, () => Promise<[string, string | undefined]>]> = [
  ['TRANSFER_NOT_FOUND', 'no such id', async () => ['never-decided', AMOUNT_MAX.toString()]],
  ['NOT_REVERSIBLE', 'a hold', async () => {
    const id = fresh('h');
    await ok(201, '/transfers', { id, from: 'cash', to: await newAccount(), amount: '100',
      pending: true });
    return [id, '101'];
  }],
  ['NOT_REVERSIBLE', 'a void', async () => {
    const h = fresh('h');
    await ok(201, '/transfers', { id: h, from: 'cash', to: await newAccount(), amount: '100',
      pending: true });
    return [String((await ok(201, `/transfers/${h}/void`, { id: fresh('v') })).id), '101'];
  }],
  ['NOT_REVERSIBLE', 'a reversal', async () => {
    const t = await paid('cash', await newAccount(), '100');
    return [String((await ok(201, `/transfers/${t}/reversals`, { id: fresh('r'),
      amount: '1' })).id), '101'];
  }],
  ['NOT_REVERSIBLE', 'a rejected transfer', async () => {
    const id = fresh('t');
    expectProblem(await post('/transfers', { id, from: await newAccount(), to: 'cash',
      amount: '100' }), 422, 'INSUFFICIENT_FUNDS');
    return [id, '101'];
  }],
  ['EXCEEDS_REVERSIBLE_AMOUNT', 'more than the transfer, its payee closed and spent',
    async () => {
      const { to, t } = await spent();
      await ok(200, `/accounts/${to}/close`, {});
      return [t, '101'];
    }],
  ['EXCEEDS_REVERSIBLE_AMOUNT', 'nothing left and no amount', async () => {
    const t = await paid('cash', await newAccount(), '100');
    await ok(201, `/transfers/${t}/reversals`, { id: fresh('r') });
    return [t, undefined];
  }],
  ['ACCOUNT_CLOSED', 'its payee closed, and spent', async () => {
    const { to, t } = await spent();
    await ok(200, `/accounts/${to}/close`, {});
    return [t, '100'];
  }],
  ['INSUFFICIENT_FUNDS', 'its payee spent it', async () => {
    const { t } = await spent();
    return [t, undefined];
  }],
  ['INSUFFICIENT_FUNDS', 'its payee holds it for someone', async () => {
    const to = await newAccount();
    const t = await paid('cash', to, '100');
    await ok(201, '/transfers', { id: fresh('h'), from: to, to: 'sink', amount: '1',
      pending: true });
    return [t, undefined];
  }],
  ['BALANCE_OVERFLOW', "its payer's credits would pass 2^128-1", async () => {
    const [a, b, c] = [await newAccount('unlimited'), await newAccount('unlimited'),
      await newAccount('unlimited')];
    await paid(c, a, AMOUNT_MAX.toString());
    return [await paid(a, b, '1'), undefined];
  }],
];

test.each(REJECTIONS)('422 %s (%s): recorded under its own id, replayed, nothing else written',
  async (code, _what, make) => {
    const [target, amount] = await make();
    const id = fresh('rev');
    const res = await expectRecordedRejection(f, () => reverse(target,
      amount === undefined ? { id } : { id, amount }), id, code);
    const record = (await get(`/transfers/${id}`)).json();
    expect(record).toMatchObject({ kind: 'reversal', reverses: target });
    if (code === 'TRANSFER_NOT_FOUND') {
      // Nothing to name its accounts after: "" (docs/holds.md).
      expect(record).toMatchObject({ from: '', to: '' });
      expect(res.json().detail).toContain(`"${target}"`);
    }
  });

describe('reversals', () => {
  test('partial reversals add up to the original at most; the default is what is left',
    async () => {
      const alice = await newAccount();
      const t = await paid('cash', alice, '100');
      const first = await ok(201, `/transfers/${t}/reversals`, { id: fresh('r'), amount: '30',
        metadata: { reason: 'returned' } });
      expect(first).toEqual({ id: first.id, from: alice, to: 'cash', amount: '30',
        status: 'committed', metadata: { reason: 'returned' }, createdAt: iso(clock),
        kind: 'reversal', currency: 'USD', seq: expect.stringMatching(/^[1-9]\d*$/),
        fromBalanceAfter: '70', toBalanceAfter: expect.any(String), createdBy: 'test',
        reverses: t });
      expect((await get(`/transfers/${t}`)).json()).toMatchObject({ reversedAmount: '30' });
      const rest = await ok(201, `/transfers/${t}/reversals`, { id: fresh('r') });
      expect(rest).toMatchObject({ amount: '70', fromBalanceAfter: '0' });
      expect((await get(`/transfers/${t}`)).json()).toMatchObject({ reversedAmount: '100' });
      expectProblem(await reverse(t, { id: fresh('r'), amount: '1' }), 422,
        'EXCEEDS_REVERSIBLE_AMOUNT');
      const entries = (await get(`/accounts/${alice}/entries`)).json() as
        { entries: Array<{ kind: string; amount: string }> };
      expect(entries.entries.map((e) => [e.kind, e.amount]))
        .toEqual([['reversal', '-70'], ['reversal', '-30'], ['transfer', '100']]);
    });

  test('a replay moves nothing; a post can be reversed too', async () => {
    const alice = await newAccount();
    const h = fresh('h');
    await ok(201, '/transfers', { id: h, from: 'cash', to: alice, amount: '50', pending: true });
    const p = String((await ok(201, `/transfers/${h}/post`, { id: fresh('p') })).id);
    const id = fresh('r');
    const send = () => reverse(p, { id, amount: '20' });
    const res = await send();
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ reverses: p, amount: '20', fromBalanceAfter: '30' });
    await expectReplay(f, res, send);
    expect(await account(alice)).toMatchObject({ balance: '30' });
    expect((await get(`/transfers/${p}`)).json()).toMatchObject({ kind: 'post',
      reversedAmount: '20' });
  });

  test('409 naming the fields; nothing written', async () => {
    const [t, u] = [await paid('cash', await newAccount(), '10'),
      await paid('cash', await newAccount(), '10')];
    const id = fresh('r');
    await ok(201, `/transfers/${t}/reversals`, { id, amount: '4', metadata: { a: '1' } });
    for (const [fields, target, body] of [
      ['amount', t, { id, amount: '5', metadata: { a: '1' } }],
      ['amount', t, { id, metadata: { a: '1' } }],
      ['transferId', u, { id, amount: '4', metadata: { a: '1' } }],
      ['metadata', t, { id, amount: '4' }],
    ] as const) {
      const before = await dump();
      expect(expectProblem(await reverse(target, body), 409,
        'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS').detail)
        .toBe(`transfer "${id}" was decided with different ${fields}`);
      expect(await dump()).toBe(before);
    }
  });

  test('400: amount 0, an unknown field; nothing recorded', async () => {
    const t = await paid('cash', await newAccount(), '10');
    for (const body of [{ amount: 0 }, { amount: '0' }, { amount: '-1' }, { pending: true }]) {
      const id = fresh('r');
      const before = await dump();
      expectProblem(await reverse(t, { id, ...body }), 400, 'VALIDATION_ERROR');
      expect(await dump()).toBe(before);
      expect((await get(`/transfers/${id}`)).statusCode).toBe(404);
    }
  });
});

describe('closed accounts', () => {
  test('close: 200 with closedAt; again 200 with the same bytes; 404 for no account',
    async () => {
      const id = await newAccount();
      await paid('cash', id, '5');
      const send = () => post(`/accounts/${id}/close`, {});
      const res = await send();
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      expect(res.json()).toMatchObject({ id, balance: '5', closedAt: iso(clock) });
      expect((await get(`/accounts/${id}`)).json()).toEqual(res.json());
      clock += 1000;
      await expectReplay(f, res, send);
      const before = await dump();
      expectProblem(await post('/accounts/nobody/close', {}), 404, 'ACCOUNT_NOT_FOUND');
      for (const body of [{ reason: 'x' }, '']) {
        expectProblem(await post(`/accounts/${id}/close`, body), 400, 'VALIDATION_ERROR');
      }
      expect(await dump()).toBe(before);
    });

  test('ACCOUNT_CLOSED: right after ACCOUNT_NOT_FOUND, for transfers and holds', async () => {
    const closed = await newAccount();
    const [euro, poor] = [await newAccount('0', 'EUR'), await newAccount()];
    await ok(200, `/accounts/${closed}/close`, {});
    // Closed, and also another currency and no funds: ACCOUNT_CLOSED first.
    for (const pending of [false, true]) {
      for (const [from, to] of [[closed, euro], [poor, closed]]) {
        const id = fresh('t');
        await expectRecordedRejection(f, () => post('/transfers', { id, from, to,
          amount: '100', currency: 'GBP', pending }), id, 'ACCOUNT_CLOSED');
        expect((await get(`/transfers/${id}`)).json().kind).toBe(pending ? 'hold' : 'transfer');
      }
      // An account that does not exist comes first.
      expectProblem(await post('/transfers', { id: fresh('t'), from: closed, to: 'ghost',
        amount: '1', pending }), 422, 'ACCOUNT_NOT_FOUND');
    }
  });

  test('holds opened before the close still settle; batches meet ACCOUNT_CLOSED', async () => {
    const shop = await newAccount();
    const [h1, h2] = [fresh('h'), fresh('h')];
    for (const id of [h1, h2]) {
      await ok(201, '/transfers', { id, from: 'cash', to: shop, amount: '10', pending: true });
    }
    await ok(200, `/accounts/${shop}/close`, {});
    expect(await ok(201, `/transfers/${h1}/post`, { id: fresh('p') }))
      .toMatchObject({ toBalanceAfter: '10' });
    await ok(201, `/transfers/${h2}/void`, { id: fresh('v') });
    const shopNow = await account(shop);
    expect(shopNow).toMatchObject({ balance: '10', creditsPending: '0',
      closedAt: expect.any(String) });
    // Closing it again answers the account as it is now: closed when it was, posted to since.
    const again = await post(`/accounts/${shop}/close`, {});
    expect([again.statusCode, again.headers['idempotent-replayed']]).toEqual([200, 'true']);
    expect(again.json()).toEqual(shopNow);
    const before = await dump();
    const refused = await post('/transfers/batch', { atomic: true, transfers: [
      { id: fresh('b'), from: 'cash', to: 'sink', amount: '1' },
      { id: fresh('b'), from: 'cash', to: shop, amount: '1', pending: true }] });
    expect(expectProblem(refused, 422, 'ACCOUNT_CLOSED').detail).toMatch(/^transfers\/1 /);
    expect(await dump()).toBe(before);
    const each = await ok(200, '/transfers/batch', { atomic: false, transfers: [
      { id: fresh('b'), from: 'cash', to: 'sink', amount: '1' },
      { id: fresh('b'), from: shop, to: 'sink', amount: '1', pending: true }] });
    expect((each.results as Array<{ status: number; problem?: { code: string } }>)
      .map((r) => [r.status, r.problem?.code])).toEqual([[201, undefined],
      [422, 'ACCOUNT_CLOSED']]);
  });
});
