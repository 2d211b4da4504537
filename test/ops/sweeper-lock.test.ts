/**
 * The sweeper lock (src/redis/lock.ts) across processes: one instance sweeps at a time; a
 * holder frozen (SIGSTOP) past its lease loses it to another, and when resumed neither sweeps
 * again nor deletes its successor's lock; every expired hold is released exactly once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { loadScripts, type Script } from '../../src/ledger/scripts.js';
import { RedisLock } from '../../src/redis/lock.js';
import { type Fixture, fixture } from '../helpers/ledger.js';

const HELPER = fileURLToPath(new URL('../helpers/sweeper-process.ts', import.meta.url));
const TTL_MS = 1500;
const DEADLINE_MS = 60_000;

interface Sweeper {
  child: ChildProcess;
  token: Promise<string>;
  lines: Array<Record<string, unknown>>;
  exited: Promise<unknown>;
}

let f: Fixture;
const children: ChildProcess[] = [];

beforeAll(async () => { f = await fixture(); });
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await f.close();
});

function startSweeper(ledgerName: string): Sweeper {
  // node itself, not the tsx launcher: SIGSTOP must reach the process that sweeps.
  const child = spawn(process.execPath, ['--import', 'tsx', HELPER, inject('redisUrl'),
    ledgerName, String(TTL_MS)],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let gotToken: (token: string) => void = () => {};
  const token = new Promise<string>((ok) => { gotToken = ok; });
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const event = JSON.parse(line) as Record<string, unknown>;
    lines.push(event);
    if (typeof event.token === 'string') gotToken(event.token);
  });
  const exited = new Promise((ok) => child.once('exit', ok));
  return { child, token, lines, exited };
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const releasedBy = (s: Sweeper) => s.lines.flatMap((l) =>
  Array.isArray(l.released) && l.stopped === undefined ? l.released as string[] : []);

async function openHolds(count: number, timeoutSeconds: number): Promise<string[]> {
  const seqs: string[] = [];
  for (let i = 0; i < count; i++) {
    const outcome = await f.ledger.transfer({ id: `hold-${timeoutSeconds}-${i}-${Date.now()}`,
      from: 'a', to: 'b', amount: '1', metadata: {}, createdBy: 'test', pending: true,
      timeoutSeconds });
    if (outcome.kind !== 'decided' || outcome.transfer.seq === undefined) {
      throw new Error('hold not opened');
    }
    seqs.push(outcome.transfer.seq);
  }
  return seqs;
}

test('a frozen holder loses the lock, then neither sweeps nor releases its successor\'s lock',
  async () => {
    for (const id of ['a', 'b']) {
      await f.ledger.createAccount({ id, currency: 'USD', overdraftLimit: 'unlimited',
        metadata: {}, createdBy: 'test' });
    }
    const lockKey = f.keys.lock('sweeper');
    const ledgerName = f.keys.tag.slice(1, -1);
    const first = startSweeper(ledgerName);
    const firstToken = await first.token;
    await until('the first sweeper to take the lock', async () =>
      (await f.redis.get(lockKey)) === firstToken);
    const second = startSweeper(ledgerName);
    const secondToken = await second.token;

    const early = await openHolds(5, 1);
    await until('the holder to release the first holds', () => releasedBy(first).length === 5);
    expect(releasedBy(second)).toEqual([]);

    first.child.kill('SIGSTOP');
    await until('the second sweeper to take over', async () =>
      (await f.redis.get(lockKey)) === secondToken);
    const late = await openHolds(5, 1);
    await until('the new holder to release the later holds', () =>
      releasedBy(second).length === 5);

    first.child.kill('SIGCONT');
    await sleep(TTL_MS); // many intervals of the resumed sweeper
    first.child.kill('SIGTERM');
    await first.exited;
    expect(await f.redis.get(lockKey)).toBe(secondToken);
    expect(releasedBy(first).sort()).toEqual([...early].sort());
    expect(releasedBy(second).sort()).toEqual([...late].sort());
    const account = await f.ledger.getAccount('a');
    expect(account?.debitsPending).toBe('0');

    second.child.kill('SIGTERM');
    await second.exited;
    expect(await f.redis.get(lockKey)).toBeNull(); // its holder released it on stop
  }, 120_000);

test('only the holder renews or releases: a stranger\'s token changes nothing', async () => {
  const lockScript = loadScripts().get('lock') as Script;
  const key = f.keys.lock('unit');
  const a = new RedisLock(f.redis, lockScript, key, 10_000);
  const b = new RedisLock(f.redis, lockScript, key, 10_000);
  expect(await a.take()).toBe(true);
  expect(await b.take()).toBe(false);
  expect(await b.release()).toBe(false);
  expect(await f.redis.get(key)).toBe(a.token);
  expect(await a.take()).toBe(true); // renewed
  expect(await a.release()).toBe(true);
  expect(await b.take()).toBe(true);
  expect(await f.redis.pttl(key)).toBeGreaterThan(0);
});
