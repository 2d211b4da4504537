/**
 * The corruption cases of holds for test/lua/validate-before-write.test.ts: every script that
 * opens, settles, reverses, closes, sweeps or locks, each case a corruption of a key it reads
 * and a call that must fail with nothing written. They run on that file's seeded ledger: cash,
 * alice and carol; the transfer `seed` (10, cash → alice); the holds `hold` (5, cash → alice,
 * an hour), `late` (3, cash → alice) and `late2` (2, alice → carol), both for a second.
 */
import type { Redis } from 'ioredis';
import { AMOUNT_MAX_STRING } from '../../src/config/limits.js';
import type { LedgerKeys } from '../../src/ledger/keys.js';
import type { TransferInput } from '../../src/ledger/ledger.js';
import { runScript } from '../../src/ledger/scripts.js';
import type { Fixture } from '../helpers/ledger.js';
import { type calls, script } from './calls.js';

export interface Case {
  name: string;
  /** Corrupts the ledger (deterministic: it is applied again after a reference run). */
  corrupt: (k: LedgerKeys) => Promise<unknown>;
  url?: '/accounts' | '/transfers' | '/transfers/batch' | '/ledgers';
  body?: object;
  /** Instead of a request: a call of the ledger or of the script, which must fail. */
  call?: () => Promise<unknown>;
  /** What the service logs for the 500, or the call's error: the check that caught it. */
  message: RegExp;
  /** A non-atomic batch whose failing chunk is not its first: the earlier chunks' batch. */
  decidedFirst?: object;
}

export interface Env {
  /** The seeded ledger, once it is set up. */
  fixture: () => Fixture;
  /** Its script callers, counted by its metrics as the ledger's calls are. */
  direct: () => ReturnType<typeof calls>;
  /** Seqs of the seeded transfer and holds, by id. */
  seqs: Record<string, string>;
  /** The ledger's fixed clock (ms). */
  nowMs: number;
}

type Row = [string, Case['corrupt'], () => Promise<unknown>, RegExp];
const cases = (rows: Row[], prefix = ''): Case[] => rows.map(([name, corrupt, call,
  message]) => ({ name: `${prefix}${name}`, corrupt, call, message }));

/** Corruptions, on the fixture's Redis. */
function corruptions(env: Env) {
  const r = (): Redis => env.fixture().redis;
  return {
    /** The key replaced by a string. */
    string: async (key: string) => {
      await r().del(key);
      await r().set(key, 'x');
    },
    hset: (key: string, field: string, value: string) => r().hset(key, field, value),
    hdel: (key: string, field: string) => r().hdel(key, field),
    /** A stream id not of the form 0-<n>, so that XADD 0-* fails. */
    badId: (key: string) => r().xadd(key, '5-1', 'x', '1'),
  };
}

/** transfer-9.lua opening a hold, through the ledger (no route takes holds yet). */
function transferCases(env: Env): Case[] {
  const c = corruptions(env);
  const hold = (over: Partial<TransferInput> = {}) => () => env.fixture().ledger.transfer({
    id: 'th', from: 'cash', to: 'alice', amount: '1', metadata: {}, createdBy: 'test',
    pending: true, timeoutSeconds: 60, ...over });
  return cases([
    ['the expiry index is a string', (k) => c.string(k.expiries()), hold(), /WRONGTYPE/],
    ['the hold-stats hash is a string', (k) => c.string(k.holdStats()), hold(), /WRONGTYPE/],
    ['without a timeout, the hold-stats hash is a string', (k) => c.string(k.holdStats()),
      hold({ timeoutSeconds: undefined }), /WRONGTYPE/],
    ['the journal holds an id not of the form 0-<seq>', (k) => c.badId(k.journal()), hold(),
      /equal or smaller/],
    ['an account lacks its last seq', (k) => c.hdel(k.account('alice'), 'lseq'), hold(),
      /lacks lseq/],
    ['a pending sum is not a number', (k) => c.hset(k.account('cash'), 'dp', 'abc'), hold(),
      /arithmetic on a nil value/],
    ['rejected: the rejections stream is a hash', (k) => c.hset(k.rejections(), 'x', '1'),
      hold({ from: 'ghost' }), /WRONGTYPE/],
  ], 'a hold: ');
}

/** transfer-batch-6.lua: two transfers, then a hold, through the ledger. */
function batchCases(env: Env, atomic: boolean): Case[] {
  const c = corruptions(env);
  const item = (id: string, to: string) => ({ id, from: 'cash', to, amount: '1', metadata: {},
    createdBy: 'test' });
  const holdLast = () => env.fixture().ledger.transferBatch({ atomic, transfers: [
    item('b1', 'alice'), item('b2', 'alice'),
    { ...item('b3', 'carol'), pending: true, timeoutSeconds: 60 }] });
  return cases([
    ['a later item is a hold: the expiry index is a string', (k) => c.string(k.expiries()),
      holdLast, /WRONGTYPE/],
    ['a later item is a hold: the hold-stats hash is a string',
      (k) => c.string(k.holdStats()), holdLast, /WRONGTYPE/],
    ['a later item is a hold whose account\'s pending sum is not a number',
      (k) => c.hset(k.account('carol'), 'cp', 'abc'), holdLast, /arithmetic on a nil value/],
  ], `${atomic ? 'atomic' : 'non-atomic'}: `);
}

/** settle-11.lua itself (the ledger reads the hold first): a post of `hold` by default. */
function settleCases(env: Env): Case[] {
  const c = corruptions(env);
  const expired = String(env.nowMs + 10_000);
  const post = (argv: Partial<Record<string, string>> = {}) => () => env.direct().settle({
    mode: 'post', id: 'p', holdId: 'hold', fromId: 'cash', toId: 'alice',
    now: String(env.nowMs), ...argv });
  const late = post({ holdId: 'late', now: expired });
  return cases([
    ['the state hash is a string', (k) => c.string(k.state()), post(), /WRONGTYPE/],
    ['the expiry index is a string', (k) => c.string(k.expiries()), post(), /WRONGTYPE/],
    ['the hold-stats hash is a string', (k) => c.string(k.holdStats()), post(), /WRONGTYPE/],
    ['a void: the hold-stats hash is a string', (k) => c.string(k.holdStats()),
      post({ mode: 'void' }), /WRONGTYPE/],
    ['the debit account has less pending than the hold',
      (k) => c.hset(k.account('cash'), 'dp', '4'), post(), /disagree/],
    ['the credit account has less pending than the hold',
      (k) => c.hset(k.account('alice'), 'cp', '4'), post(), /disagree/],
    ['an account lacks its last seq', (k) => c.hdel(k.account('alice'), 'lseq'), post(),
      /disagree/],
    // An account whose number is not the hold's is refused STALE_KEYS, writing nothing, like
    // keys of other accounts (test/lua/settle.test.ts); the ledger then gives up (a 500).
    ['the hold\'s state is none of posted, voided, expired',
      (k) => c.hset(k.state(), env.seqs.hold as string, 'x'), post(), /hold state x/],
    ['posting would take a total past 2^128-1',
      (k) => c.hset(k.account('alice'), 'cr', AMOUNT_MAX_STRING), post(), /overflows/],
    ['the journal is a string', (k) => c.string(k.journal()), post(), /WRONGTYPE/],
    ['a void: the journal holds an id not of the form 0-<seq>', (k) => c.badId(k.journal()),
      post({ mode: 'void' }), /equal or smaller/],
    ['the hold\'s id bucket points at a record that is missing',
      (k) => c.hset(k.transferBucket('hold'), 'hold', '99'), post(), /no record 99/],
    ['the post\'s own id bucket is a string', (k) => c.string(k.transferBucket('p')), post(),
      /WRONGTYPE/],
    ['rejected (more than held): the rejections stream is a hash',
      (k) => c.hset(k.rejections(), 'x', '1'), post({ amount: '6' }), /WRONGTYPE/],
    ['an expired hold, released as it is rejected: the expiry index is a string',
      (k) => c.string(k.expiries()), late, /WRONGTYPE/],
    ['an expired hold, released as it is rejected: less pending than the hold',
      (k) => c.hset(k.account('cash'), 'dp', '2'), late, /disagree/],
    ['the ledger meta is a string', (k) => c.string(k.meta()), post(), /WRONGTYPE/],
  ]);
}

/** reverse-9.lua itself (the ledger reads the original first): 5 of `seed`'s 10 back. */
function reverseCases(env: Env): Case[] {
  const c = corruptions(env);
  const back = (argv: Partial<Record<string, string>> = {}) => () => env.direct().reverse({
    id: 'r', originalId: 'seed', amount: '5', fromId: 'alice', toId: 'cash',
    now: String(env.nowMs), ...argv });
  const seed = () => env.seqs.seed as string;
  return cases([
    ['the state hash is a string', (k) => c.string(k.state()), back(), /WRONGTYPE/],
    ['the total reversed is not a number', (k) => c.hset(k.state(), seed(), 'x'), back(),
      /reversed total/],
    ['the total reversed exceeds the original', (k) => c.hset(k.state(), seed(), '11'),
      back(), /reversed total/],
    // Another number than the original's: STALE_KEYS, as in settle above.
    ['an account lacks its last seq', (k) => c.hdel(k.account('alice'), 'lseq'), back(),
      /lacks lseq/],
    ['a stored total is not a number', (k) => c.hset(k.account('alice'), 'dr', 'abc'),
      back(), /arithmetic on a nil value/],
    ['the debit account is a string', (k) => c.string(k.account('alice')), back(),
      /WRONGTYPE/],
    ['the journal is a string', (k) => c.string(k.journal()), back(), /WRONGTYPE/],
    ['the journal holds an id not of the form 0-<seq>', (k) => c.badId(k.journal()), back(),
      /equal or smaller/],
    ['rejected (more than reversible): the rejections stream is a hash',
      (k) => c.hset(k.rejections(), 'x', '1'), back({ amount: '11' }), /WRONGTYPE/],
    ['the ledger meta is a string', (k) => c.string(k.meta()), back(), /WRONGTYPE/],
  ]);
}

/** close-account-2.lua through the ledger (no route yet): closing carol. */
function closeCases(env: Env): Case[] {
  const c = corruptions(env);
  const close = () => env.fixture().ledger.closeAccount('carol');
  return cases([
    ['the account is a string', (k) => c.string(k.account('carol')), close, /WRONGTYPE/],
    ['the ledger meta is a string', (k) => c.string(k.meta()), close, /WRONGTYPE/],
    ['the ledger is in another data format', (k) => c.hset(k.meta(), 'fmt', '1'), close,
      /FORMAT_UNSUPPORTED/],
  ]);
}

/** expire-holds-6.lua itself (the ledger reads the index first): `late`, then `late2`. */
function expireCases(env: Env): Case[] {
  const c = corruptions(env);
  const sweep = () => env.direct().expire([[env.seqs.late as string, 'cash', 'alice'],
    [env.seqs.late2 as string, 'alice', 'carol']], String(env.nowMs + 10_000));
  return cases([
    ['the state hash is a string', (k) => c.string(k.state()), sweep, /WRONGTYPE/],
    ['the expiry index is a string', (k) => c.string(k.expiries()), sweep, /WRONGTYPE/],
    ['the hold-stats hash is a string', (k) => c.string(k.holdStats()), sweep, /WRONGTYPE/],
    ['the journal is a string', (k) => c.string(k.journal()), sweep, /WRONGTYPE/],
    ['the first hold\'s debit account has less pending than the hold',
      (k) => c.hset(k.account('cash'), 'dp', '2'), sweep, /disagree/],
    ['the second hold\'s credit account has less pending than the hold (the first is not ' +
      'released either)', (k) => c.hset(k.account('carol'), 'cp', '1'), sweep, /disagree/],
    ['an account lacks its last seq', (k) => c.hdel(k.account('carol'), 'lseq'), sweep,
      /disagree/],
    ['an account is a string', (k) => c.string(k.account('carol')), sweep, /WRONGTYPE/],
    ['the ledger meta is a string', (k) => c.string(k.meta()), sweep, /WRONGTYPE/],
  ]);
}

/** lock-1.lua: taking the sweeper's lock. */
function lockCases(env: Env): Case[] {
  const take = () => {
    const f = env.fixture();
    return runScript(f.redis, script('lock'), [f.keys.lock('sweeper')],
      ['0123456789abcdef0123456789abcdef', 'take', '5000'], f.ledger.observer);
  };
  return cases([['the lock is a hash',
    (k) => env.fixture().redis.hset(k.lock('sweeper'), 'x', '1'), take, /WRONGTYPE/]]);
}

/**
 * follow-5.lua saving a position (its only write), by the holder of the lock, which each
 * corruption sets first: the follower's lock and position, the journal, the format.
 */
function followCases(env: Env): Case[] {
  const c = corruptions(env);
  const token = '0123456789abcdef0123456789abcdef';
  const save = (seq = '1') => () => {
    const f = env.fixture();
    const k = f.keys;
    return runScript(f.redis, script('follow'),
      [k.meta(), k.lock('cdc'), k.positions(), k.journal(), k.accountIds()],
      [token, 'cdc', 'save', seq], f.ledger.observer);
  };
  const held = (corrupt: Case['corrupt']): Case['corrupt'] => async (k) => {
    await env.fixture().redis.set(k.lock('cdc'), token);
    return corrupt(k);
  };
  return cases([
    ['the positions hash is a string', held((k) => c.string(k.positions())), save(),
      /WRONGTYPE/],
    ['the journal is a string', held((k) => c.string(k.journal())), save(), /WRONGTYPE/],
    ['a position past the journal\'s newest record', held(async () => undefined),
      save('999999'), /position past the journal/],
    ['the ledger is in another data format', held((k) => c.hset(k.meta(), 'fmt', '1')),
      save(), /data format not supported/],
  ]);
}

/**
 * archive-7.lua's writes, by the holder of its lock (each corruption takes it first): saving
 * the archive's positions, and freeing the seeded transfer (archived up to it).
 */
function archiveCases(env: Env): Case[] {
  const c = corruptions(env);
  const token = '0123456789abcdef0123456789abcdef';
  const hash = 'ab'.repeat(32);
  const run = (args: string[], buckets: string[] = []) => {
    const f = env.fixture();
    const k = f.keys;
    return runScript(f.redis, script('archive'), [k.meta(), k.lock('archive'), k.positions(),
      k.journal(), k.rejections(), k.state(), k.pinned(), ...buckets],
    [token, ...args], f.ledger.observer);
  };
  const save = (seq = '1') => () => run(['save', seq, '0', hash, hash]);
  const seed = () => env.seqs.seed as string;
  const free = (bucketOf = 'seed', id = 'seed') => () => run(['free', seed(), '0', '1', 'j',
    seed(), '8', id, ''], [env.fixture().keys.transferBucket(bucketOf)]);
  const held = (corrupt: Case['corrupt'], archived = false): Case['corrupt'] => async (k) => {
    await env.fixture().redis.set(k.lock('archive'), token);
    if (archived) await env.fixture().redis.hset(k.positions(), 'archive', seed());
    return corrupt(k);
  };
  return cases([
    ['save: the positions hash is a string', held((k) => c.string(k.positions())), save(),
      /WRONGTYPE/],
    ['save: a position past the journal\'s newest record', held(async () => undefined),
      save('999999'), /position past the stream/],
    ['save: the ledger is in another data format', held((k) => c.hset(k.meta(), 'fmt', '1')),
      save(), /data format not supported/],
    ['free: the pinned holds are a string', held((k) => c.string(k.pinned()), true), free(),
      /WRONGTYPE/],
    ['free: past what is archived', held(async () => undefined), free(),
      /free past what is archived/],
    ['free: an item in another id bucket', held(async () => undefined, true), free('other'),
      /not indexed as such/],
    // Another record's id, in its own bucket: the index maps it to that record's seq.
    ['free: an item with another record\'s id', held(async () => undefined, true),
      free('hold', 'hold'), /not indexed as such/],
    ['free: the record\'s index entry is gone', held((k) => c.hdel(k.transferBucket('seed'),
      'seed'), true), free(), /not indexed as such/],
  ], 'archive ');
}

/** The cases of each script that holds brought. */
export function holdCases(env: Env): Record<string, Case[]> {
  return {
    transfer: transferCases(env),
    'transfer-batch': [...batchCases(env, true), ...batchCases(env, false)],
    settle: settleCases(env),
    reverse: reverseCases(env),
    'close-account': closeCases(env),
    'expire-holds': expireCases(env),
    lock: lockCases(env),
    follow: followCases(env),
    archive: archiveCases(env),
  };
}
