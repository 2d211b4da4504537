/**
 * ACCOUNT_NOT_FOUND names the account that does not exist (issue 12, item 13), alone, in a batch
 * and for an atomic batch, with group commit or without; and a replay names the same account as
 * the first answer even after the missing account was created (src/ledger/missing-accounts.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Fixture, fixture, json } from '../helpers/ledger.js';

describe.each([false, true])('ACCOUNT_NOT_FOUND names the missing account (group commit %s)',
  (groupCommit) => {
    let f: Fixture;
    const post = (url: string, payload: unknown) =>
      f.app.inject({ method: 'POST', url, headers: json, payload: JSON.stringify(payload) });
    const transfer = async (id: string, from: string, to: string) => {
      const res = await post('/transfers', { id, from, to, amount: '1' });
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json().code).toBe('ACCOUNT_NOT_FOUND');
      return res;
    };
    const account = async (id: string) => {
      expect((await post('/accounts', { id, currency: 'USD', overdraftLimit: 'unlimited' }))
        .statusCode).toBe(201);
    };

    beforeAll(async () => {
      f = await fixture({ groupCommit });
      await account('alice');
    });
    afterAll(async () => { await f.close(); });

    test.each([
      ['the credit account', 't-to', 'alice', 'later-to', 'account "later-to" does not exist'],
      ['the debit account', 't-from', 'later-from', 'alice',
        'account "later-from" does not exist'],
      ['both', 't-both', 'later-a', 'later-b', 'accounts "later-a" and "later-b" do not exist'],
    ])('%s; a replay after the accounts exist says the same', async (_what, id, from, to,
      said) => {
      const first = await transfer(id, from, to);
      expect(first.json().detail).toBe(`transfer "${id}": ${said}`);
      for (const name of [from, to]) if (name !== 'alice') await account(name);
      const replay = await transfer(id, from, to);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.body).toBe(first.body);
    });

    test('each transfer of a batch, and the one that refuses an atomic batch', async () => {
      const res = await post('/transfers/batch', { atomic: false, transfers: [
        { id: 'b-1', from: 'alice', to: 'ghost-1', amount: '1' },
        { id: 'b-2', from: 'ghost-2', to: 'alice', amount: '1' },
      ] });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().results.map((r: { problem: { detail: string } }) => r.problem.detail))
        .toEqual(['transfer "b-1": account "ghost-1" does not exist',
          'transfer "b-2": account "ghost-2" does not exist']);
      const atomic = await post('/transfers/batch', { atomic: true, transfers: [
        { id: 'a-1', from: 'alice', to: 'later-to', amount: '1' },
        { id: 'a-2', from: 'ghost-3', to: 'alice', amount: '1' },
      ] });
      expect(atomic.statusCode, atomic.body).toBe(422);
      expect(atomic.json().detail).toBe('transfers/1 ("a-2") would be rejected: transfer ' +
        '"a-2": account "ghost-3" does not exist; no transfer of this batch was applied or ' +
        'recorded');
    });
  });
