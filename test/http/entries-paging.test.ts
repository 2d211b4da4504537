/**
 * Paging through `GET /accounts/:id/entries`, by example. One account gets a known history of
 * 2 × ENTRIES_READ_CHUNK_MAX + 3 entries (credits, debits, posts of holds and partial reversals,
 * between transfers of other accounts and holds and voids, which are no entries, so its seqs
 * have gaps), each entry worked out here from what was sent: seq by counting commits on a fresh
 * ledger, balanceAfter by summing amounts. It is then paged through
 * with limits around the read chunk (a page of more than a chunk takes several script calls)
 * and at the maximum, and the pages must be exactly that history cut in order, newest first.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { type Fixture, fixture, json } from '../helpers/ledger.js';

const CHUNK = limits.ENTRIES_READ_CHUNK_MAX;
const HISTORY = 2 * CHUNK + 3;

interface Entry {
  transferId: string; kind: 'transfer' | 'post' | 'reversal'; seq: string; amount: string;
  balanceAfter: string; counterparty: string; createdAt: string;
}
interface Page { entries: Entry[]; nextCursor: string | null }

let f: Fixture;
/** The account's entries, oldest first, as the test expects them. */
const history: Entry[] = [];
/** Seq of the ledger's last commit: a fresh ledger's journal counts from 1. */
let seq = 0;
let balance = 0n;
let n = 0;

/** Sends a write that commits (a transfer, hold, post, void or reversal): one more seq. */
async function send(url: string, payload: Record<string, unknown>): Promise<{ id: string;
  createdAt: string; seq: string }> {
  const id = `t${n++}`;
  const res = await f.app.inject({ method: 'POST', url, headers: json,
    payload: { id, ...payload } });
  expect(res.statusCode, res.body).toBe(201);
  seq += 1;
  const body = res.json() as { seq: string; createdAt: string };
  expect(body.seq).toBe(String(seq));
  return { id, createdAt: body.createdAt, seq: body.seq };
}

const commit = (from: string, to: string, amount: bigint) =>
  send('/transfers', { from, to, amount: amount.toString() });

/** acct's last credit by transfer: what a reversal takes 1 back from. */
let lastCredit = '';

/**
 * One entry of `acct`'s, appended to `into`: a credit from cash, a debit to shop, a credit
 * posted from a hold (after a hold voided: two seqs and no entry), or 1 of the last credit
 * reversed.
 */
async function acctTransfer(i: number, into: Entry[]): Promise<void> {
  if (i % 8 === 6) {
    const hold = await send('/transfers', { from: 'cash', to: 'acct', amount: `${i + 1}`,
      pending: true });
    const voided = await send('/transfers', { from: 'cash', to: 'acct', amount: '1',
      pending: true });
    await send(`/transfers/${voided.id}/void`, {});
    const t = await send(`/transfers/${hold.id}/post`, {});
    balance += BigInt(i + 1);
    into.push({ transferId: t.id, kind: 'post', seq: t.seq, amount: `${i + 1}`,
      balanceAfter: balance.toString(), counterparty: 'cash', createdAt: t.createdAt });
    return;
  }
  if (i % 8 === 5) {
    const t = await send(`/transfers/${lastCredit}/reversals`, { amount: '1' });
    balance -= 1n;
    into.push({ transferId: t.id, kind: 'reversal', seq: t.seq, amount: '-1',
      balanceAfter: balance.toString(), counterparty: 'cash', createdAt: t.createdAt });
    return;
  }
  const debit = i % 4 === 3;
  const amount = debit ? 1n : BigInt(i + 1);
  const t = await commit(debit ? 'acct' : 'cash', debit ? 'shop' : 'acct', amount);
  if (!debit) lastCredit = t.id;
  balance += debit ? -amount : amount;
  into.push({ transferId: t.id, kind: 'transfer', seq: t.seq,
    amount: `${debit ? '-' : ''}${amount}`, balanceAfter: balance.toString(),
    counterparty: debit ? 'shop' : 'cash', createdAt: t.createdAt });
}

beforeAll(async () => {
  f = await fixture();
  for (const [id, od] of [['cash', 'unlimited'], ['acct', '0'], ['shop', '0']]) {
    const res = await f.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: od } });
    expect(res.statusCode).toBe(201);
  }
  for (let i = 0; i < HISTORY; i++) {
    if (i % 3 === 2) await commit('cash', 'shop', 7n); // not acct's: a gap in its seqs
    await acctTransfer(i, history);
  }
});
afterAll(async () => { await f.close(); });

async function page(limit: number | undefined, cursor: string | null): Promise<Page> {
  const query = [limit === undefined ? '' : `limit=${limit}`,
    cursor === null ? '' : `cursor=${cursor}`].filter((q) => q !== '').join('&');
  const res = await f.app.inject({ method: 'GET', url: `/accounts/acct/entries?${query}` });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as Page;
}

/** Every page from the newest, following nextCursor until it is null. */
async function pageThrough(limit: number, between?: () => Promise<void>): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    if (pages.length > HISTORY) throw new Error('more pages than entries: nextCursor loops');
    const p: Page = await page(limit, cursor);
    pages.push(p);
    cursor = p.nextCursor;
    if (cursor !== null) await between?.();
  } while (cursor !== null);
  return pages;
}

const seqs = (entries: Entry[]) => entries.map((e) => e.seq);
const newestFirst = () => [...history].reverse();

/** [limit, the sizes of its pages] for HISTORY = 2 × CHUNK + 3 entries. */
const LIMITS: Array<[number, number[]]> = [
  [1, Array<number>(HISTORY).fill(1)],
  [2, [...Array<number>(CHUNK + 1).fill(2), 1]],
  [CHUNK - 1, [CHUNK - 1, CHUNK - 1, 5]],
  [CHUNK, [CHUNK, CHUNK, 3]],
  [CHUNK + 1, [CHUNK + 1, CHUNK + 1, 1]],
  [limits.ENTRIES_PAGE_LIMIT_MAX, [HISTORY]],
];

test('the history is what the test expects it to be', () => {
  expect(history).toHaveLength(HISTORY);
  expect(limits.ENTRIES_PAGE_LIMIT_MAX).toBeGreaterThan(HISTORY);
  // Every third entry follows a transfer of other accounts: seqs 1, 2, 4, 5, 6, 8, …; the
  // seventh is a post after a hold, another hold and its void (seqs 9, 10, 11).
  expect(seqs(history).slice(0, 8)).toEqual(['1', '2', '4', '5', '6', '8', '12', '13']);
  expect(history.slice(5, 8).map((e) => e.kind)).toEqual(['reversal', 'post', 'transfer']);
  expect(history.at(-1)?.seq).toBe(String(seq));
});

test.each(LIMITS)('limit %i: pages of exactly the expected entries, newest first',
  async (limit, sizes) => {
    const pages = await pageThrough(limit);
    expect(pages.map((p) => p.entries.length)).toEqual(sizes);
    // Each page is the next `limit` entries of the history, newest first.
    let at = 0;
    const want = seqs(newestFirst());
    for (const p of pages) {
      expect(seqs(p.entries)).toEqual(want.slice(at, at + limit));
      at += limit;
    }
    // nextCursor is null on the last page and only there.
    expect(pages.map((p) => p.nextCursor === null))
      .toEqual(sizes.map((_, i) => i === sizes.length - 1));
    // Together: the whole history, every field, no entry twice and none missing.
    const all = pages.flatMap((p) => p.entries);
    expect(new Set(seqs(all)).size).toBe(HISTORY);
    expect(all).toEqual(newestFirst());
  });

test('without a limit a page holds ENTRIES_PAGE_LIMIT_DEFAULT entries', async () => {
  const p = await page(undefined, null);
  expect(seqs(p.entries)).toEqual(seqs(newestFirst()).slice(0, limits.ENTRIES_PAGE_LIMIT_DEFAULT));
  expect(p.nextCursor).not.toBeNull();
});

// Last: it adds entries to the account.
test('transfers arriving between pages shift nothing in a listing under way', async () => {
  const before = newestFirst();
  const arrived: Entry[] = [];
  const pages = await pageThrough(CHUNK + 1, async () => {
    await acctTransfer(arrived.length, arrived);
    await commit('cash', 'shop', 7n);
    await acctTransfer(arrived.length, arrived);
  });
  expect(pages.map((p) => p.entries.length)).toEqual([CHUNK + 1, CHUNK + 1, 1]);
  expect(arrived).toHaveLength(4);
  expect(pages.flatMap((p) => p.entries)).toEqual(before);
  // A cursor used again later still gives the same page.
  for (const [i, p] of pages.entries()) {
    if (i > 0) expect(await page(CHUNK + 1, pages[i - 1]?.nextCursor ?? null)).toEqual(p);
  }
  // A new listing starts at the newest entry, the arrivals first.
  history.push(...arrived);
  const fresh = await pageThrough(limits.ENTRIES_PAGE_LIMIT_MAX);
  expect(fresh).toHaveLength(1);
  expect(seqs(fresh[0]?.entries ?? []).slice(0, 4)).toEqual(seqs([...arrived].reverse()));
  expect(fresh[0]?.entries).toEqual(newestFirst());
});
