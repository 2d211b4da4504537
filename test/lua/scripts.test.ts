/**
 * The scripts as contracts, called directly through ioredis: one case per status, in the
 * order the script checks them, each built so that every later check would fail too (so the
 * case proves precedence, not just reachability). Here create-account, create-ledger and
 * transfer, holds included; the other writing scripts and the data format have files of their
 * own beside it.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AMOUNT_MAX, limits } from '../../src/config/limits.js';
import { runScript } from '../../src/ledger/scripts.js';
import { type ScriptStatus, statusCode as S } from '../../src/ledger/status.js';
import { dumpLedger, type Fixture, fixture, withoutRejection } from '../helpers/ledger.js';
import { calls, MAX, NOW as NOW_MS, script } from './calls.js';

let f: Fixture;
let c: ReturnType<typeof calls>;
const NOW = String(NOW_MS);

beforeAll(async () => {
  f = await fixture();
  c = calls(f);
});
afterAll(async () => { await f.close(); });

/** create-account-3.lua on the ledger whose meta key is `meta` (the account's key: its id). */
function createAccount(meta: string, argv: Partial<Record<string, string>> = {}) {
  return c.createAccount({ ...argv, meta });
}

const transfer = (argv: Partial<Record<string, string>>) => c.transfer(argv);

async function account(id: string, currency: string, overdraft = '0') {
  expect(await createAccount(f.keys.meta(), { id, currency, overdraft })).toEqual([S.OK, id]);
}

describe('create-account-3', () => {
  test('OK creates the account with zero totals, a number and the pending fields ' +
    'holds will use', async () => {
    expect(await createAccount(f.keys.meta(), { id: 'c1' })).toEqual([S.OK, 'c1']);
    expect(await f.redis.hgetall(f.keys.account('c1'))).toEqual({ cur: 'USD', dr: '0', cr: '0',
      od: '0', m: '{}', at: NOW, by: 'svc', lseq: '0', n: '1', dp: '0', cp: '0' });
    expect(await f.redis.hgetall(f.keys.accountIds())).toEqual({ 1: 'c1' });
    // The ledger's own record (ln, lm, lc) was written when the app became ready: the script
    // added the data format and the account number beside it, and nothing else.
    expect(await f.redis.hgetall(f.keys.meta())).toEqual({ fmt: '3', an: '1',
      ln: f.keys.ledger, lm: '{}', lc: expect.stringMatching(/^[1-9]\d{12}$/) });
  });

  test('FORMAT_UNSUPPORTED beats a bad argument; nothing written', async () => {
    const meta = `${f.keys.meta()}-future`;
    await f.redis.hset(meta, 'fmt', '99');
    const before = await f.redis.exists(f.keys.account('c2'));
    expect(await createAccount(meta, { id: 'c2', overdraft: '-1' }))
      .toEqual([S.FORMAT_UNSUPPORTED, 'c2']);
    expect(await f.redis.exists(f.keys.account('c2'))).toBe(before);
  });

  test('INVALID_ARGUMENT beats EXISTS', async () => {
    for (const bad of [{ overdraft: '01' }, { overdraft: (AMOUNT_MAX + 1n).toString() },
      { currency: '' }, { metadata: '[]' }, { now: 'soon' }, { id: 'c'.repeat(129) }, { by: '' },
      { by: 'k'.repeat(65) }]) {
      expect(await createAccount(f.keys.meta(), { id: 'c1', ...bad }))
        .toEqual([S.INVALID_ARGUMENT, bad.id ?? 'c1']);
    }
  });

  test('EXISTS returns the stored account and writes nothing', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const reply = await createAccount(f.keys.meta(), { id: 'c1', currency: 'EUR' });
    expect(reply).toEqual([S.EXISTS, 'c1', expect.arrayContaining(['cur', 'USD'])]);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });
});

/** create-ledger-1.lua on the meta key `meta`: name, metadata JSON and createdAt (ms). */
function createLedger(meta: string, name: string, metadata = '{}', now = NOW) {
  return runScript(f.redis, script('create-ledger'), [meta], [name, metadata, now]);
}

describe('create-ledger-1', () => {
  /** A meta key of its own (the fixture's ledger was recorded when its app became ready). */
  const meta = () => `${f.keys.meta()}-ledger`;

  test('OK records name, metadata and createdAt in the meta hash, and echoes them', async () => {
    expect(await createLedger(meta(), 'eu-1', '{"region":"eu"}'))
      .toEqual([S.OK, 'eu-1', '{"region":"eu"}', NOW]);
    expect(await f.redis.hgetall(meta())).toEqual({ ln: 'eu-1', lm: '{"region":"eu"}', lc: NOW });
  });

  test('INVALID_ARGUMENT beats EXISTS; nothing written', async () => {
    const before = await f.redis.hgetall(meta());
    expect(before.ln).toBe('eu-1');
    for (const [name, metadata, now] of [['', '{}', NOW], ['eu 1', '{}', NOW],
      ['l'.repeat(limits.LEDGER_NAME_LENGTH_MAX + 1), '{}', NOW],
      ['eu-1', 'x'.repeat(limits.METADATA_JSON_BYTES_MAX + 1), NOW], ['eu-1', '{}', 'soon'],
      ['eu-1', '{}', '-1']] as const) {
      expect(await createLedger(meta(), name, metadata, now), `${name} ${now}`)
        .toEqual([S.INVALID_ARGUMENT, name]);
    }
    expect(await f.redis.hgetall(meta())).toEqual(before);
  });

  test('EXISTS returns the record as first written, whatever is sent now; writes nothing',
    async () => {
      const before = await dumpLedger(f.redis, f.keys);
      const stored = await f.redis.hgetall(meta());
      for (const metadata of ['{"region":"eu"}', '{}']) {
        expect(await createLedger(meta(), 'eu-1', metadata, String(NOW_MS + 5)))
          .toEqual([S.EXISTS, 'eu-1', '{"region":"eu"}', NOW]);
      }
      expect(await f.redis.hgetall(meta())).toEqual(stored);
      expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    });

  test('a meta hash that the data already uses gains the record beside its fields', async () => {
    const key = `${f.keys.meta()}-used`;
    await f.redis.hset(key, 'fmt', '3', 'an', '7');
    expect(await createLedger(key, 'used')).toEqual([S.OK, 'used', '{}', NOW]);
    expect(await f.redis.hgetall(key)).toEqual({ fmt: '3', an: '7', ln: 'used', lm: '{}',
      lc: NOW });
  });
});

/** A hold's arguments: its timeout (s) and expiry (ms) as transfer-9.lua takes them. */
const HOLD = { hold: '30', expires: String(NOW_MS + 30_000) };

describe('transfer-9', () => {
  beforeAll(async () => {
    await account('cash', 'USD', 'unlimited');
    await account('alice', 'USD');
    await account('euro', 'EUR', 'unlimited');
    await account('full', 'USD');
    await account('shut', 'EUR');
    await account('gone', 'EUR');
    await account('big', 'USD', 'unlimited');
    // Credits at the maximum: one more unit to any of them overflows.
    for (const id of ['euro', 'full', 'shut']) await f.redis.hset(f.keys.account(id), 'cr', MAX);
    for (const id of ['shut', 'gone']) expect((await c.close(id))[0]).toBe(S.OK);
  });

  test('OK commits: seq, balances, the journal record, the id and both chains', async () => {
    expect(await transfer({ id: 'ok', from: 'cash', to: 'alice', amount: '100' }))
      .toEqual([S.OK, 'ok', 'USD', '1', '-100', '100']);
    // Accounts by number (cash is 2, alice 3); pf/pt: their entries before this one (none).
    // A plain transfer's record has no fields for other kinds (JOURNAL_FIELDS).
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
    // A transfer touches no hold key.
    expect(await f.redis.exists(f.keys.expiries(), f.keys.holdStats())).toBe(0);
  });

  test('FORMAT_UNSUPPORTED beats INVALID_ARGUMENT', async () => {
    await f.redis.hset(f.keys.meta(), 'fmt', '1');
    try {
      expect(await transfer({ id: 'fmt', amount: '0' })).toEqual([S.FORMAT_UNSUPPORTED, 'fmt']);
      expect(await transfer({ id: 'fmt', amount: '0', ...HOLD }))
        .toEqual([S.FORMAT_UNSUPPORTED, 'fmt']);
    } finally {
      await f.redis.hset(f.keys.meta(), 'fmt', '3');
    }
  });

  test('INVALID_ARGUMENT beats EXISTS (the id "ok" is decided)', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const bad of [{ amount: '0' }, { amount: '012' }, { amount: '1e3' }, { amount: '-5' },
      { amount: (AMOUNT_MAX + 1n).toString() }, { from: 'alice', to: 'alice' }, { metadata: 'x' },
      { now: '' }, { currency: 'C'.repeat(17) }, { from: '' }, { by: '' },
      // A hold's timeout and expiry: both or neither, digits, within their lengths, the
      // timeout canonical and within HOLD_TIMEOUT_SECONDS_MAX, the expiry exactly now + it.
      { hold: 'x', expires: '1' }, { hold: '1', expires: '' }, { hold: '0', expires: '5' },
      { hold: '', expires: '5' }, { hold: '123456789', expires: '1' },
      { hold: '1', expires: '1'.repeat(16) }, { hold: '1', expires: '1e5' },
      { hold: '-1', expires: '1' }, { hold: '030', expires: HOLD.expires },
      { hold: String(limits.HOLD_TIMEOUT_SECONDS_MAX + 1),
        expires: String(NOW_MS + (limits.HOLD_TIMEOUT_SECONDS_MAX + 1) * 1000) },
      { hold: '30', expires: String(NOW_MS + 30_001) }]) {
      expect(await transfer({ id: 'ok', from: 'cash', to: 'alice', amount: '100', ...bad }),
        JSON.stringify(bad)).toEqual([S.INVALID_ARGUMENT, 'ok']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('EXISTS beats everything after it, returning the record unchanged', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    for (const hold of [{}, HOLD]) {
      const reply = await transfer({ id: 'ok', from: 'ghost', to: 'alice', amount: MAX, ...hold });
      expect(reply).toEqual([S.EXISTS, 'ok', '1',
        expect.arrayContaining(['i', 'ok', 'a', '100']), 'cash', 'alice']);
    }
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  /**
   * Each rejection with every later check failing too: `shut` and `gone` are closed EUR
   * accounts, `euro`, `full` and `shut` have credits at the maximum, alice has 101 and no
   * overdraft, big has debits at the maximum (set before its case).
   */
  const rejections: Array<[ScriptStatus, Record<string, string>, string]> = [
    ['ACCOUNT_NOT_FOUND', { from: 'ghost', to: 'shut', currency: 'USD', amount: '1000' }, 'EUR'],
    ['ACCOUNT_NOT_FOUND', { from: 'gone', to: 'ghost', currency: 'USD', amount: '1000' }, 'EUR'],
    ['ACCOUNT_CLOSED', { from: 'alice', to: 'shut', currency: 'EUR', amount: '1000' }, 'USD'],
    ['ACCOUNT_CLOSED', { from: 'gone', to: 'full', currency: 'USD', amount: '1000' }, 'EUR'],
    ['CURRENCY_MISMATCH', { from: 'alice', to: 'euro', amount: '1000' }, 'USD'],
    ['CURRENCY_MISMATCH', { from: 'alice', to: 'full', currency: 'EUR', amount: '1000' }, 'USD'],
    ['INSUFFICIENT_FUNDS', { from: 'alice', to: 'full', amount: '102' }, 'USD'],
    ['BALANCE_OVERFLOW', { from: 'alice', to: 'full', amount: '1' }, 'USD'],
    ['BALANCE_OVERFLOW', { from: 'big', to: 'alice', amount: '1' }, 'USD'],
  ];

  describe.each([['a transfer', {}], ['a hold', HOLD]])('%s', (kind, hold) => {
    test.each(rejections.map(([status, argv, currency], i) =>
      [status, `${kind === 'a hold' ? 'rh' : 'rt'}${i}`, argv, currency] as const))(
      '%s (%s) beats every later check; the rejection record is the only write',
      async (status, id, argv, currency) => {
        await f.redis.hset(f.keys.account('big'), 'dr', MAX);
        const before = JSON.parse(await dumpLedger(f.redis, f.keys)) as unknown[];
        expect(await transfer({ id, ...argv, ...hold })).toEqual([S[status], id, currency]);
        expect(withoutRejection(await dumpLedger(f.redis, f.keys), f.keys, id)).toEqual(before);
        const r = await c.lastRejection();
        // A rejected hold records the timeout asked, as `e` (REJECTION_FIELDS.TIMEOUT).
        const holdFields = kind === 'a hold' ? { x: 'h', o: '', e: '30', q: '' } : {};
        expect(r).toEqual({ i: id, s: String(S[status]), f: argv.from, t: argv.to,
          a: argv.amount, c: argv.currency ?? '', k: currency, m: '{}', w: NOW, b: 'svc',
          ...holdFields });
        expect(await f.redis.hget(f.keys.transferBucket(id), id)).toMatch(/^-\d+$/);
      });
  });
});

describe('transfer-9: holds', () => {
  beforeAll(async () => {
    await account('hf', 'USD');
    await account('ht', 'USD');
    await account('bank', 'USD', 'unlimited');
    await account('whale', 'USD', 'unlimited');
    expect((await transfer({ id: 'fund-hf', from: 'bank', to: 'hf', amount: '100' }))[0])
      .toBe(S.OK);
  });

  const number = (id: string) => f.redis.hget(f.keys.account(id), 'n');

  test('OK opens a hold: pending sums, a record off both chains, its expiry, the counters',
    async () => {
      const lseq = await f.redis.hget(f.keys.account('hf'), 'lseq');
      const reply = await transfer({ id: 'h1', from: 'hf', to: 'ht', amount: '60', ...HOLD });
      expect(reply).toEqual([S.OK, 'h1', 'USD', expect.any(String), '100', '0']);
      const seq = String(reply[3]);
      expect(await c.record(seq)).toEqual({ i: 'h1', f: await number('hf'),
        t: await number('ht'), a: '60', k: 'USD', m: '{}', w: NOW, b: 'svc', fb: '100',
        tb: '0', pf: '', pt: '', x: 'h', o: '', e: HOLD.expires, q: '' });
      // Posted totals and the entries chains stay; the pending sums reserve the amount.
      expect(await c.totals('hf')).toEqual({ dr: '0', cr: '100', dp: '60', cp: '0', lseq });
      expect(await c.totals('ht')).toEqual({ dr: '0', cr: '0', dp: '0', cp: '60', lseq: '0' });
      expect(await f.redis.zscore(f.keys.expiries(), seq)).toBe(HOLD.expires);
      expect(await f.redis.hgetall(f.keys.holdStats())).toEqual({ 'n:USD': '1', 'a:USD': '60' });
      expect(await f.redis.hget(f.keys.transferBucket('h1'), 'h1')).toBe(seq);
      expect(await f.redis.hget(f.keys.state(), seq)).toBeNull();
    });

  test('a hold without a timeout has no expiry and no entry in the expiry index', async () => {
    const before = await f.redis.zcard(f.keys.expiries());
    const seq = await c.hold('h2', 'hf', 'ht', '10');
    expect(await c.record(seq)).toMatchObject({ x: 'h', e: '' });
    expect(await f.redis.zcard(f.keys.expiries())).toBe(before);
    expect(await f.redis.hgetall(f.keys.holdStats())).toEqual({ 'n:USD': '2', 'a:USD': '70' });
  });

  test('EXISTS: a hold replayed returns its record, whatever else is asked', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    expect(await transfer({ id: 'h1', from: 'ghost', to: 'hf', amount: MAX }))
      .toEqual([S.EXISTS, 'h1', expect.any(String),
        expect.arrayContaining(['x', 'h', 'a', '60']), 'hf', 'ht']);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('INSUFFICIENT_FUNDS counts pending debits; it beats BALANCE_OVERFLOW, which counts ' +
    'pending credits', async () => {
    // hf: 100 posted, 70 held: 30 available. ht: 70 pending credits, posted credits set so
    // that 31 more fits without them and overflows with them.
    await f.redis.hset(f.keys.account('ht'), 'cr', (AMOUNT_MAX - 100n).toString());
    for (const [id, hold] of [['if1', {}], ['if2', HOLD]] as const) {
      expect(await transfer({ id, from: 'hf', to: 'ht', amount: '31', ...hold }))
        .toEqual([S.INSUFFICIENT_FUNDS, id, 'USD']);
    }
    for (const [id, hold] of [['of1', {}], ['of2', HOLD]] as const) {
      expect(await transfer({ id, from: 'bank', to: 'ht', amount: '31', ...hold }))
        .toEqual([S.BALANCE_OVERFLOW, id, 'USD']);
    }
    // Exactly what is left fits: all of the available funds, up to the maximum credit.
    expect((await transfer({ id: 'fit', from: 'hf', to: 'ht', amount: '30', ...HOLD }))[0])
      .toBe(S.OK);
    expect(await c.totals('ht')).toMatchObject({ cp: '100' });
  });

  test('BALANCE_OVERFLOW counts pending debits', async () => {
    await f.redis.hset(f.keys.account('whale'), 'dr', (AMOUNT_MAX - 10n).toString());
    await c.hold('wh', 'whale', 'bank', '10');
    for (const [id, hold] of [['wo1', {}], ['wo2', HOLD]] as const) {
      expect(await transfer({ id, from: 'whale', to: 'bank', amount: '1', ...hold }))
        .toEqual([S.BALANCE_OVERFLOW, id, 'USD']);
    }
  });
});
