/**
 * Group commit (src/ledger/group-commit.ts): single transfers sent together share a script
 * call, yet each keeps its own id, answer and idempotency, and one's failure never changes
 * another's answer.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { GroupCommit, type GroupRunner } from '../../src/ledger/group-commit.js';
import type { TransferInput, TransferOutcome } from '../../src/ledger/types.js';
import { dumpLedger, type Fixture, fixture, json } from '../helpers/ledger.js';
import { valueOf } from '../metrics/exposition.js';
import { scrape } from '../metrics/helpers.js';

let f: Fixture;
const post = (url: string, body: unknown) =>
  f.app.inject({ method: 'POST', url, headers: json, payload: JSON.stringify(body) });

beforeAll(async () => {
  f = await fixture({ groupCommit: true });
  for (const [id, overdraftLimit] of [['cash', 'unlimited'], ['a', '0'], ['b', '0'],
    ['bad', '0']]) {
    expect((await post('/accounts', { id, currency: 'USD', overdraftLimit })).statusCode)
      .toBe(201);
  }
});
afterAll(async () => f?.close());

async function scriptCalls(script: string): Promise<number> {
  const { samples } = await scrape(f.app);
  return samples.filter((s) => s.name === 'ledger_script_duration_seconds_count'
    && s.labels.script === script).reduce((sum, s) => sum + s.value, 0);
}

test('transfers sent together share script calls; each gets its own answer', async () => {
  const before = await scriptCalls('transfer') + await scriptCalls('transfer-batch');
  const n = 40;
  const body = (i: number) =>
    ({ id: `g${i}`, from: 'cash', to: i % 2 ? 'a' : 'b', amount: String(i + 1) });
  const replies = await Promise.all(Array.from({ length: n }, (_, i) =>
    post('/transfers', body(i))));
  expect(replies.map((r) => r.statusCode)).toEqual(Array(n).fill(201));
  const seqs = replies.map((r) => BigInt(r.json().seq as string));
  expect(new Set(seqs).size).toBe(n);
  const calls = await scriptCalls('transfer') + await scriptCalls('transfer-batch') - before;
  expect(calls).toBeGreaterThan(0);
  expect(calls, 'grouped: fewer script calls than transfers').toBeLessThan(n);
  const sum = (odd: boolean) => Array.from({ length: n }, (_, i) => i)
    .filter((i) => (i % 2 === 1) === odd).reduce((s, i) => s + i + 1, 0);
  for (const [id, total] of [['a', sum(true)], ['b', sum(false)]] as const) {
    const account = (await f.app.inject({ method: 'GET', url: `/accounts/${id}` })).json();
    expect(account.balance, id).toBe(String(total));
  }
  // Each answer is what the transfer alone would have answered: its replay is identical.
  for (const [i, r] of replies.entries()) {
    const again = await post('/transfers', body(i));
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.payload).toBe(r.payload);
  }
});

test('the same id sent many times at once applies once; the rest replay it', async () => {
  const same = { id: 'dup', from: 'cash', to: 'a', amount: '1000' };
  const others = Array.from({ length: 10 }, (_, i) => ({ ...same, id: `o${i}` }));
  const replies = await Promise.all([...Array(10).fill(same), ...others]
    .map((body) => post('/transfers', body)));
  const dups = replies.slice(0, 10);
  expect(dups.map((r) => r.statusCode)).toEqual(Array(10).fill(201));
  expect(dups.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
  expect(new Set(dups.map((r) => r.json().seq)).size).toBe(1);
  expect(replies.slice(10).every((r) => r.statusCode === 201)).toBe(true);
});

test('a transfer that fails its group fails alone; the others are decided as alone', async () => {
  await f.redis.hdel(f.keys.account('bad'), 'lseq'); // corrupt: the batch script refuses it
  const journal = async () => (await f.redis.xlen(f.keys.journal()));
  const before = await journal();
  const bodies = Array.from({ length: 10 }, (_, i) =>
    ({ id: `c${i}`, from: 'cash', to: i === 4 ? 'bad' : 'b', amount: '3' }));
  const replies = await Promise.all(bodies.map((b) => post('/transfers', b)));
  expect(replies.map((r) => r.statusCode)).toEqual(bodies.map((_, i) => (i === 4 ? 500 : 201)));
  expect(await journal()).toBe(before + 9);
  const dump = await dumpLedger(f.redis, f.keys);
  expect((await post('/transfers', bodies[4])).statusCode).toBe(500);
  expect(await dumpLedger(f.redis, f.keys)).toBe(dump);
});

/** The grouping itself, with a runner that records what it was asked (no Redis needed). */
function recorder(fail?: (inputs: TransferInput[]) => Error | undefined) {
  const calls: string[][] = [];
  const decided = (t: TransferInput): TransferOutcome =>
    ({ kind: 'conflict', fields: [t.id] }); // any outcome that names the transfer
  const runner: GroupRunner = {
    single: async (t) => {
      calls.push([t.id]);
      const error = fail?.([t]);
      if (error) throw error;
      return decided(t);
    },
    group: async (ts) => {
      calls.push(ts.map((t) => t.id));
      const error = fail?.(ts);
      if (error) throw error;
      return ts.map(decided);
    },
  };
  return { calls, group: new GroupCommit(runner) };
}
const input = (id: string, createdBy = 'k'): TransferInput =>
  ({ id, from: 'x', to: 'y', amount: '1', metadata: {}, createdBy });

test('groups by key name, never one id twice, within the chunk bounds', async () => {
  const { calls, group } = recorder();
  const ids = ['a', 'b', 'a', 'c', ...Array.from({ length: 60 }, (_, i) => `n${i}`)];
  const outcomes = await Promise.all([
    ...ids.map((id) => group.decide(input(id), '{}')),
    group.decide(input('z', 'other'), '{}'),
  ]);
  expect(outcomes.map((o) => (o.kind === 'conflict' ? o.fields[0] : '')))
    .toEqual([...ids, 'z']);
  for (const call of calls) {
    expect(new Set(call).size, 'no id twice in a call').toBe(call.length);
    expect(call.length).toBeLessThanOrEqual(limits.BATCH_CHUNK_TRANSFERS_MAX);
    expect(call.includes('z') && call.length > 1, 'one key per call').toBe(false);
  }
  expect(calls.flat().sort()).toEqual([...ids, 'z'].sort());
});

test('Redis unavailable fails the whole group; a refusal decides each alone', async () => {
  const down = recorder(() => new Error('Connection is closed.'));
  const results = await Promise.allSettled(['p', 'q'].map((id) =>
    down.group.decide(input(id), '{}')));
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  expect(down.calls).toEqual([['p', 'q']]); // no retry of an unknown outcome
  const refused = recorder((ts) => (ts.some((t) => t.id === 'bad') ? new Error('corrupt')
    : undefined));
  const alone = await Promise.allSettled(['p', 'bad', 'q'].map((id) =>
    refused.group.decide(input(id), '{}')));
  expect(alone.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect(refused.calls).toEqual([['p', 'bad', 'q'], ['p'], ['bad'], ['q']]);
});
