/**
 * The journal follower (src/ledger/follower.ts) with an in-memory sink, on the test Redis: pages
 * larger than a script's chunk, read in chunks that join without a gap; nothing handed on twice
 * without a failure; a failing sink moves no position; idle passes read nothing.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { JournalFollower } from '../../src/ledger/follower.js';
import type { Transfer } from '../../src/ledger/types.js';
import { type Fixture, fixture } from '../helpers/ledger.js';

let f: Fixture;
beforeAll(async () => {
  f = await fixture();
  for (const [id, od] of [['cash', 'unlimited'], ['bob', '0']] as const) {
    await f.ledger.createAccount({ id, currency: 'USD', overdraftLimit: od, metadata: {},
      createdBy: 'test' });
  }
});
afterAll(async () => { await f.close(); });

async function commit(count: number, tag: string): Promise<void> {
  const transfers = Array.from({ length: count }, (_v, i) => ({ id: `${tag}-${i}`,
    from: 'cash', to: 'bob', amount: '1', metadata: {}, createdBy: 'test' }));
  const outcome = await f.ledger.transferBatch({ atomic: false, transfers });
  expect(outcome.kind).toBe('decided');
}

test('pages of several chunks, joined without a gap; then nothing twice', async () => {
  const chunk = limits.JOURNAL_READ_CHUNK_MAX;
  await commit(2 * chunk + 100, 'p');
  const pages: string[][] = [];
  let failing = false;
  const follower = new JournalFollower({ ledger: f.ledger, name: 'chunks', lockTtlMs: 5_000,
    pageSize: 2 * chunk + 10, sink: { deliver: async (_ledger, records: readonly Transfer[]) => {
      if (failing) throw new Error('the other side is down');
      pages.push(records.map((r) => r.seq as string));
    } } });
  expect(await follower.runOnce()).toBe(2 * chunk + 100);
  expect(pages.map((p) => p.length)).toEqual([2 * chunk + 10, 90]);
  const seqs = pages.flat().map(Number);
  expect(seqs).toEqual(seqs.map((_s, i) => i + 1));
  expect(await f.ledger.followPosition('chunks')).toBe(String(seqs.length));
  expect(await follower.runOnce()).toBe(0); // idle: nothing new
  failing = true;
  await commit(3, 'q');
  await expect(follower.runOnce()).rejects.toThrow(/down/);
  expect(await f.ledger.followPosition('chunks')).toBe(String(seqs.length));
  failing = false;
  expect(await follower.runOnce()).toBe(3);
  expect(pages.flat()).toHaveLength(seqs.length + 3);
  await follower.stop();
});
