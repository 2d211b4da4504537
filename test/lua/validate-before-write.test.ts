/**
 * Redis never rolls back a script, so the transfer script must find every problem before its
 * first write. Each case corrupts one key the script reads and proves that the script fails
 * (or rejects) with no write at all: the full dump of the ledger is unchanged.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { LedgerKeys } from '../../src/ledger/keys.js';
import { dumpLedger, type Fixture, fixture, json } from '../helpers/ledger.js';

let f: Fixture;
beforeAll(async () => {
  f = await fixture();
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0']]) {
    await f.app.inject({ method: 'POST', url: '/accounts', headers: json, payload: { id, currency: 'USD', overdraftLimit: od } });
  }
  const res = await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id: 'seed', from: 'cash', to: 'alice', amount: '10' } });
  expect(res.statusCode).toBe(201);
});
afterAll(async () => { await f.close(); });

type Target = { from: string; to: string };
type Corruption = [string, (k: LedgerKeys) => Promise<unknown>, Target, RegExp];
const usual: Target = { from: 'cash', to: 'alice' };
const replace = async (key: string, write: () => Promise<unknown>) => {
  await f.redis.del(key);
  await write();
};
const corruptions: Corruption[] = [
  ['the credit account is a string, not a hash', (k) => f.redis.set(k.account('bob'), 'x'),
    { from: 'cash', to: 'bob' }, /WRONGTYPE/],
  ['the debit account is a list', (k) => f.redis.rpush(k.account('bob'), 'x'),
    { from: 'bob', to: 'alice' }, /WRONGTYPE/],
  ['the credit account entries are a string',
    (k) => replace(k.entries('alice'), () => f.redis.set(k.entries('alice'), 'x')), usual, /WRONGTYPE/],
  ['the debit account entries are a hash',
    (k) => replace(k.entries('cash'), () => f.redis.hset(k.entries('cash'), 'x', '1')), usual, /WRONGTYPE/],
  ['the transfer record key is a string', (k) => f.redis.set(k.transfer('t'), 'x'), usual, /WRONGTYPE/],
  ['the ledger meta is a string', (k) => replace(k.meta(), () => f.redis.set(k.meta(), 'x')),
    usual, /WRONGTYPE/],
  ['the ledger seq is not a number', (k) => f.redis.hset(k.meta(), 'seq', 'x'), usual,
    /corrupt ledger seq/],
  ['the ledger seq went backwards', (k) => f.redis.hset(k.meta(), 'seq', '0'), usual,
    /behind an account/],
  ['a stored total is not a number', (k) => f.redis.hset(k.account('alice'), 'cr', 'abc'), usual,
    /user_script/],
  ['an account lacks its last seq', (k) => f.redis.hdel(k.account('alice'), 'lseq'), usual,
    /user_script/],
];

test.each(corruptions)('%s: the script fails and writes nothing', async (_name, corrupt, target, message) => {
  const saved = await dumpLedger(f.redis, f.keys);
  const restore = JSON.parse(saved) as Array<[string, string, unknown]>;
  await corrupt(f.keys);
  const before = await dumpLedger(f.redis, f.keys);
  await expect(f.ledger.transfer({ id: 't', ...target, amount: '1', metadata: {}, createdBy: 'test' })).rejects.toThrow(message);
  const res = await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id: 't', ...target, amount: '1' } });
  expect(res.statusCode).toBe(500);
  expect(res.json()).toMatchObject({ code: 'INTERNAL', detail: 'internal error; see the service log' });
  expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  // Put the ledger back as it was for the next case.
  await f.redis.del(...(await f.redis.keys(f.keys.all())));
  for (const [key, type, value] of restore) {
    if (type === 'hash') await f.redis.hset(key, value as Record<string, string>);
    if (type === 'stream') {
      for (const [id, fields] of value as Array<[string, string[]]>) await f.redis.xadd(key, id, ...fields);
    }
  }
  expect(await dumpLedger(f.redis, f.keys)).toBe(saved);
});
