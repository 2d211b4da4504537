/**
 * Unknown outcomes: Redis is killed (-9) under the running service while transfers stream in
 * over real HTTP, then restarted on the same AOF. Every request that got no decided answer is
 * retried with its id; each transfer must end applied exactly once, and every transfer that
 * was acknowledged before the crash must still be there (appendfsync always).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { type Fixture, fixture, getJson, listen, postJson } from '../helpers/ledger.js';

const TRANSFERS = 400;
const WORKERS = 8;
const KILL_AFTER = 120;
const ACCOUNTS = 10;

let dir: string;
let redis: EmbeddedRedis;
let f: Fixture;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ledger-fault-'));
  redis = await startEmbeddedRedis({ dataDir: dir });
  f = await fixture({ url: redis.url });
  base = await listen(f);
  await postJson(base, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  for (let i = 0; i < ACCOUNTS; i++) {
    await postJson(base, '/accounts', { id: `a${i}`, currency: 'USD' });
  }
});

afterAll(async () => {
  await f?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const request = (i: number) =>
  ({ id: `k${i}`, from: 'cash', to: `a${i % ACCOUNTS}`, amount: String(i + 1) });

async function attempt(i: number): Promise<{ status: number; text: string }> {
  try {
    return await postJson(base, '/transfers', request(i));
  } catch (error) {
    return { status: 0, text: String(error) }; // connection-level failure: unknown outcome too
  }
}

test('kill -9 of Redis mid-stream: every retried transfer applies exactly once', async () => {
  const first = new Map<number, { status: number; text: string }>();
  let next = 0;
  let crash: Promise<void> | undefined;
  const worker = async () => {
    while (next < TRANSFERS) {
      const i = next++;
      if (i === KILL_AFTER) {
        crash = (async () => {
          await redis.kill();
          await sleep(300);
          redis = await startEmbeddedRedis({ dataDir: dir, port: redis.port });
        })();
      }
      first.set(i, await attempt(i));
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  await crash;

  const acknowledged = [...first].filter(([, r]) => r.status === 201);
  const unknown = [...first].filter(([, r]) => r.status !== 201);
  expect(unknown.length, 'the crash must leave some outcomes unknown').toBeGreaterThan(0);
  expect(unknown.every(([, r]) => r.status === 503 || r.status === 0)).toBe(true);
  console.info(`before retries: ${acknowledged.length} acknowledged, ${unknown.length} unknown`);

  // Retry every unknown outcome with the same id until it is decided.
  const final = new Map(acknowledged);
  for (const [i] of unknown) {
    for (let tries = 0; ; tries++) {
      const r = await attempt(i);
      if (r.status === 201) { final.set(i, r); break; }
      expect(tries, `k${i} never decided: ${r.status} ${r.text}`).toBeLessThan(100);
      await sleep(100);
    }
  }

  // Acknowledged before the crash → still there, unchanged.
  for (const [i, r] of acknowledged) {
    const stored = await getJson(`${base}/transfers/k${i}`);
    expect(await stored.text()).toBe(r.text);
  }
  // Exactly once: seqs are 1..N with no gap or repeat, balances and entries add up.
  const seqs = [...final.values()].map((r) => Number(JSON.parse(r.text).seq)).sort((a, b) => a - b);
  expect(seqs).toEqual(Array.from({ length: TRANSFERS }, (_, i) => i + 1));
  let total = 0n;
  for (let a = 0; a < ACCOUNTS; a++) {
    let expected = 0n;
    for (let i = a; i < TRANSFERS; i += ACCOUNTS) expected += BigInt(i + 1);
    total += expected;
    const account = await (await getJson(`${base}/accounts/a${a}`)).json();
    expect(account.balance).toBe(expected.toString());
    const page = await (await getJson(`${base}/accounts/a${a}/entries?limit=1000`)).json();
    const ids = page.entries.map((e: { transferId: string }) => e.transferId);
    expect(ids.length).toBe(TRANSFERS / ACCOUNTS);
    expect(new Set(ids).size).toBe(ids.length);
  }
  expect((await (await getJson(`${base}/accounts/cash`)).json()).balance).toBe((-total).toString());
});
