import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Fixture, fixture, json } from './helpers/ledger.js';

let f: Fixture;
beforeAll(async () => { f = await fixture(); });
afterAll(async () => { await f.close(); });

test('create, fund, transfer, read', async () => {
  const post = (url: string, payload: unknown) => f.app.inject({ method: 'POST', url, headers: json, payload });
  expect((await post('/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' })).statusCode).toBe(201);
  expect((await post('/accounts', { id: 'alice', currency: 'USD' })).statusCode).toBe(201);
  const t = await post('/transfers', { id: 't1', from: 'cash', to: 'alice', amount: '250' });
  expect(t.statusCode).toBe(201);
  expect(t.json()).toMatchObject({ status: 'committed', seq: '1', toBalanceAfter: '250' });
  const a = await f.app.inject({ method: 'GET', url: '/accounts/alice' });
  expect(a.json()).toMatchObject({ balance: '250', credits: '250', debits: '0' });
});
