/**
 * Redis never rolls back a script, so every script that writes must find every problem before
 * its first write. The scripts are enumerated from lua/ (`loadScripts()`): a script writes
 * unless its `#!lua` line has the `no-writes` flag, and a writing script without cases in CASES
 * fails the first test. Each case corrupts keys the script reads, sends the HTTP request that
 * runs it, and proves that the script failed (a 500, the service log naming the check, the
 * script's own metric counting the call) and wrote nothing: the full dump of the ledger is
 * unchanged. Where no HTTP route runs the script, a case calls the ledger; where the ledger
 * reads first what the script reads (a post reads its hold, a sweep the expiry index), it calls
 * the script itself, so that the script meets the corruption: then the call's error names the
 * check. A non-atomic batch runs one script per chunk, so a failing chunk leaves earlier
 * chunks decided; for it the expected dump is that of those earlier chunks sent alone (the
 * clock is fixed, so the same transfers write the same bytes).
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { limits } from '../../src/config/limits.js';
import type { LedgerKeys } from '../../src/ledger/keys.js';
import { loadScripts } from '../../src/ledger/scripts.js';
import { AUTH_HEADER, TEST_KEYS } from '../helpers/auth.js';
import {
  dumpLedger, type Fixture, fixture, json, uniqueLedgerName,
} from '../helpers/ledger.js';
import { calls } from './calls.js';
import { type Case, holdCases } from './hold-corruptions.js';

const NOW_MS = 1_767_225_600_000;
/** The fixture's ledger, named here so that the cases' bodies can name it. */
const LEDGER = uniqueLedgerName();

let f: Fixture;
let app: App;
let logged = '';
/** Script callers whose calls the fixture's metrics count, as the ledger's are. */
let direct: ReturnType<typeof calls>;
/** Seqs of the seeded holds and transfer. */
const seqs: Record<string, string> = {};

const post = (url: string, payload: object) =>
  app.inject({ method: 'POST', url, headers: { ...json, ...AUTH_HEADER }, payload });

beforeAll(async () => {
  f = await fixture({ now: () => NOW_MS, ledgerName: LEDGER });
  // An app of our own around the fixture's ledger, to read the service log of each 500. Its
  // metrics are off: the script calls are counted by the fixture's app, whose metrics observe
  // the ledger.
  const stream = new Writable({ write(chunk, _enc, done) { logged += chunk; done(); } });
  app = await buildApp({ ledger: f.ledger, redis: f.redis, logger: { level: 'error', stream },
    metrics: false, auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 1_000_000 } });
  await app.ready();
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0'], ['carol', '0']]) {
    const res = await post('/accounts', { id, currency: 'USD', overdraftLimit: od });
    expect(res.statusCode).toBe(201);
  }
  const res = await post('/transfers', { id: 'seed', from: 'cash', to: 'alice', amount: '10' });
  expect(res.statusCode).toBe(201);
  // Open holds (test/lua/hold-corruptions.ts): `hold` for an hour, `late` and `late2` a second.
  for (const [id, from, to, amount, timeoutSeconds] of [['hold', 'cash', 'alice', '5', 3600],
    ['late', 'cash', 'alice', '3', 1], ['late2', 'alice', 'carol', '2', 1]] as const) {
    const outcome = await f.ledger.transfer({ id, from, to, amount, metadata: {},
      createdBy: 'test', pending: true, timeoutSeconds });
    expect(outcome.kind === 'decided' && outcome.transfer.status).toBe('committed');
  }
  for (const id of ['seed', 'hold', 'late', 'late2']) {
    seqs[id] = String(await f.redis.hget(f.keys.transferBucket(id), id));
  }
  direct = calls(f, f.ledger.observer);
});
afterAll(async () => {
  await app.close();
  await f.close();
});

const replace = async (key: string, write: () => Promise<unknown>) => {
  await f.redis.del(key);
  await write();
};

/** create-account-3.lua: reads meta, the new account's key and the account-number index. */
const createAccountCases: Case[] = [
  ['the ledger meta is a string',
    (k: LedgerKeys) => replace(k.meta(), () => f.redis.set(k.meta(), 'x')), /WRONGTYPE/],
  ['the ledger is in another data format', (k: LedgerKeys) => f.redis.hset(k.meta(), 'fmt', '1'),
    /FORMAT_UNSUPPORTED/],
  ['the last account number is not a number',
    (k: LedgerKeys) => f.redis.hset(k.meta(), 'an', 'x'), /account number x/],
  ['the next account number is taken', async (k: LedgerKeys) => {
    const last = await f.redis.hget(k.meta(), 'an');
    await f.redis.hset(k.accountIds(), String(Number(last) + 1), 'someone');
  }, /account number reused/],
  ['the account-number index is a string',
    (k: LedgerKeys) => replace(k.accountIds(), () => f.redis.set(k.accountIds(), 'x')),
    /WRONGTYPE/],
  ['the new account\'s key is a string', (k: LedgerKeys) => f.redis.set(k.account('newbie'), 'x'),
    /WRONGTYPE/],
].map(([name, corrupt, message]) => ({ name, corrupt, message, url: '/accounts',
  body: { id: 'newbie', currency: 'USD' } }) as Case);

/**
 * create-ledger-1.lua: reads the ledger's meta hash, its one key. `POST /ledgers` naming the
 * fixture's ledger (the default one, recorded when the app became ready) runs it on that key.
 */
const createLedgerCases: Case[] = [
  ['the ledger meta is a string', (k: LedgerKeys) => replace(k.meta(), () =>
    f.redis.set(k.meta(), 'x'))],
  ['the ledger meta is a sorted set', (k: LedgerKeys) => replace(k.meta(), () =>
    f.redis.zadd(k.meta(), 0, 'ln'))],
].map(([name, corrupt]) => ({ name, corrupt, message: /WRONGTYPE/, url: '/ledgers',
  body: { name: LEDGER } }) as Case);

type Target = { from: string; to: string };
const usual: Target = { from: 'cash', to: 'alice' };

/** transfer-9.lua: one transfer `t` of 1 between `target`'s accounts. */
const transferCases: Case[] = ([
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
  ['the ledger is in another data format', (k) => f.redis.hset(k.meta(), 'fmt', '1'), usual,
    /FORMAT_UNSUPPORTED/],
  ['a stored total is not a number', (k) => f.redis.hset(k.account('alice'), 'cr', 'abc'),
    usual, /arithmetic on a nil value/],
  ['an account lacks its last seq', (k) => f.redis.hdel(k.account('alice'), 'lseq'), usual,
    /lacks lseq/],
  ['an account lacks its number', (k) => f.redis.hdel(k.account('cash'), 'n'), usual,
    /lacks lseq/],
] as Array<[string, Case['corrupt'], Target, RegExp]>).map(([name, corrupt, target, message]) =>
  ({ name, corrupt, message, url: '/transfers', body: { id: 't', ...target, amount: '1' } }));
transferCases.push({ name: 'the account-number index is a string (read for a replay)',
  corrupt: (k) => replace(k.accountIds(), () => f.redis.set(k.accountIds(), 'x')),
  url: '/transfers', body: { id: 'seed', from: 'cash', to: 'alice', amount: '10' },
  message: /WRONGTYPE/ });

const item = (id: string, from: string, to: string, amount = '1') => ({ id, from, to, amount });
/** Two transfers that commit (in memory) before the third reaches `to`. */
const laterTo = (to: string) =>
  [item('b1', 'cash', 'alice'), item('b2', 'cash', 'alice'), item('b3', 'cash', to)];

/** Spans two non-atomic chunks; `carol` appears only in the second item of the second. */
const CHUNK = limits.BATCH_CHUNK_TRANSFERS_MAX;
const long = Array.from({ length: CHUNK + 3 }, (_, i) =>
  item(`l${i}`, 'cash', i === CHUNK + 1 ? 'carol' : 'alice'));

/** transfer-batch-6.lua, as one atomic script and as non-atomic chunks. */
function batchCases(atomic: boolean): Case[] {
  const kind = atomic ? 'atomic' : 'non-atomic';
  const cases: Array<[string, Case['corrupt'], object[], RegExp]> = [
    ['the ledger meta is a string',
      (k) => replace(k.meta(), () => f.redis.set(k.meta(), 'x')), laterTo('alice'), /WRONGTYPE/],
    ['the ledger is in another data format', (k) => f.redis.hset(k.meta(), 'fmt', '1'),
      laterTo('alice'), /FORMAT_UNSUPPORTED/],
    ['the first item\'s credit account is a string', (k) => f.redis.set(k.account('bob'), 'x'),
      [item('b1', 'cash', 'bob')], /WRONGTYPE/],
    ['a later item\'s debit account is a list', (k) => f.redis.rpush(k.account('bob'), 'x'),
      [item('b1', 'cash', 'alice'), item('b2', 'cash', 'alice'), item('b3', 'bob', 'alice')],
      /WRONGTYPE/],
    ['a later item\'s account lacks its last seq',
      (k) => f.redis.hdel(k.account('carol'), 'lseq'), laterTo('carol'), /carol lacks lseq or n/],
    ['a later item\'s account lacks its number', (k) => f.redis.hdel(k.account('carol'), 'n'),
      laterTo('carol'), /carol lacks lseq or n/],
    ['a later item\'s account has a last seq that is not a number',
      (k) => f.redis.hset(k.account('carol'), 'lseq', 'x'), laterTo('carol'),
      /carol lacks lseq or n/],
    ['a later item\'s account has a total that is not a number',
      (k) => f.redis.hset(k.account('carol'), 'cr', 'abc'), laterTo('carol'),
      /arithmetic on a nil value/],
    ['the journal is a string',
      (k) => replace(k.journal(), () => f.redis.set(k.journal(), 'x')), laterTo('alice'),
      /WRONGTYPE/],
    ['the journal holds an id not of the form 0-<seq>',
      (k) => f.redis.xadd(k.journal(), '5-1', 'x', '1'), laterTo('alice'), /stream id 5-1/],
    ['a later item\'s id bucket is a string', (k) => f.redis.set(k.transferBucket('b3'), 'x'),
      laterTo('alice'), /WRONGTYPE/],
    ['a later item\'s id bucket points at a record that is missing',
      (k) => f.redis.hset(k.transferBucket('b3'), 'b3', '99'), laterTo('alice'),
      /no record 99/],
    ['the account-number index is a string, read for a replayed item',
      (k) => replace(k.accountIds(), () => f.redis.set(k.accountIds(), 'x')),
      [item('b1', 'cash', 'alice'), item('seed', 'cash', 'alice', '10')], /WRONGTYPE/],
    [`a ${CHUNK + 3}-item batch whose account in item ${CHUNK + 2} lacks its last seq`,
      (k) => f.redis.hdel(k.account('carol'), 'lseq'), long, /carol lacks lseq or n/],
  ];
  if (!atomic) {
    // An atomic batch refuses a rejection before it reads the rejections stream.
    const rejected = [item('b1', 'cash', 'alice'), item('b2', 'ghost', 'alice')];
    cases.push(['the rejections stream is a hash', (k) => f.redis.hset(k.rejections(), 'x', '1'),
      rejected, /WRONGTYPE/]);
    cases.push(['the rejections stream holds an id not of the form 0-<n>',
      (k) => f.redis.xadd(k.rejections(), '5-1', 'x', '1'), rejected, /stream id 5-1/]);
  }
  return cases.map(([name, corrupt, transfers, message]) => ({
    name: `${kind}: ${name}`, corrupt, message, url: '/transfers/batch',
    body: { atomic, transfers },
    ...(!atomic && transfers.length > CHUNK
      ? { decidedFirst: { atomic, transfers: transfers.slice(0, CHUNK) } } : {}),
  }));
}

const CASES: Record<string, Case[]> = {
  'create-account': createAccountCases,
  'create-ledger': createLedgerCases,
  transfer: transferCases,
  'transfer-batch': [...batchCases(true), ...batchCases(false)],
};
// Holds, and the scripts that came with them (test/lua/hold-corruptions.ts).
const held = holdCases({ fixture: () => f, direct: () => direct, seqs, nowMs: NOW_MS });
for (const [script, cases] of Object.entries(held)) {
  CASES[script] = [...(CASES[script] ?? []), ...cases];
}

/** The scripts in lua/ that may write: all but those flagged `no-writes`. */
const writeScripts = [...loadScripts().values()].filter((script) => {
  const flags = /^#!lua flags=(\S*)/.exec(script.source)?.[1];
  if (flags === undefined) throw new Error(`${script.name}: no #!lua flags line`);
  return !flags.split(',').includes('no-writes');
}).map((script) => script.name);

test('every script that writes has corruption cases, and every case a script that writes', () => {
  expect(writeScripts).toContain('transfer');
  expect(writeScripts.filter((name) => (CASES[name]?.length ?? 0) === 0),
    'write scripts without cases').toEqual([]);
  expect(Object.keys(CASES).filter((name) => !writeScripts.includes(name)),
    'cases for no write script').toEqual([]);
});

/** Calls of `script` so far, all outcomes, from `GET /metrics` of the fixture's app. */
async function scriptCalls(script: string): Promise<number> {
  const res = await f.app.inject({ method: 'GET', url: '/metrics', headers: AUTH_HEADER });
  expect(res.statusCode).toBe(200);
  let calls = 0;
  for (const line of res.body.split('\n')) {
    if (line.startsWith('ledger_script_duration_seconds_count{')
      && line.includes(`script="${script}"`)) {
      calls += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return calls;
}

/** The message of the newest error logged with a 500. */
function lastInternalError(): string | undefined {
  const lines = logged.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as
    { msg?: string; err?: { message?: string } });
  return lines.filter((l) => l.msg === 'internal error').at(-1)?.err?.message;
}

/** Puts the ledger back as `saved`, a dump of hashes, streams and sorted sets only. */
async function restore(saved: string): Promise<void> {
  const names = await f.redis.keys(f.keys.all());
  if (names.length > 0) await f.redis.del(...names);
  for (const [key, type, value] of JSON.parse(saved) as Array<[string, string, unknown]>) {
    if (type === 'hash') await f.redis.hset(key, value as Record<string, string>);
    else if (type === 'stream') {
      for (const [id, fields] of value as Array<[string, string[]]>) {
        await f.redis.xadd(key, id, ...fields);
      }
    } else if (type === 'zset') {
      const flat = value as string[]; // member, score, member, score…
      for (let i = 0; i < flat.length; i += 2) {
        await f.redis.zadd(key, flat[i + 1] as string, flat[i] as string);
      }
    } else throw new Error(`cannot restore ${key} of type ${type}`);
  }
  expect(await dumpLedger(f.redis, f.keys)).toBe(saved);
}

const ALL = Object.entries(CASES).flatMap(([script, cases]) =>
  cases.map((c): [string, string, Case] => [script, c.name, c]));

/** Dumps compared as data, so that a failure shows the keys and records that differ. */
const parsed = (dump: string) => JSON.parse(dump) as unknown[];

test.each(ALL)('%s: %s: the script fails and writes nothing', async (script, _name, c) => {
  const saved = await dumpLedger(f.redis, f.keys);
  try {
    await c.corrupt(f.keys);
    const before = await dumpLedger(f.redis, f.keys);
    let expected = before;
    if (c.decidedFirst) {
      const first = await post(c.url as string, c.decidedFirst);
      expect(first.statusCode, first.body).toBe(200);
      expected = await dumpLedger(f.redis, f.keys);
      expect(expected).not.toBe(before);
      await restore(saved);
      await c.corrupt(f.keys);
      expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    }
    const calls = await scriptCalls(script);
    if (c.call) {
      await expect(c.call()).rejects.toThrow(c.message);
      expect(parsed(await dumpLedger(f.redis, f.keys))).toEqual(parsed(expected));
    } else {
      const res = await post(c.url as string, c.body as object);
      expect(res.statusCode, res.body).toBe(500);
      expect(res.json()).toMatchObject({ code: 'INTERNAL',
        detail: 'internal error; see the service log' });
      expect(parsed(await dumpLedger(f.redis, f.keys))).toEqual(parsed(expected));
      expect(lastInternalError()).toMatch(c.message);
    }
    expect(await scriptCalls(script)).toBeGreaterThan(calls);
  } finally {
    // The next case starts from the same ledger, whatever this one left.
    await restore(saved);
  }
});
