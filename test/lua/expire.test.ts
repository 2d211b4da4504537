/**
 * expire-holds-6.lua as a contract, called directly: it releases exactly the listed holds that
 * are open and expired at the caller's time and listed with their own accounts, each once.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { runScript } from '../../src/ledger/scripts.js';
import { statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture } from '../helpers/ledger.js';
import { calls, NOW, script } from './calls.js';

let f: Fixture;
let c: ReturnType<typeof calls>;
const at = (ms: number) => String(NOW + ms);
const seqs: Record<string, string> = {};

beforeAll(async () => {
  f = await fixture();
  c = calls(f);
  await c.account('cash', 'USD', 'unlimited');
  await c.account('a', 'USD', '0', '1000');
  await c.account('b');
  await c.account('c');
  const holds: Array<[string, string, string, string]> = [['h1', 'b', '1', '1'],
    ['h2', 'b', '2', '2'], ['h3', 'b', '4', '100'], ['h4', 'b', '8', '0'], ['h5', 'b', '16', '1'],
    ['h6', 'b', '32', '1'], ['h7', 'c', '64', '1']];
  for (const [id, to, amount, timeout] of holds) {
    seqs[id] = await c.hold(id, 'a', to, amount, timeout);
  }
  for (const [mode, id] of [['post', 'h5'], ['void', 'h6']]) {
    expect((await c.settle({ mode, id: `${id}-${mode}`, holdId: id, fromId: 'a',
      toId: 'b' }))[0]).toBe(S.OK);
  }
  seqs.t = String(await f.redis.hget(f.keys.transferBucket('fund-a'), 'fund-a'));
});
afterAll(async () => { await f.close(); });

const stats = () => f.redis.hgetall(f.keys.holdStats());
const listed = (...names: string[]) =>
  names.map((name): [string, string, string] => [seqs[name] ?? name, 'a', 'b']);

describe('expire-holds-6', () => {
  test('OK releases only the open, expired holds listed with their own accounts, in the ' +
    'order listed; it skips the others', async () => {
    const [ta, tb, counts] = [await c.totals('a'), await c.totals('b'), await stats()];
    // At exactly h2's expiry. Skipped: h3 not yet expired, h4 without expiry, h5 posted, h6
    // voided, h7 listed with b's key for its credit account c, h1 again, a transfer, no record.
    const reply = await c.expire([...listed('h2', 'h1', 'h3', 'h4', 'h5', 'h6', 'h7', 'h1', 't'),
      ['999999', 'a', 'b']], at(2000));
    expect(reply).toEqual([S.OK, 'tag', [[seqs.h2, at(2000), '2', 'USD'],
      [seqs.h1, at(1000), '1', 'USD']], 8]);
    expect(await f.redis.hmget(f.keys.state(), seqs.h1 as string, seqs.h2 as string))
      .toEqual(['e', 'e']);
    expect(await f.redis.zrange(f.keys.expiries(), 0, -1)).toEqual([seqs.h7, seqs.h3]);
    // An account shared by both holds: both releases, in one write; posted totals unchanged.
    expect(await c.totals('a')).toEqual({ ...ta, dp: String(Number(ta.dp) - 3) });
    expect(await c.totals('b')).toEqual({ ...tb, cp: String(Number(tb.cp) - 3) });
    expect(await stats()).toEqual({ 'n:USD': String(Number(counts['n:USD']) - 2),
      'a:USD': String(Number(counts['a:USD']) - 3) });
  });

  test('never twice: the same call again releases nothing and writes nothing', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    expect(await c.expire(listed('h2', 'h1'), at(60_000))).toEqual([S.OK, 'tag', [], 2]);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('a hold skipped for the wrong keys is released when listed with its own', async () => {
    expect(await c.expire([[seqs.h7 as string, 'a', 'c']], at(2000)))
      .toEqual([S.OK, 'tag', [[seqs.h7, at(1000), '64', 'USD']], 0]);
    expect(await c.totals('c')).toMatchObject({ cp: '0' });
  });

  test('1 ms before its expiry a hold is skipped; at its expiry, released', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    expect(await c.expire(listed('h3'), at(99_999))).toEqual([S.OK, 'tag', [], 1]);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    expect(await c.expire(listed('h3'), at(100_000)))
      .toEqual([S.OK, 'tag', [[seqs.h3, at(100_000), '4', 'USD']], 0]);
    expect(await c.totals('a')).toMatchObject({ dp: '8' }); // h4 alone, without expiry
  });

  test('FORMAT_UNSUPPORTED beats INVALID_ARGUMENT; neither writes', async () => {
    const h8 = await c.hold('h8', 'a', 'b', '1', '1');
    const keys = [f.keys.meta(), f.keys.journal(), f.keys.accountIds(), f.keys.state(),
      f.keys.expiries(), f.keys.holdStats(), f.keys.account('a'), f.keys.account('b')];
    const run = (args: string[], meta = f.keys.meta()) =>
      runScript(f.redis, script('expire-holds'), [meta, ...keys.slice(1)], args);
    const before = await dumpLedger(f.redis, f.keys);
    const other = `${f.keys.meta()}-other`;
    await f.redis.hset(other, 'fmt', '4');
    expect(await run(['tag', 'x', '0'], other)).toEqual([S.FORMAT_UNSUPPORTED, 'tag']);
    await f.redis.del(other);
    const now = at(60_000);
    const max = String(limits.HOLDS_EXPIRE_BATCH_MAX + 1);
    for (const args of [['tag', now, '0'], ['tag', now, max, ...Array<string>(3 * Number(max))
      .fill('7')], ['tag', now, '1', h8, '7'], ['tag', now, '2', h8, '7', '8'],
    ['tag', now, '1', 'x', '7', '8'], ['tag', now, '1', h8, '6', '8'],
    ['tag', now, '1', h8, '7', '9'], ['tag', now, '1', h8, '7', '1.5'],
    ['tag', 'soon', '1', h8, '7', '8']]) {
      expect(await run(args), args.slice(1, 6).join(' ')).toEqual([S.INVALID_ARGUMENT, 'tag']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    expect(await run(['tag', now, '1', h8, '7', '8'])).toEqual([S.OK, 'tag',
      [[h8, at(1000), '1', 'USD']], 0]);
  });
});
