/**
 * transfer-batch-6.lua with holds, called directly: each item is decided as transfer-9.lua
 * decides it alone (test/lua/scripts.test.ts), later items seeing what earlier ones reserved.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture } from '../helpers/ledger.js';
import { calls, NOW } from './calls.js';

let f: Fixture;
let c: ReturnType<typeof calls>;

beforeAll(async () => {
  f = await fixture();
  c = calls(f);
  await c.account('cash', 'USD', 'unlimited');
  await c.account('a', 'USD', '0', '100');
  await c.account('b');
  await c.account('twin', 'USD', '0', '100');
});
afterAll(async () => { await f.close(); });

const number = (id: string) => f.redis.hget(f.keys.account(id), 'n');

describe('transfer-batch-6: holds', () => {
  test('non-atomic: holds commit and reject in order, each seeing the holds before it',
    async () => {
      const lseq = await f.redis.hget(f.keys.account('a'), 'lseq');
      const reply = await c.batch(false, [
        { id: 'bh1', from: 'a', to: 'b', amount: '60', hold: '30' },
        // 100 posted, 60 held: 40 available.
        { id: 'bt1', from: 'a', to: 'b', amount: '41' },
        { id: 'bh2', from: 'a', to: 'b', amount: '41', hold: '0' },
        { id: 'bh3', from: 'a', to: 'b', amount: '40', hold: '0' },
        { id: 'bh4', from: 'ghost', to: 'b', amount: '1', hold: '5' },
      ]);
      expect(reply).toEqual([S.OK, 'bh1', [[S.OK, 'USD', expect.any(String), '100', '0'],
        [S.INSUFFICIENT_FUNDS, 'USD'], [S.INSUFFICIENT_FUNDS, 'USD'],
        [S.OK, 'USD', expect.any(String), '100', '0'], [S.ACCOUNT_NOT_FOUND, 'USD']]]);
      const results = reply[2] as string[][];
      const [seq1, seq3] = [results[0]?.[2] as string, results[3]?.[2] as string];
      const expires = String(NOW + 30_000);
      expect(await c.record(seq1)).toEqual({ i: 'bh1', f: await number('a'),
        t: await number('b'), a: '60', k: 'USD', m: '{}', w: String(NOW), b: 'svc', fb: '100',
        tb: '0', pf: '', pt: '', x: 'h', o: '', e: expires, q: '' });
      expect(await c.record(seq3)).toMatchObject({ i: 'bh3', x: 'h', e: '' });
      expect(await c.totals('a')).toEqual({ dr: '0', cr: '100', dp: '100', cp: '0', lseq });
      expect(await c.totals('b')).toEqual({ dr: '0', cr: '0', dp: '0', cp: '100', lseq: '0' });
      expect(await f.redis.zrange(f.keys.expiries(), 0, -1, 'WITHSCORES'))
        .toEqual([seq1, expires]);
      expect(await f.redis.hgetall(f.keys.holdStats())).toEqual({ 'n:USD': '2', 'a:USD': '100' });
      expect(await c.lastRejection()).toEqual({ i: 'bh4', s: String(S.ACCOUNT_NOT_FOUND),
        f: 'ghost', t: 'b', a: '1', c: '', k: 'USD', m: '{}', w: String(NOW), b: 'svc',
        x: 'h', o: '', e: '5', q: '' });
    });

  test('a hold in a batch is stored as transfer-9.lua stores it alone', async () => {
    await c.hold('alone', 'twin', 'b', '60', '30');
    const alone = await c.record(String(await f.redis.hget(f.keys.transferBucket('alone'),
      'alone')));
    const batched = await c.record(String(await f.redis.hget(f.keys.transferBucket('bh1'),
      'bh1')));
    expect({ ...alone, i: 'bh1', f: await number('a') }).toEqual(batched);
  });

  test('atomic: a hold that would be rejected refuses the batch, writing nothing', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    expect(await c.batch(true, [{ id: 'ah1', from: 'twin', to: 'b', amount: '30', hold: '0' },
      { id: 'ah2', from: 'twin', to: 'b', amount: '11', hold: '30' }]))
      .toEqual([S.INSUFFICIENT_FUNDS, 'ah1', 2, 'USD']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('atomic: holds that all fit commit together', async () => {
    const reply = await c.batch(true, [
      { id: 'ah3', from: 'twin', to: 'b', amount: '30', hold: '0' },
      { id: 'ah4', from: 'twin', to: 'b', amount: '10', hold: '30' }]);
    expect((reply[2] as unknown[][]).map((r) => r[0])).toEqual([S.OK, S.OK]);
    expect(await c.totals('twin')).toMatchObject({ dp: '100' });
  });
});
