/**
 * reverse-9.lua and close-account-2.lua as contracts, called directly: one case per status in
 * the order the script checks them, each built so that every later check would fail too.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture, withoutRejection } from '../helpers/ledger.js';
import { calls, MAX, NOW } from './calls.js';

let f: Fixture;
let c: ReturnType<typeof calls>;

beforeAll(async () => {
  f = await fixture();
  c = calls(f);
  await c.account('cash', 'USD', 'unlimited');
  await c.account('a', 'USD', '0', '100');
  await c.account('b');
  expect((await c.transfer({ id: 't1', from: 'a', to: 'b', amount: '50' }))[0]).toBe(S.OK);
});
afterAll(async () => { await f.close(); });

type Args = Partial<Record<string, string>>;
/** A reversal of `originalId`, a transfer from `to` to `from`: it moves from → to. */
const reverse = (argv: Args, from = 'b', to = 'a') =>
  c.reverse({ fromId: from, toId: to, ...argv });
const number = (id: string) => f.redis.hget(f.keys.account(id), 'n');
const seqOf = async (id: string) => String(await f.redis.hget(f.keys.transferBucket(id), id));

describe('reverse-9: what a reversal writes', () => {
  test('OK moves part of a transfer back on both chains; the total reversed is kept',
    async () => {
      const [ta, tb] = [await c.totals('a'), await c.totals('b')];
      const reply = await reverse({ id: 'rev1', originalId: 't1', amount: '20',
        metadata: '{"why":"refund"}' });
      expect(reply).toEqual([S.OK, 'rev1', 'USD', expect.any(String), '30', '70', '20']);
      const seq = String(reply[3]);
      expect(await c.record(seq)).toEqual({ i: 'rev1', f: await number('b'),
        t: await number('a'), a: '20', k: 'USD', m: '{"why":"refund"}', w: String(NOW),
        b: 'svc', fb: '30', tb: '70', pf: tb.lseq, pt: ta.lseq, x: 'r', o: 't1', e: '',
        q: '20' });
      expect(await c.totals('b')).toEqual({ ...tb, dr: '20', lseq: seq });
      expect(await c.totals('a')).toEqual({ ...ta, cr: '120', lseq: seq });
      expect(await f.redis.hget(f.keys.state(), await seqOf('t1'))).toBe('20');
      expect(await f.redis.hget(f.keys.transferBucket('rev1'), 'rev1')).toBe(seq);
    });

  test('OK with no amount moves all that is still reversible', async () => {
    const reply = await reverse({ id: 'rev2', originalId: 't1' });
    expect(reply).toEqual([S.OK, 'rev2', 'USD', expect.any(String), '0', '100', '30']);
    expect(await c.record(String(reply[3]))).toMatchObject({ a: '30', q: '' });
    expect(await f.redis.hget(f.keys.state(), await seqOf('t1'))).toBe('50');
  });

  test('a post reverses as a transfer does', async () => {
    await c.hold('h1', 'a', 'b', '10');
    expect((await c.settle({ mode: 'post', id: 'post1', holdId: 'h1', amount: '4',
      fromId: 'a', toId: 'b' }))[0]).toBe(S.OK);
    expect(await reverse({ id: 'rev-post1', originalId: 'post1' }))
      .toEqual([S.OK, 'rev-post1', 'USD', expect.any(String), '0', '100', '4']);
  });
});

describe('reverse-9: refusals and replays, which write nothing', () => {
  test('FORMAT_UNSUPPORTED beats INVALID_ARGUMENT', async () => {
    const meta = `${f.keys.meta()}-other`;
    await f.redis.hset(meta, 'fmt', '1');
    const before = await dumpLedger(f.redis, f.keys);
    expect(await reverse({ id: 'fmt', originalId: 't1', amount: '0', meta }))
      .toEqual([S.FORMAT_UNSUPPORTED, 'fmt']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('INVALID_ARGUMENT beats EXISTS (the id "rev1" is decided)', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const bad of [{ amount: '0' }, { amount: '01' }, { amount: '-1' },
      { amount: (AMOUNT_MAX + 1n).toString() }, { metadata: 'x' }, { now: '' }, { by: '' },
      { by: 'k'.repeat(65) }, { originalId: '' }, { originalId: 't'.repeat(129) },
      { id: '' }]) {
      const id = bad.id ?? 'rev1';
      expect(await reverse({ id, originalId: 't1', ...bad }), JSON.stringify(bad))
        .toEqual([S.INVALID_ARGUMENT, id]);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('EXISTS beats everything after it, returning the record unchanged', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    expect(await reverse({ id: 'rev1', originalId: 'ghost', amount: MAX }, '', ''))
      .toEqual([S.EXISTS, 'rev1', expect.any(String),
        expect.arrayContaining(['x', 'r', 'o', 't1']), 'b', 'a']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('STALE_KEYS: accounts other than the original\'s were passed; it beats the amount ' +
    'check, and nothing is written', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const [from, to] of [['', ''], ['a', 'b'], ['b', 'cash']]) {
      expect(await reverse({ id: 'stale', originalId: 't1', amount: MAX }, from, to))
        .toEqual([S.STALE_KEYS, 'stale', 'b', 'a']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });
});

describe('reverse-9: rejections in precedence order', () => {
  /**
   * The original t2 moved 50 from r1 to r2. Then everything a reversal checks is broken at
   * once, and each case mends the check of the case before: r2 spent 45 (too little left),
   * r1's credits are at the maximum (50 back overflows), r2 is closed.
   */
  beforeAll(async () => {
    await c.account('r1', 'USD', '0', '100');
    await c.account('r2');
    expect((await c.transfer({ id: 't2', from: 'r1', to: 'r2', amount: '50' }))[0]).toBe(S.OK);
    expect((await c.transfer({ id: 'spent', from: 'r2', to: 'cash', amount: '45' }))[0])
      .toBe(S.OK);
    await f.redis.hset(f.keys.account('r1'), 'cr', MAX);
    expect((await c.close('r2'))[0]).toBe(S.OK);
  });

  /** The rejection is recorded and is the only write; its record says what was asked. */
  async function rejected(id: string, argv: Args, status: keyof typeof S, currency: string,
    recorded: string, accounts: [string, string] = ['r2', 'r1']) {
    const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
    expect(await c.reverse({ id, fromId: accounts[0], toId: accounts[1], ...argv }))
      .toEqual([S[status], id, currency, recorded]);
    expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, id)).toEqual(before);
    expect(await c.lastRejection()).toEqual({ i: id, s: String(S[status]), f: accounts[0],
      t: accounts[1], a: recorded, c: '', k: currency, m: '{}', w: String(NOW), b: 'svc',
      x: 'r', o: argv.originalId, e: '', q: argv.amount ?? '' });
  }

  test('TRANSFER_NOT_FOUND: no record has the id', async () => {
    await rejected('x1', { originalId: 'nothing', amount: MAX }, 'TRANSFER_NOT_FOUND', '', MAX,
      ['', '']);
    await rejected('x2', { originalId: 'nothing' }, 'TRANSFER_NOT_FOUND', '', '', ['', '']);
  });

  test('NOT_REVERSIBLE: a rejected transfer, a hold, a void, a reversal', async () => {
    expect((await c.transfer({ id: 'nope', from: 'r2', to: 'r1', amount: MAX }))[0])
      .toBe(S.ACCOUNT_CLOSED);
    await c.hold('h2', 'a', 'b', '1');
    expect((await c.settle({ mode: 'void', id: 'void2', holdId: 'h2', fromId: 'a',
      toId: 'b' }))[0]).toBe(S.OK);
    await c.hold('h3', 'a', 'b', '1');
    for (const [i, original, currency] of [[1, 'nope', ''], [2, 'h3', 'USD'],
      [3, 'void2', 'USD'], [4, 'rev1', 'USD']] as const) {
      await rejected(`n${i}`, { originalId: original, amount: MAX }, 'NOT_REVERSIBLE',
        currency, MAX, ['', '']);
    }
  });

  test('EXCEEDS_REVERSIBLE_AMOUNT beats ACCOUNT_CLOSED: more than is left, or nothing left',
    async () => {
      await rejected('e1', { originalId: 't2', amount: '51' }, 'EXCEEDS_REVERSIBLE_AMOUNT',
        'USD', '51');
      // t1 was reversed in full: asking for "all that is left" asks for nothing.
      await rejected('e2', { originalId: 't1' }, 'EXCEEDS_REVERSIBLE_AMOUNT', 'USD', '0',
        ['b', 'a']);
    });

  test('ACCOUNT_CLOSED beats INSUFFICIENT_FUNDS', async () => {
    await rejected('c1', { originalId: 't2', amount: '50' }, 'ACCOUNT_CLOSED', 'USD', '50');
    // The account the reversal credits may be the closed one: t3 moved r3 → r4, r3 closed.
    await c.account('r3', 'USD', '0', '10');
    await c.account('r4');
    expect((await c.transfer({ id: 't3', from: 'r3', to: 'r4', amount: '10' }))[0]).toBe(S.OK);
    expect((await c.close('r3'))[0]).toBe(S.OK);
    await rejected('c2', { originalId: 't3' }, 'ACCOUNT_CLOSED', 'USD', '10', ['r4', 'r3']);
  });

  test('INSUFFICIENT_FUNDS (counting pending debits) beats BALANCE_OVERFLOW', async () => {
    // Reopened (only a test does this): the closed check passes, funds are short.
    await f.redis.hdel(f.keys.account('r2'), 'cl');
    await rejected('i1', { originalId: 't2', amount: '6' }, 'INSUFFICIENT_FUNDS', 'USD', '6');
    // 5 posted, 5 held: nothing is available.
    await c.hold('h4', 'r2', 'cash', '5');
    await rejected('i2', { originalId: 't2', amount: '1' }, 'INSUFFICIENT_FUNDS', 'USD', '1');
  });

  test('BALANCE_OVERFLOW last', async () => {
    expect((await c.settle({ mode: 'void', id: 'void4', holdId: 'h4', fromId: 'r2',
      toId: 'cash' }))[0]).toBe(S.OK);
    await rejected('o1', { originalId: 't2', amount: '5' }, 'BALANCE_OVERFLOW', 'USD', '5');
  });
});

describe('close-account-2', () => {
  test('OK closes once: closedAt is set, and the account comes back', async () => {
    await c.account('shut');
    const reply = await c.close('shut', String(NOW + 1));
    expect(reply).toEqual([S.OK, 'shut', expect.arrayContaining(['cur', 'USD', 'cl',
      String(NOW + 1)])]);
    expect(await f.redis.hget(f.keys.account('shut'), 'cl')).toBe(String(NOW + 1));
  });

  test('EXISTS: closed before, nothing written, answered as the first close', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const stored = await f.redis.hgetall(f.keys.account('shut'));
    const reply = await c.close('shut', String(NOW + 2));
    expect(reply[0]).toBe(S.EXISTS);
    const fields = reply[2] as string[];
    expect(Object.fromEntries(fields.flatMap((v, i) => i % 2 === 0 ? [[v, fields[i + 1]]] : [])))
      .toEqual(stored);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('ACCOUNT_NOT_FOUND: nothing written, nothing recorded', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    expect(await c.close('nobody')).toEqual([S.ACCOUNT_NOT_FOUND, 'nobody']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('FORMAT_UNSUPPORTED beats INVALID_ARGUMENT, which beats ACCOUNT_NOT_FOUND', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const meta = `${f.keys.meta()}-old`;
    await f.redis.hset(meta, 'fmt', '1');
    expect(await c.close('nobody', 'soon', meta)).toEqual([S.FORMAT_UNSUPPORTED, 'nobody']);
    await f.redis.del(meta);
    expect(await c.close('nobody', 'soon')).toEqual([S.INVALID_ARGUMENT, 'nobody']);
    expect(await c.close('', String(NOW))).toEqual([S.INVALID_ARGUMENT, '']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });
});
