/**
 * The data format (lua/includes/format.lua), script by script: a ledger of the format before
 * holds ('2') is this release's own until its first write, which marks it '3' so that an older
 * release refuses it from then on; a call that writes nothing leaves it as it is; any other
 * format is refused, with nothing written.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture } from '../helpers/ledger.js';
import { calls, NOW } from './calls.js';

let f: Fixture;
let c: ReturnType<typeof calls>;
let n = 0;
const uid = (prefix: string) => `${prefix}-${++n}`;

beforeAll(async () => {
  f = await fixture();
  c = calls(f);
  await c.account('cash', 'USD', 'unlimited');
  await c.account('a', 'USD', '0', '1000');
  await c.account('b');
});
afterAll(async () => { await f.close(); });

const fmt = () => f.redis.hget(f.keys.meta(), 'fmt');
const setFormat = (value: string) => f.redis.hset(f.keys.meta(), 'fmt', value);
const later = String(NOW + 3_600_000);

/** What one call needs in place (made on a format-3 ledger) and the call itself. */
interface Call {
  name: string;
  setup?: () => Promise<string>;
  run: (id: string, ready: string) => Promise<unknown[]>;
  /** The status it answers on a ledger it accepts. */
  status: number;
}

async function posted(): Promise<string> {
  const hold = uid('hold');
  await c.hold(hold, 'a', 'b', '1');
  expect((await c.settle({ mode: 'post', id: `${hold}-post`, holdId: hold, fromId: 'a',
    toId: 'b' }))[0]).toBe(S.OK);
  return `${hold}-post`;
}

/** Every writing script, in each of the ways it writes (a commit, a rejection, a release). */
const WRITES: Call[] = [
  { name: 'create-account', run: (id) => c.createAccount({ id }), status: S.OK },
  { name: 'transfer: a commit', run: (id) => c.transfer({ id, from: 'a', to: 'b' }),
    status: S.OK },
  { name: 'transfer: a rejection', run: (id) => c.transfer({ id, from: 'x', to: 'b' }),
    status: S.ACCOUNT_NOT_FOUND },
  { name: 'transfer: a hold', run: (id) => c.transfer({ id, from: 'a', to: 'b', hold: '60' }),
    status: S.OK },
  { name: 'transfer-batch', status: S.OK,
    run: (id) => c.batch(false, [{ id, from: 'a', to: 'b', hold: '0' }]) },
  { name: 'settle: a post', status: S.OK, setup: async () => {
    const hold = uid('hold');
    await c.hold(hold, 'a', 'b', '1');
    return hold;
  }, run: (id, hold) => c.settle({ mode: 'post', id, holdId: hold, fromId: 'a', toId: 'b' }) },
  { name: 'settle: a rejection', status: S.PENDING_TRANSFER_NOT_FOUND,
    run: (id) => c.settle({ mode: 'void', id, holdId: 'none' }) },
  { name: 'settle: an expired hold released', status: S.PENDING_TRANSFER_EXPIRED,
    setup: async () => {
      const hold = uid('hold');
      await c.hold(hold, 'a', 'b', '1', '1');
      return hold;
    },
    run: (id, hold) => c.settle({ mode: 'void', id, holdId: hold, fromId: 'a', toId: 'b',
      now: later }) },
  { name: 'reverse', status: S.OK, setup: posted,
    run: (id, post) => c.reverse({ id, originalId: post, fromId: 'b', toId: 'a' }) },
  { name: 'reverse: a rejection', status: S.TRANSFER_NOT_FOUND,
    run: (id) => c.reverse({ id, originalId: 'none' }) },
  { name: 'close-account', status: S.OK, setup: async () => {
    const id = uid('acct');
    await c.account(id);
    return id;
  }, run: (_id, account) => c.close(account) },
  { name: 'expire-holds', status: S.OK, setup: async () => {
    const hold = uid('hold');
    return c.hold(hold, 'a', 'b', '1', '1');
  }, run: (_id, seq) => c.expire([[seq, 'a', 'b']], later) },
];

describe('the first write on a format-2 ledger marks it 3', () => {
  test.each(WRITES.map((w) => [w.name, w] as const))('%s', async (_name, w) => {
    const ready = await w.setup?.() ?? '';
    await setFormat('2');
    const reply = await w.run(uid('id'), ready);
    expect(reply[0]).toBe(w.status);
    if (w.name === 'expire-holds') expect((reply[2] as unknown[]).length).toBe(1);
    expect(await fmt()).toBe('3');
  });
});

describe('other formats are refused: FORMAT_UNSUPPORTED, nothing written', () => {
  test.each(WRITES.flatMap((w) => ['1', '4'].map((v) => [w.name, v, w] as const)))(
    '%s, format %s', async (_name, value, w) => {
      const ready = await w.setup?.() ?? '';
      await setFormat(value);
      try {
        const before = await dumpLedger(f.redis, f.keys);
        const id = uid('id');
        const reply = await w.run(id, ready);
        expect(reply[0]).toBe(S.FORMAT_UNSUPPORTED);
        expect(await dumpLedger(f.redis, f.keys)).toBe(before);
      } finally {
        await setFormat('3');
      }
    });
});

describe('a call that writes nothing leaves format 2 as it is', () => {
  test('replays, a close of a closed account, a sweep that releases nothing', async () => {
    const post = await posted();
    const reversal = uid('rev');
    expect((await c.reverse({ id: reversal, originalId: post, fromId: 'b', toId: 'a' }))[0])
      .toBe(S.OK);
    const account = uid('acct');
    await c.account(account);
    expect((await c.close(account))[0]).toBe(S.OK);
    await setFormat('2');
    const before = await dumpLedger(f.redis, f.keys);
    expect((await c.createAccount({ id: 'a' }))[0]).toBe(S.EXISTS);
    expect((await c.transfer({ id: 'fund-a' }))[0]).toBe(S.EXISTS);
    expect((await c.batch(true, [{ id: 'fund-a', from: 'cash', to: 'a' }]))[0]).toBe(S.OK);
    expect((await c.settle({ id: post }))[0]).toBe(S.EXISTS);
    expect((await c.reverse({ id: reversal }))[0]).toBe(S.EXISTS);
    expect((await c.close(account))[0]).toBe(S.EXISTS);
    expect(await c.expire([['1', 'a', 'b']], later)).toEqual([S.OK, 'tag', [], 1]);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    expect(await fmt()).toBe('2');
    await setFormat('3');
  });
});
