/**
 * The scripts as contracts, called directly through ioredis: one case per status, in the
 * order the script checks them, each built so that every later check would fail too (so the
 * case proves precedence, not just reachability).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { loadScripts, runScript, type Script } from '../../src/ledger/scripts.js';
import { statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture, withoutRejection } from '../helpers/ledger.js';

let f: Fixture;
const scripts = loadScripts();
const script = (name: string) => scripts.get(name) as Script;
const NOW = '1795000000000';
const MAX = AMOUNT_MAX.toString();

beforeAll(async () => { f = await fixture(); });
afterAll(async () => { await f.close(); });

function createAccount(keys: { meta: string; account: string },
  argv: Partial<Record<string, string>> = {}) {
  const a = { id: 'x', currency: 'USD', overdraft: '0', metadata: '{}', now: NOW, by: 'svc',
    ...argv };
  return runScript(f.redis, script('create-account'),
    [keys.meta, keys.account, f.keys.accountIds()],
    [a.id, a.currency, a.overdraft, a.metadata, a.now, a.by] as string[]);
}

function transfer(argv: Partial<Record<string, string>>) {
  const a = { id: 't', from: 'a', to: 'b', amount: '1', currency: '', metadata: '{}', now: NOW,
    by: 'svc', ...argv };
  const k = f.keys;
  return runScript(f.redis, script('transfer'),
    [k.meta(), k.transferBucket(a.id), k.account(a.from), k.account(a.to), k.journal(),
      k.rejections(), k.accountIds()],
    [a.id, a.from, a.to, a.amount, a.currency, a.metadata, a.now, a.by]);
}

async function account(id: string, currency: string, overdraft = '0') {
  expect(await createAccount({ meta: f.keys.meta(), account: f.keys.account(id) },
    { id, currency, overdraft })).toEqual([S.OK, id]);
}

describe('create-account-3', () => {
  test('OK creates the account with zero totals, a number and the pending fields ' +
    'holds will use', async () => {
    expect(await createAccount({ meta: f.keys.meta(), account: f.keys.account('c1') },
      { id: 'c1' })).toEqual([S.OK, 'c1']);
    expect(await f.redis.hgetall(f.keys.account('c1'))).toEqual({ cur: 'USD', dr: '0', cr: '0',
      od: '0', m: '{}', at: NOW, by: 'svc', lseq: '0', n: '1', dp: '0', cp: '0' });
    expect(await f.redis.hgetall(f.keys.accountIds())).toEqual({ 1: 'c1' });
    expect(await f.redis.hgetall(f.keys.meta())).toEqual({ fmt: '2', an: '1' });
  });

  test('FORMAT_UNSUPPORTED beats a bad argument; nothing written', async () => {
    const meta = `${f.keys.meta()}-future`;
    await f.redis.hset(meta, 'fmt', '99');
    const before = await f.redis.exists(f.keys.account('c2'));
    expect(await createAccount({ meta, account: f.keys.account('c2') },
      { id: 'c2', overdraft: '-1' })).toEqual([S.FORMAT_UNSUPPORTED, 'c2']);
    expect(await f.redis.exists(f.keys.account('c2'))).toBe(before);
  });

  test('INVALID_ARGUMENT beats EXISTS', async () => {
    for (const bad of [{ overdraft: '01' }, { overdraft: (AMOUNT_MAX + 1n).toString() },
      { currency: '' }, { metadata: '[]' }, { now: 'soon' }, { id: 'c'.repeat(129) }, { by: '' },
      { by: 'k'.repeat(65) }]) {
      expect(await createAccount({ meta: f.keys.meta(), account: f.keys.account('c1') },
        { id: 'c1', ...bad })).toEqual([S.INVALID_ARGUMENT, bad.id ?? 'c1']);
    }
  });

  test('EXISTS returns the stored account and writes nothing', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const reply = await createAccount({ meta: f.keys.meta(), account: f.keys.account('c1') },
      { id: 'c1', currency: 'EUR' });
    expect(reply).toEqual([S.EXISTS, 'c1', expect.arrayContaining(['cur', 'USD'])]);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });
});

describe('transfer-7', () => {
  beforeAll(async () => {
    await account('cash', 'USD', 'unlimited');
    await account('alice', 'USD');
    await account('euro', 'EUR', 'unlimited');
    await account('full', 'USD');
  });

  test('OK commits: seq, balances, the journal record, the id and both chains', async () => {
    expect(await transfer({ id: 'ok', from: 'cash', to: 'alice', amount: '100' }))
      .toEqual([S.OK, 'ok', 'USD', '1', '-100', '100']);
    // Accounts by number (cash is 2, alice 3); pf/pt: their entries before this one (none).
    expect(await f.redis.xrange(f.keys.journal(), '-', '+')).toEqual([['0-1', ['i', 'ok',
      'f', '2', 't', '3', 'a', '100', 'k', 'USD', 'm', '{}', 'w', NOW, 'b', 'svc', 'fb', '-100',
      'tb', '100', 'pf', '0', 'pt', '0']]]);
    expect(await f.redis.hget(f.keys.transferBucket('ok'), 'ok')).toBe('1');
    expect(await f.redis.hget(f.keys.account('alice'), 'lseq')).toBe('1');
    expect(await f.redis.hget(f.keys.account('cash'), 'lseq')).toBe('1');
    expect(await transfer({ id: 'ok2', from: 'cash', to: 'alice', amount: '1' }))
      .toEqual([S.OK, 'ok2', 'USD', '2', '-101', '101']);
    const [[, second = []] = []] = await f.redis.xrange(f.keys.journal(), '0-2', '0-2');
    expect(second.slice(-4)).toEqual(['pf', '1', 'pt', '1']);
  });

  test('FORMAT_UNSUPPORTED beats INVALID_ARGUMENT', async () => {
    await f.redis.hset(f.keys.meta(), 'fmt', '1');
    try {
      expect(await transfer({ id: 'fmt', amount: '0' })).toEqual([S.FORMAT_UNSUPPORTED, 'fmt']);
    } finally {
      await f.redis.hset(f.keys.meta(), 'fmt', '2');
    }
  });

  test('INVALID_ARGUMENT beats EXISTS (the id "ok" is decided)', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const bad of [{ amount: '0' }, { amount: '012' }, { amount: '1e3' }, { amount: '-5' },
      { amount: (AMOUNT_MAX + 1n).toString() }, { from: 'alice', to: 'alice' }, { metadata: 'x' },
      { now: '' }, { currency: 'C'.repeat(17) }, { from: '' }, { by: '' }]) {
      expect(await transfer({ id: 'ok', from: 'cash', to: 'alice', amount: '100', ...bad }),
        JSON.stringify(bad)).toEqual([S.INVALID_ARGUMENT, 'ok']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('EXISTS beats everything after it, returning the record unchanged', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const reply = await transfer({ id: 'ok', from: 'ghost', to: 'alice', amount: MAX });
    expect(reply).toEqual([S.EXISTS, 'ok', '1', expect.arrayContaining(['i', 'ok', 'a', '100']),
      'cash', 'alice']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('ACCOUNT_NOT_FOUND beats CURRENCY_MISMATCH; recorded', async () => {
    expect(await transfer({ id: 'nf', from: 'ghost', to: 'euro', currency: 'USD' }))
      .toEqual([S.ACCOUNT_NOT_FOUND, 'nf', 'EUR']);
    expect(await f.redis.hget(f.keys.transferBucket('nf'), 'nf')).toBe('-1');
    expect(await f.redis.xrange(f.keys.rejections(), '-', '+')).toEqual([['0-1', ['i', 'nf',
      's', String(S.ACCOUNT_NOT_FOUND), 'f', 'ghost', 't', 'euro', 'a', '1', 'c', 'USD', 'k', 'EUR',
      'm', '{}', 'w', NOW, 'b', 'svc']]]);
  });

  test('CURRENCY_MISMATCH beats INSUFFICIENT_FUNDS', async () => {
    expect(await transfer({ id: 'cm1', from: 'alice', to: 'euro', amount: '1000' }))
      .toEqual([S.CURRENCY_MISMATCH, 'cm1', 'USD']);
    expect(await transfer({ id: 'cm2', from: 'alice', to: 'cash', amount: '1000',
      currency: 'EUR' })).toEqual([S.CURRENCY_MISMATCH, 'cm2', 'USD']);
  });

  test('INSUFFICIENT_FUNDS beats BALANCE_OVERFLOW', async () => {
    await f.redis.hset(f.keys.account('full'), 'cr', MAX);
    expect(await transfer({ id: 'if', from: 'alice', to: 'full', amount: '102' }))
      .toEqual([S.INSUFFICIENT_FUNDS, 'if', 'USD']);
  });

  test('BALANCE_OVERFLOW last; the rejection record is the only write', async () => {
    const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
    expect(await transfer({ id: 'of', from: 'alice', to: 'full', amount: '1' }))
      .toEqual([S.BALANCE_OVERFLOW, 'of', 'USD']);
    expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, 'of')).toEqual(before);
  });
});
