/**
 * The journal feed (`GET /journal`, change data out): every committed record in seq order, as
 * its POST answered it; pages that never skip or repeat while writes go on; the long poll; a
 * ledger's own journal under `/ledgers/{ledger}/journal`. Real HTTP handling through inject, on
 * the test Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { type Fixture, fixture, uniqueLedgerName } from '../helpers/ledger.js';
import { expectProblem, requests } from './requests.js';

let f: Fixture;
const { post, get, ok } = requests(() => f);

interface Page { records: Array<Record<string, unknown>>; next: string }
const page = async (query: string, prefix = ''): Promise<Page> => {
  const res = await get(`${prefix}/journal${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Page;
};

/** Every record from `after` on, in pages of `limit`. */
async function readAll(after = '0', limit = 3, prefix = ''): Promise<Page['records']> {
  const out: Page['records'] = [];
  for (let cursor = after; ;) {
    const p = await page(`?after=${cursor}&limit=${limit}`, prefix);
    out.push(...p.records);
    if (p.records.length === 0) {
      expect(p.next).toBe(cursor);
      return out;
    }
    expect(p.next).toBe(p.records.at(-1)?.seq);
    cursor = p.next;
  }
}

beforeAll(async () => {
  f = await fixture();
  await ok(201, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  for (const id of ['alice', 'bob']) await ok(201, '/accounts', { id, currency: 'USD' });
});
afterAll(async () => { await f.close(); });

describe('GET /journal', () => {
  test('every committed record, of every kind, in seq order, as its POST answered it; ' +
    'rejections are not in it', async () => {
    const answers = [
      await ok(201, '/transfers', { id: 'fund', from: 'cash', to: 'alice', amount: '1000',
        metadata: { why: 'funding' } }),
      await ok(201, '/transfers', { id: 'h1', from: 'alice', to: 'bob', amount: '300',
        pending: true, timeoutSeconds: 600 }),
      await ok(201, '/transfers/h1/post', { id: 'h1-post', amount: '200' }),
      await ok(201, '/transfers', { id: 'h2', from: 'alice', to: 'bob', amount: '50',
        pending: true }),
      await ok(201, '/transfers/h2/void', { id: 'h2-void' }),
      await ok(201, '/transfers/fund/reversals', { id: 'fund-back', amount: '1' }),
    ];
    await ok(422, '/transfers', { id: 'too-much', from: 'bob', to: 'alice', amount: '99999' });
    const records = await readAll();
    expect(records.map((r) => r.kind)).toEqual(
      ['transfer', 'hold', 'post', 'hold', 'void', 'reversal']);
    // As committed: the hold shows `pending` and the transfer nothing reversed, although
    // GET /transfers/{id} now shows them posted and partly reversed.
    expect(records).toEqual(answers);
    expect((await get('/transfers/h1')).json()).toMatchObject({ pendingStatus: 'posted' });
    expect((await get('/transfers/fund')).json()).toMatchObject({ reversedAmount: '1' });
    expect(records.map((r) => r.seq)).toEqual(['1', '2', '3', '4', '5', '6']);
    // Any page size gives the same records; `after` skips exactly what it names.
    expect(await readAll('0', 1)).toEqual(records);
    expect(await readAll('0', 1000)).toEqual(records);
    expect(await readAll('4', 2)).toEqual(records.slice(4));
    expect((await page('')).records).toEqual(records); // after omitted: from the first
  });

  test('pages never skip or repeat a record while writes go on', async () => {
    const start = (await page('?after=0&limit=1000')).next;
    let writing = true;
    const committed: string[] = [];
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const id = `w-${i}`;
        await ok(201, '/transfers', { id, from: 'cash', to: 'bob', amount: '1' });
        committed.push(id);
      }
    })();
    const seen: Page['records'] = [];
    let cursor = start;
    for (let round = 0; round < 60; round++) {
      const p = await page(`?after=${cursor}&limit=${1 + (round % 7)}`);
      seen.push(...p.records);
      cursor = p.next;
      if (round === 40) writing = false;
      if (round > 40) await writer;
    }
    await writer;
    seen.push(...await readAll(cursor, 50));
    const seqs = seen.map((r) => Number(r.seq));
    const first = Number(start) + 1;
    expect(seqs).toEqual(seqs.map((_s, i) => first + i)); // contiguous: no skip, no repeat
    expect(seen.map((r) => r.id)).toEqual(committed);
  });

  test('a long poll answers soon after a commit; after the head it waits, then answers ' +
    'empty', async () => {
    const head = (await page('?after=0&limit=1000')).next;
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const after = String(Number(head) + i);
      const polled = get(`/journal?after=${after}&wait=10000`);
      await sleep(150);
      await ok(201, '/transfers', { id: `lp-${i}`, from: 'cash', to: 'bob', amount: '1' });
      const committedAt = performance.now();
      const res = await polled;
      delays.push(performance.now() - committedAt);
      expect(res.statusCode).toBe(200);
      expect((res.json() as Page).records.map((r) => r.id)).toEqual([`lp-${i}`]);
    }
    // The contract: within 100 ms of the commit (the watch looks every 20 ms). The median,
    // so that one slice of a busy machine's scheduler does not decide it.
    delays.sort((a, b) => a - b);
    expect(delays[2], `delays ${delays.map((d) => d.toFixed(0)).join(', ')} ms`)
      .toBeLessThan(100);

    const beyond = String(Number(head) + 1000);
    const started = performance.now();
    const empty = await page(`?after=${beyond}&wait=300`);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(empty).toEqual({ records: [], next: beyond });
  });

  test('a long poll ends when the service closes', async () => {
    const g = await fixture();
    const polled = g.app.inject({ method: 'GET', url: '/journal?after=0&wait=30000' });
    await sleep(100);
    const started = performance.now();
    await g.close();
    const res = await polled;
    expect(performance.now() - started).toBeLessThan(5000);
    expect(res.json()).toEqual({ records: [], next: '0' });
  });

  test('bad queries are 400 and read nothing', async () => {
    for (const query of ['?limit=0', `?limit=${limits.JOURNAL_PAGE_LIMIT_MAX + 1}`, '?limit=1e3',
      '?after=01', '?after=-1', '?after=x', `?wait=${limits.JOURNAL_WAIT_MS_MAX + 1}`,
      '?wait=1.5', '?cursor=abc']) {
      expectProblem(await get(`/journal${query}`), 400, 'VALIDATION_ERROR');
    }
  });

  test("a ledger's journal holds its own records only", async () => {
    const name = uniqueLedgerName();
    await ok(201, '/ledgers', { name });
    const base = `/ledgers/${name}`;
    await ok(201, `${base}/accounts`, { id: 'cash', currency: 'EUR', overdraftLimit: 'unlimited' });
    await ok(201, `${base}/accounts`, { id: 'x', currency: 'EUR' });
    const t = await ok(201, `${base}/transfers`, { id: 'fund', from: 'cash', to: 'x',
      amount: '5' });
    expect(await readAll('0', 10, base)).toEqual([t]);
    expect(t.seq).toBe('1');
    const res = await post(`${base}/transfers`, { id: 'fund2', from: 'cash', to: 'x',
      amount: '6' });
    expect(res.statusCode).toBe(201);
    expect((await readAll('1', 10, base)).map((r) => r.id)).toEqual(['fund2']);
  });
});
