/**
 * The README's walk-through through `app.inject`, asserting every status: readiness, accounts,
 * committed / rejected / replayed / conflicting transfers, reads, entry pages and metrics. Run
 * over a restricted Redis connection, it shows that connection can do all the service needs.
 */
import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import { json } from '../helpers/ledger.js';

export async function fullFlow(app: App): Promise<void> {
  const post = (url: string, payload: object) =>
    app.inject({ method: 'POST', url, headers: json, payload });
  const get = (url: string) => app.inject({ method: 'GET', url });

  // Readiness runs SCRIPT EXISTS, INFO and CONFIG GET appendfsync / aof-load-truncated.
  const ready = await get('/readyz');
  expect(ready.statusCode, ready.body).toBe(200);

  expect((await post('/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' }))
    .statusCode).toBe(201);
  for (const id of ['alice', 'bob']) {
    expect((await post('/accounts', { id, currency: 'USD' })).statusCode).toBe(201);
  }
  expect((await post('/accounts', { id: 'bob', currency: 'USD' })).statusCode).toBe(200);

  const fund = { id: 'fund-1', from: 'cash', to: 'alice', amount: '10000' };
  expect((await post('/transfers', fund)).json()).toMatchObject({ status: 'committed' });
  const pay = { id: 'pay-1', from: 'alice', to: 'bob', amount: '2500', metadata: { o: 'A-17' } };
  const first = await post('/transfers', pay);
  expect(first.statusCode).toBe(201);
  const replay = await post('/transfers', pay);
  expect(replay.statusCode).toBe(201);
  expect(replay.headers['idempotent-replayed']).toBe('true');
  expect(replay.body).toBe(first.body);
  const conflict = await post('/transfers', { ...pay, amount: '2600' });
  expect(conflict.statusCode).toBe(409);
  expect(conflict.json().code).toBe('TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
  const rejected =
    await post('/transfers', { id: 'pay-2', from: 'alice', to: 'bob', amount: '50000' });
  expect(rejected.statusCode).toBe(422);
  expect(rejected.json().code).toBe('INSUFFICIENT_FUNDS');
  expect((await post('/transfers', { id: 'pay-3', from: 'alice', to: 'bob', amount: '1000' }))
    .statusCode).toBe(201);

  expect((await get('/transfers/pay-2')).json())
    .toMatchObject({ status: 'rejected', reason: 'INSUFFICIENT_FUNDS' });
  expect((await get('/transfers/pay-1')).json()).toMatchObject({ status: 'committed', seq: '2' });
  expect((await get('/accounts/alice')).json())
    .toMatchObject({ balance: '6500', debits: '3500', credits: '10000' });

  const page1 = (await get('/accounts/alice/entries?limit=2')).json();
  expect(page1.entries.map((e: { transferId: string }) => e.transferId))
    .toEqual(['pay-3', 'pay-1']);
  const page2 = (await get(`/accounts/alice/entries?limit=2&cursor=${page1.nextCursor}`)).json();
  expect(page2).toMatchObject({ entries: [{ transferId: 'fund-1' }], nextCursor: null });

  // A poll runs readiness, INFO and SLOWLOG LEN / GET; none of the app's commands was refused.
  await app.metrics.refresh();
  const metrics = await get('/metrics');
  expect(metrics.statusCode).toBe(200);
  expect(metrics.body).toMatch(/^ledger_ready 1$/m);
  expect(metrics.body).toMatch(/^ledger_redis_up 1$/m);
  expect(metrics.body).toMatch(/^ledger_redis_command_errors_total\{kind="reply"\} 0$/m);
  expect(metrics.body).toMatch(/^ledger_transfers_total\{outcome="committed"\} 3$/m);
}
