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
  ['the journal is a string (its XADD is the first write)',
    (k) => replace(k.journal(), () => f.redis.set(k.journal(), 'x')), usual, /WRONGTYPE/],
  ['the rejections stream is a hash (a rejection\'s first write)',
    (k) => f.redis.hset(k.rejections(), 'x', '1'), { from: 'ghost', to: 'alice' }, /WRONGTYPE/],
  ['the journal holds an id not of the form 0-<seq>',
    (k) => f.redis.xadd(k.journal(), '5-1', 'x', '1'), usual, /equal or smaller/],
  ['the id bucket is a string', (k) => f.redis.set(k.transferBucket('t'), 'x'), usual,
    /WRONGTYPE/],
  ['the id bucket points at a record that is missing',
    (k) => f.redis.hset(k.transferBucket('t'), 't', '99'), usual, /no record 99/],
  ['the ledger meta is a string', (k) => replace(k.meta(), () => f.redis.set(k.meta(), 'x')),
    usual, /WRONGTYPE/],
  ['a stored total is not a number', (k) => f.redis.hset(k.account('alice'), 'cr', 'abc'), usual,
    /user_script/],
  ['an account lacks its last seq', (k) => f.redis.hdel(k.account('alice'), 'lseq'), usual,
    /lacks lseq/],
  ['an account lacks its number', (k) => f.redis.hdel(k.account('cash'), 'n'), usual,
    /lacks lseq/],
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
