/**
 * settle-11.lua as a contract, called directly: posts and voids, one case per status in the
 * order the script checks them, each built so that every later check would fail too.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { type ScriptStatus, statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture, withoutRejection } from '../helpers/ledger.js';
import { calls, MAX, NOW } from './calls.js';

let f: Fixture;
let c: ReturnType<typeof calls>;
const at = (ms: number) => String(NOW + ms);
/** Past every expiry below. */
const LATER = at(60_000);

beforeAll(async () => {
  f = await fixture();
  c = calls(f);
  await c.account('cash', 'USD', 'unlimited');
  await c.account('a', 'USD', '0', '1000');
  await c.account('b');
});
afterAll(async () => { await f.close(); });

type Args = Partial<Record<string, string>>;
/** A post or void of a hold between a and b, with their ids as the caller read them. */
const settle = (mode: 'post' | 'void', argv: Args) =>
  c.settle({ mode, fromId: 'a', toId: 'b', ...argv });
const stats = () => f.redis.hgetall(f.keys.holdStats());
const number = (id: string) => f.redis.hget(f.keys.account(id), 'n');

describe('settle-11: what a post and a void write', () => {
  test('OK posts part of a hold: the amount moves on both chains, the rest is released',
    async () => {
      const seq = await c.hold('p1', 'a', 'b', '100', '60');
      const [ta, tb, counts] = [await c.totals('a'), await c.totals('b'), await stats()];
      const reply = await settle('post', { id: 'post1', holdId: 'p1', amount: '30',
        metadata: '{"k":"v"}' });
      expect(reply).toEqual([S.OK, 'post1', 'USD', expect.any(String), '970', '30', '30']);
      const postSeq = String(reply[3]);
      expect(await c.record(postSeq)).toEqual({ i: 'post1', f: await number('a'),
        t: await number('b'), a: '30', k: 'USD', m: '{"k":"v"}', w: String(NOW), b: 'svc',
        fb: '970', tb: '30', pf: ta.lseq, pt: tb.lseq, x: 'p', o: 'p1', e: '', q: '30' });
      expect(await c.totals('a')).toEqual({ dr: '30', cr: '1000', dp: '0', cp: '0',
        lseq: postSeq });
      expect(await c.totals('b')).toEqual({ dr: '0', cr: '30', dp: '0', cp: '0',
        lseq: postSeq });
      expect(await f.redis.hget(f.keys.state(), seq)).toBe('p30');
      expect(await f.redis.zscore(f.keys.expiries(), seq)).toBeNull();
      expect(await stats()).toEqual({ 'n:USD': String(Number(counts['n:USD']) - 1),
        'a:USD': String(BigInt(counts['a:USD'] ?? '') - 100n) });
      expect(await f.redis.hget(f.keys.transferBucket('post1'), 'post1')).toBe(postSeq);
    });

  test('OK posts all of a hold when no amount is asked (recorded as asked: "")', async () => {
    const seq = await c.hold('p2', 'a', 'b', '20');
    const reply = await settle('post', { id: 'post2', holdId: 'p2' });
    expect(reply).toEqual([S.OK, 'post2', 'USD', expect.any(String), '950', '50', '20']);
    expect(await c.record(String(reply[3]))).toMatchObject({ a: '20', x: 'p', q: '' });
    expect(await f.redis.hget(f.keys.state(), seq)).toBe('p20');
  });

  test('OK voids a hold: off both chains, all released, posted balances unchanged', async () => {
    const seq = await c.hold('v1', 'a', 'b', '40', '60');
    const [ta, tb] = [await c.totals('a'), await c.totals('b')];
    const reply = await settle('void', { id: 'void1', holdId: 'v1' });
    expect(reply).toEqual([S.OK, 'void1', 'USD', expect.any(String), '950', '50', '40']);
    expect(await c.record(String(reply[3]))).toMatchObject({ a: '40', fb: '950', tb: '50',
      pf: '', pt: '', x: 'v', o: 'v1', e: '', q: '' });
    expect(await c.totals('a')).toEqual({ ...ta, dp: '0' });
    expect(await c.totals('b')).toEqual({ ...tb, cp: '0' });
    expect(await f.redis.hget(f.keys.state(), seq)).toBe('v');
    expect(await f.redis.zscore(f.keys.expiries(), seq)).toBeNull();
  });

  test('a hold on a closed account still settles', async () => {
    await c.account('c1');
    await c.hold('cl1', 'a', 'c1', '5');
    expect((await c.close('c1'))[0]).toBe(S.OK);
    expect((await c.settle({ mode: 'post', id: 'post-cl1', holdId: 'cl1', fromId: 'a',
      toId: 'c1' })).slice(0, 3)).toEqual([S.OK, 'post-cl1', 'USD']);
    expect(await c.totals('c1')).toMatchObject({ cr: '5', cp: '0' });
  });
});

describe('settle-11: refusals and replays, which write nothing', () => {
  test('FORMAT_UNSUPPORTED beats INVALID_ARGUMENT', async () => {
    const meta = `${f.keys.meta()}-other`;
    for (const fmt of ['1', '4']) {
      await f.redis.hset(meta, 'fmt', fmt);
      const before = await dumpLedger(f.redis, f.keys);
      expect(await settle('post', { id: 'fmt', holdId: 'p1', mode: 'x', meta }))
        .toEqual([S.FORMAT_UNSUPPORTED, 'fmt']);
      expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    }
  });

  test('INVALID_ARGUMENT beats EXISTS (the id "post1" is decided)', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const bad of [{ mode: 'x' }, { mode: 'void', amount: '1' }, { amount: '0' },
      { amount: '01' }, { amount: (AMOUNT_MAX + 1n).toString() }, { amount: '1e3' },
      { metadata: '[]' }, { metadata: `{${'x'.repeat(4096)}}` }, { now: '' }, { now: '1.5' },
      { by: '' }, { by: 'k'.repeat(65) }, { holdId: '' }, { holdId: 'h'.repeat(129) },
      { id: '' }]) {
      const id = bad.id ?? 'post1';
      expect(await settle('post', { id, holdId: 'p1', amount: '1', ...bad }),
        JSON.stringify(bad)).toEqual([S.INVALID_ARGUMENT, id]);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('EXISTS beats everything after it, returning the record unchanged', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const mode of ['post', 'void'] as const) {
      expect(await settle(mode, { id: 'post1', holdId: 'ghost', now: LATER, fromId: '' }))
        .toEqual([S.EXISTS, 'post1', expect.any(String),
          expect.arrayContaining(['x', 'p', 'o', 'p1', 'q', '30']), 'a', 'b']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('STALE_KEYS: accounts other than the hold\'s were passed; it beats the hold\'s ' +
    'state, and nothing is written', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    // p1 is posted and past its expiry, and 101 exceeds it: the state is not reached.
    for (const [fromId, toId] of [['', ''], ['b', 'a'], ['a', 'c1'], ['cash', 'b']]) {
      expect(await c.settle({ mode: 'post', id: 'stale', holdId: 'p1', amount: '101',
        now: LATER, fromId, toId })).toEqual([S.STALE_KEYS, 'stale', 'a', 'b']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });
});

/**
 * A case: `setup` makes the hold (its id is `id` with 'h' in front) and returns the amount it
 * holds; the settle asks for more than that where a post may ask, past every expiry.
 */
interface Rejection {
  status: ScriptStatus;
  what: string;
  setup: (hold: string) => Promise<string>;
  /** The hold asked for, when it is not the case's own. */
  holdId?: string;
  /** The reply's currency ('' when no record names one). */
  currency: string;
}

const REJECTIONS: Rejection[] = [
  { status: 'PENDING_TRANSFER_NOT_FOUND', what: 'no such id', holdId: 'nohold',
    setup: async () => '', currency: '' },
  { status: 'PENDING_TRANSFER_NOT_FOUND', what: 'a rejected hold', currency: '',
    setup: async (hold) => {
      expect((await c.transfer({ id: hold, from: 'a', to: 'b', amount: MAX, hold: '1' }))[0])
        .toBe(S.INSUFFICIENT_FUNDS);
      return '';
    } },
  { status: 'PENDING_TRANSFER_NOT_PENDING', what: 'a transfer', holdId: 'fund-a',
    setup: async () => '', currency: 'USD' },
  { status: 'PENDING_TRANSFER_NOT_PENDING', what: 'a post', holdId: 'post1',
    setup: async () => '', currency: 'USD' },
  { status: 'PENDING_TRANSFER_ALREADY_POSTED', what: 'posted, past its expiry', currency: 'USD',
    setup: async (hold) => {
      await c.hold(hold, 'a', 'b', '7', '1');
      expect((await settle('post', { id: `${hold}-post`, holdId: hold, amount: '3' }))[0])
        .toBe(S.OK);
      return '7';
    } },
  { status: 'PENDING_TRANSFER_ALREADY_VOIDED', what: 'voided, past its expiry', currency: 'USD',
    setup: async (hold) => {
      await c.hold(hold, 'a', 'b', '7', '1');
      expect((await settle('void', { id: `${hold}-void`, holdId: hold }))[0]).toBe(S.OK);
      return '7';
    } },
  { status: 'PENDING_TRANSFER_EXPIRED', what: 'released by the sweep', currency: 'USD',
    setup: async (hold) => {
      const seq = await c.hold(hold, 'a', 'b', '7', '1');
      expect((await c.expire([[seq, 'a', 'b']], at(1000)))[2]).toHaveLength(1);
      return '7';
    } },
  { status: 'EXCEEDS_PENDING_AMOUNT', what: 'a hold without expiry', currency: 'USD',
    setup: async (hold) => {
      await c.hold(hold, 'a', 'b', '7');
      return '7';
    } },
];

describe.each(['post', 'void'] as const)('settle-11: a %s\'s rejections in precedence order',
  (mode) => {
    const cases = REJECTIONS.filter((r) => mode === 'post' || r.status !== 'EXCEEDS_PENDING_AMOUNT')
      .map((r, i) => [r.status, r.what, r, `${mode}-${i}`] as const);
    test.each(cases)('%s (%s) beats every later check; the rejection record is the only write',
      async (status, _what, r, id) => {
        const hold = r.holdId ?? `h${id}`;
        const held = await r.setup(hold);
        const asked = mode === 'post' && held !== '' ? String(Number(held) + 1)
          : mode === 'post' ? MAX : '';
        const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
        const recorded = asked === '' ? held : asked;
        expect(await settle(mode, { id, holdId: hold, amount: asked, now: LATER }))
          .toEqual([S[status], id, r.currency, recorded]);
        expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, id)).toEqual(before);
        const accounts = status.startsWith('PENDING_TRANSFER_NOT_') ? ['', ''] : ['a', 'b'];
        expect(await c.lastRejection()).toEqual({ i: id, s: String(S[status]), f: accounts[0],
          t: accounts[1], a: recorded, c: '', k: r.currency, m: '{}', w: LATER, b: 'svc',
          x: mode === 'post' ? 'p' : 'v', o: hold, e: '', q: asked });
      });
  });

describe('settle-11: expiry, decided against the caller\'s time', () => {
  test('1 ms before its expiry a post commits; at it, PENDING_TRANSFER_EXPIRED releases the ' +
    'hold at once, and only once', async () => {
    await c.hold('edge1', 'a', 'b', '11', '5');
    const seq = await c.hold('edge2', 'a', 'b', '22', '5');
    const [ta, tb] = [await c.totals('a'), await c.totals('b')];
    const counts = await stats();
    expect((await settle('post', { id: 'edge1-post', holdId: 'edge1', now: at(4999) }))[0])
      .toBe(S.OK);
    // More than it holds, to show that expiry comes first.
    expect(await settle('post', { id: 'edge2-post', holdId: 'edge2', amount: '23',
      now: at(5000) })).toEqual([S.PENDING_TRANSFER_EXPIRED, 'edge2-post', 'USD', '23']);
    expect(await f.redis.hget(f.keys.state(), seq)).toBe('e');
    expect(await f.redis.zscore(f.keys.expiries(), seq)).toBeNull();
    const posted = await c.totals('a');
    expect(posted).toMatchObject({ dr: String(BigInt(ta.dr ?? '') + 11n),
      dp: String(BigInt(ta.dp ?? '') - 33n) });
    expect(await c.totals('b')).toMatchObject({ cp: String(BigInt(tb.cp ?? '') - 33n) });
    expect(await stats()).toEqual({ 'n:USD': String(Number(counts['n:USD']) - 2),
      'a:USD': String(BigInt(counts['a:USD'] ?? '') - 33n) });
    // Neither the sweep nor a later void releases it again.
    const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
    expect(await c.expire([[seq, 'a', 'b']], at(6000))).toEqual([S.OK, 'tag', [], 1]);
    expect(await settle('void', { id: 'edge2-void', holdId: 'edge2', now: at(6000) }))
      .toEqual([S.PENDING_TRANSFER_EXPIRED, 'edge2-void', 'USD', '22']);
    expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, 'edge2-void'))
      .toEqual(before);
  });
});
