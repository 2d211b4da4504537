/**
 * POST /transfers/batch: per-transfer results with the codes of POST /transfers, atomic rollback
 * of a chain with one bad transfer (nothing applied, nothing recorded), chunking of non-atomic
 * batches, and idempotent replay of a whole batch.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { dumpLedger, type Fixture, fixture, json } from '../helpers/ledger.js';
import { valueOf } from '../metrics/exposition.js';
import { scrape } from '../metrics/helpers.js';

let f: Fixture;
const post = (url: string, payload: unknown) =>
  f.app.inject({ method: 'POST', url, headers: json, payload: JSON.stringify(payload) });
const batch = (transfers: unknown[], atomic: boolean) =>
  post('/transfers/batch', { transfers, atomic });
const balance = async (id: string) =>
  ((await f.app.inject({ method: 'GET', url: `/accounts/${id}` })).json() as { balance: string })
    .balance;

beforeAll(async () => {
  f = await fixture();
  for (const [id, currency, od] of [['cash', 'USD', 'unlimited'], ['alice', 'USD', '0'],
    ['bob', 'USD', '0'], ['carol', 'USD', '0'], ['euro', 'EUR', 'unlimited']] as const) {
    expect((await post('/accounts', { id, currency, overdraftLimit: od })).statusCode).toBe(201);
  }
});
afterAll(async () => { await f.close(); });

describe('atomic: true', () => {
  // A chain: cash → alice → bob → carol, each spending what the previous one brought.
  const chain = (prefix: string, last: Record<string, string> = {}) => [
    { id: `${prefix}1`, from: 'cash', to: 'alice', amount: '100' },
    { id: `${prefix}2`, from: 'alice', to: 'bob', amount: '100' },
    { id: `${prefix}3`, from: 'bob', to: 'carol', amount: '60', ...last },
  ];

  test('a chain with one bad transfer applies nothing, records nothing, and names it', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const res = await batch(chain('bad', { amount: '101' }), true);
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 422, code: 'INSUFFICIENT_FUNDS', index: 2,
      transferId: 'bad3' });
    expect(res.json().detail).toMatch(/no transfer of this batch was applied or recorded/);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
    for (const id of ['bad1', 'bad2', 'bad3']) {
      expect((await f.app.inject({ method: 'GET', url: `/transfers/${id}` })).statusCode)
        .toBe(404);
    }
    // The ids are still free: the fixed chain commits under them.
    const fixed = await batch(chain('bad'), true);
    expect(fixed.statusCode, fixed.body).toBe(200);
    expect(fixed.json().results.map((r: { status: number }) => r.status)).toEqual([201, 201, 201]);
  });

  test.each([
    ['an unknown account', { to: 'ghost' }, 422, 'ACCOUNT_NOT_FOUND'],
    ['another currency', { to: 'euro' }, 422, 'CURRENCY_MISMATCH'],
  ])('%s in the chain: the whole batch refused, nothing written',
    async (_name, last, status, code) => {
    const before = await dumpLedger(f.redis, f.keys);
    const res = await batch(chain(`x-${code}`, last), true);
    expect(res.json()).toMatchObject({ status, code, index: 2 });
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('commits in order, each transfer seeing the ones before it', async () => {
    const res = await batch(chain('ok'), true);
    expect(res.statusCode).toBe(200);
    const results = res.json().results as Array<{ id: string; status: number; replayed: boolean;
      transfer: { seq: string; toBalanceAfter: string } }>;
    expect(results.map((r) => [r.id, r.status, r.replayed])).toEqual([['ok1', 201, false],
      ['ok2', 201, false], ['ok3', 201, false]]);
    const seqs = results.map((r) => BigInt(r.transfer.seq));
    expect(seqs[1]).toBe((seqs[0] as bigint) + 1n);
    expect(seqs[2]).toBe((seqs[1] as bigint) + 1n);
    expect(results[2]?.transfer.toBalanceAfter).toBe('120'); // carol: 60 from 'bad' and 60 now
    for (const r of results) {
      expect((await f.app.inject({ method: 'GET', url: `/transfers/${r.id}` })).json())
        .toEqual(r.transfer);
    }
  });

  test('a replay of the whole batch returns the same results, replayed, writing nothing',
    async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const first = (await batch(chain('ok'), true)).json().results as Array<{ replayed: boolean }>;
    expect(first.every((r) => r.replayed)).toBe(true);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test('a decided id among new ones is 409 TRANSFER_EXISTS; changed fields name them', async () => {
    const before = await dumpLedger(f.redis, f.keys);
    const mixed = await batch([{ id: 'new1', from: 'cash', to: 'alice', amount: '1' },
      { id: 'ok1', from: 'cash', to: 'alice', amount: '100' }], true);
    expect(mixed.json()).toMatchObject({ status: 409, code: 'TRANSFER_EXISTS', index: 1,
      transferId: 'ok1' });
    const changed = await batch([{ id: 'ok1', from: 'cash', to: 'alice', amount: '5' },
      { id: 'ok2', from: 'alice', to: 'bob', amount: '100' }], true);
    expect(changed.json()).toMatchObject({ status: 409,
      code: 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', index: 0, transferId: 'ok1' });
    expect(changed.json().detail).toMatch(/amount/);
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });
});

describe('atomic: false', () => {
  test('each transfer gets what POST /transfers would have answered', async () => {
    const bobBefore = await balance('bob');
    const res = await batch([
      { id: 'm1', from: 'cash', to: 'bob', amount: '10' },
      { id: 'm2', from: 'carol', to: 'bob', amount: '1000000' },
      { id: 'ok1', from: 'cash', to: 'alice', amount: '100' },
      { id: 'ok2', from: 'cash', to: 'alice', amount: '7' },
      { id: 'm3', from: 'ghost', to: 'bob', amount: '1' },
    ], false);
    expect(res.statusCode).toBe(200);
    const results = res.json().results as Array<{ id: string; status: number; replayed: boolean;
      problem?: { code: string; detail: string } }>;
    expect(results.map((r) => [r.id, r.status, r.replayed, r.problem?.code])).toEqual([
      ['m1', 201, false, undefined],
      ['m2', 422, false, 'INSUFFICIENT_FUNDS'],
      ['ok1', 201, true, undefined],
      ['ok2', 409, false, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS'],
      ['m3', 422, false, 'ACCOUNT_NOT_FOUND'],
    ]);
    expect(BigInt(await balance('bob'))).toBe(BigInt(bobBefore) + 10n);
    // Rejections are recorded, as for a single transfer: a single replay gets the same 422.
    const single = await post('/transfers', { id: 'm2', from: 'carol', to: 'bob',
      amount: '1000000' });
    expect(single.statusCode).toBe(422);
    expect(single.headers['idempotent-replayed']).toBe('true');
    expect(single.json()).toEqual(results[1]?.problem);
  });

  test(`runs in chunks of ${limits.BATCH_CHUNK_TRANSFERS_MAX}, in order, and replays whole`,
    async () => {
    const n = limits.BATCH_TRANSFERS_MAX;
    const transfers = Array.from({ length: n }, (_, i) =>
      ({ id: `c${i}`, from: 'cash', to: i % 2 ? 'alice' : 'bob', amount: '1' }));
    // Other test files share this Redis: count this ledger's scripts in its own registry.
    const batchScripts = async () => valueOf((await scrape(f.app)).samples,
      'ledger_script_duration_seconds_count', { script: 'transfer-batch', outcome: 'ok' }) ?? 0;
    const before = await batchScripts();
    {
      const res = await batch(transfers, false);
      expect(res.statusCode).toBe(200);
      const results = res.json().results as Array<{ status: number; transfer: { seq: string } }>;
      expect(results.every((r) => r.status === 201)).toBe(true);
      const seqs = results.map((r) => BigInt(r.transfer.seq));
      expect(seqs.every((s, i) => i === 0 || s === (seqs[i - 1] as bigint) + 1n)).toBe(true);
      expect(await batchScripts() - before)
        .toBe(Math.ceil(n / limits.BATCH_CHUNK_TRANSFERS_MAX));
      const dump = await dumpLedger(f.redis, f.keys);
      const again = await batch(transfers, false);
      expect((again.json().results as Array<{ replayed: boolean }>).every((r) => r.replayed))
        .toBe(true);
      expect(await dumpLedger(f.redis, f.keys)).toBe(dump);
    }
  });
});

describe('refused whole with 400, nothing written', () => {
  const one = { id: 'v1', from: 'cash', to: 'alice', amount: '1' };
  test.each([
    ['no transfers', { transfers: [], atomic: false }, 'VALIDATION_ERROR'],
    ['no atomic flag', { transfers: [one] }, 'VALIDATION_ERROR'],
    ['an unknown field', { transfers: [one], atomic: false, extra: 1 }, 'VALIDATION_ERROR'],
    ['a repeated id', { transfers: [one, { ...one, amount: '2' }], atomic: false },
      'VALIDATION_ERROR'],
    ['a malformed amount', { transfers: [one, { ...one, id: 'v2', amount: '01' }],
      atomic: true }, 'VALIDATION_ERROR'],
    ['the same account twice', { transfers: [{ ...one, to: 'cash' }], atomic: false },
      'SAME_ACCOUNT'],
    ['too many transfers', { transfers: Array.from({ length: limits.BATCH_TRANSFERS_MAX + 1 },
      (_, i) => ({ ...one, id: `v${i}` })), atomic: false }, 'VALIDATION_ERROR'],
    ['too many transfers for one atomic batch', { transfers: Array.from(
      { length: limits.BATCH_ATOMIC_TRANSFERS_MAX + 1 }, (_, i) => ({ ...one, id: `v${i}` })),
    atomic: true }, 'VALIDATION_ERROR'],
  ])('%s', async (_name, body, code) => {
    const before = await dumpLedger(f.redis, f.keys);
    const res = await post('/transfers/batch', body);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toMatchObject({ code });
    expect(await dumpLedger(f.redis, f.keys)).toBe(before);
  });

  test(`a body over ${limits.BATCH_BODY_BYTES_MAX} bytes is 413`, async () => {
    const res = await post('/transfers/batch', { transfers: [{ id: 'big', from: 'cash',
      to: 'alice', amount: '1', metadata: { k: 'x'.repeat(limits.BATCH_BODY_BYTES_MAX) } }],
    atomic: false });
    expect(res.statusCode).toBe(413);
  });
});
