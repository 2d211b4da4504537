/**
 * The README's guarantees for batches (POST /transfers/batch), on Redis servers of this file's
 * own (AOF, appendfsync always, temp dirs): kill -9 of Redis while several clients send atomic
 * and chunked batches, and an AOF torn inside an atomic batch's MULTI block. Acknowledged
 * transfers survive exactly as acknowledged, atomic batches are all or nothing, a chunked batch
 * with an unknown outcome is a decided prefix that a re-send completes exactly once, and money
 * is conserved.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { AUTH_HEADER } from '../helpers/auth.js';
import { type Fixture, dumpLedger, fixture, json, listen, uniqueLedgerName }
  from '../helpers/ledger.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  // Reverse order: close apps before the Redis under them, and Redis before its dir goes.
  for (const c of cleanups.reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-batch-durability-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The Redis currently running on `dir`: restarts replace it, cleanup stops the newest. */
class RedisOn {
  current!: EmbeddedRedis;
  repairs: string[] = [];
  constructor(readonly dir: string) {
    cleanups.push(() => this.current?.stop());
  }

  async start(): Promise<void> {
    this.current = await startEmbeddedRedis({ dataDir: this.dir, port: this.current?.port });
    this.repairs.push(...this.current.repairs);
  }
}

/** A fixture closed by the test or, if it failed first, by cleanup; closed once either way. */
async function ledgerOn(url: string, ledgerName: string): Promise<Fixture> {
  const f = await fixture({ url, ledgerName });
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= f.close());
  cleanups.push(close);
  return { ...f, close };
}

interface TransferBody { id: string; from: string; to: string; amount: string }
interface BatchResult {
  id: string;
  status: number;
  replayed: boolean;
  transfer?: Record<string, unknown>;
  problem?: { code: string };
}
interface Answer { status: number; text: string }

async function createAccounts(f: Fixture, ids: string[], cash: string): Promise<void> {
  for (const id of [cash, ...ids]) {
    const res = await f.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: id === cash ? 'unlimited' : '0' } });
    expect(res.statusCode, res.body).toBe(201);
  }
}

/** A batch over real HTTP; a connection-level failure is an unknown outcome (status 0). */
async function postBatch(base: string, atomic: boolean, transfers: TransferBody[]):
  Promise<Answer> {
  try {
    const res = await fetch(`${base}/transfers/batch`, {
      method: 'POST', headers: { ...json, ...AUTH_HEADER },
      body: JSON.stringify({ atomic, transfers }),
      // Longer than the service's own request timeout: the service, not us, decides 503.
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, text: await res.text() };
  } catch (error) {
    return { status: 0, text: String(error) };
  }
}

const resultsOf = (a: Answer): BatchResult[] => (JSON.parse(a.text) as
  { results: BatchResult[] }).results;

/** GET /transfers/:id for many ids, a slice at a time (in-process, fast). */
async function readTransfers(f: Fixture, ids: string[]):
  Promise<Map<string, { status: number; body: Record<string, unknown> }>> {
  const out = new Map<string, { status: number; body: Record<string, unknown> }>();
  for (let i = 0; i < ids.length; i += 200) {
    await Promise.all(ids.slice(i, i + 200).map(async (id) => {
      const res = await f.app.inject({ method: 'GET', url: `/transfers/${id}` });
      out.set(id, { status: res.statusCode, body: res.json() });
    }));
  }
  return out;
}

/**
 * Conservation: balances add up to 0; each account's entries (every page, following
 * nextCursor) add up to its balance, with no transfer twice; and, when given, each balance is
 * the one the workload implies (every transfer applied exactly once).
 */
async function conserved(f: Fixture, ids: string[], expected?: Map<string, bigint>):
  Promise<void> {
  let total = 0n;
  for (const id of ids) {
    const account = await f.app.inject({ method: 'GET', url: `/accounts/${id}` });
    expect(account.statusCode, account.body).toBe(200);
    const balance = BigInt(account.json().balance as string);
    const seen = new Set<string>();
    let sum = 0n;
    let cursor: string | null = null;
    do {
      const after: string = cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const page = await f.app.inject({ method: 'GET',
        url: `/accounts/${id}/entries?limit=${limits.ENTRIES_PAGE_LIMIT_MAX}${after}` });
      expect(page.statusCode, page.body).toBe(200);
      const body = page.json() as { entries: Array<{ transferId: string; amount: string }>;
        nextCursor: string | null };
      for (const e of body.entries) {
        expect(seen.has(e.transferId), `${e.transferId} twice in ${id}'s entries`).toBe(false);
        seen.add(e.transferId);
        sum += BigInt(e.amount);
      }
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(sum, `entries of ${id} add up to its balance`).toBe(balance);
    if (expected) expect(balance, `balance of ${id}`).toBe(expected.get(id) ?? 0n);
    total += balance;
  }
  expect(total, 'balances add up to 0').toBe(0n);
}

/**
 * Liveness, not speed: the service is ready again within a reconnect delay of Redis answering
 * (REDIS_RECONNECT_DELAY_MAX_MS); twenty times that fails only if it never comes back.
 */
const READY_LIVENESS_MS = 20 * limits.REDIS_RECONNECT_DELAY_MAX_MS;

async function readyAgain(f: Fixture): Promise<void> {
  const deadline = Date.now() + READY_LIVENESS_MS;
  while ((await f.app.inject({ method: 'GET', url: '/readyz' })).statusCode !== 200) {
    expect(Date.now(), 'ready again after the restart (a liveness bound)').toBeLessThan(deadline);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9 while clients send batches

const ATOMIC_CLIENTS = 3;
const CHUNKED_CLIENTS = 3;
/** An atomic batch: CHAINS chains of HOPS transfers, cash → c0 → c1 → … → c(HOPS-1). */
const HOPS = 8;
const CHAINS = 6; // 48 transfers: within BATCH_ATOMIC_TRANSFERS_MAX
/** A chunked batch: several chunks (BATCH_CHUNK_TRANSFERS_MAX each), so a crash can split it. */
const CHUNKED_SIZE = 300;
const TARGETS = 10;
/** Every REJECT_EVERY-th transfer of a chunked batch is from an empty account: a recorded 422. */
const REJECT_EVERY = 41;
const KILLS = 3;
/** More kills, until one has split a chunked batch: where a kill lands is up to timing. */
const KILLS_MAX = 10;
/** Batches acknowledged between restarts before the next kill: the load is really flowing. */
const ACKS_BETWEEN_KILLS = 6;
const DOWN_MS = 200;
/**
 * Liveness, not speed: with the gate open a batch is acknowledged every few hundred ms; none
 * for this long means the workload hangs, however slow the machine.
 */
const STALL_LIVENESS_MS = 15_000;

interface SentBatch {
  client: number;
  atomic: boolean;
  transfers: TransferBody[];
  /** Which transfers the ledger must commit (the others must be rejected). */
  commits: boolean[];
  first?: Answer;
  /** When the first send left and was answered (ms since the test started). */
  sentAt?: number;
  answeredAt?: number;
}

const chainAccount = (c: number, h: number) => `a${c}-${h}`;
const target = (c: number, k: number) => `n${c}-${k}`;
const empty = (c: number) => `z${c}`;

/**
 * Later transfers of a chain spend what earlier ones brought: c1 … c(HOPS-1) start at 0 with
 * overdraft 0, so only the in-batch order makes the chain possible, and a chain half applied
 * would leave money sitting in an intermediate account.
 */
function atomicBatch(c: number, n: number): SentBatch {
  const transfers: TransferBody[] = [];
  for (let r = 0; r < CHAINS; r++) {
    const amount = String(n * CHAINS + r + 1);
    transfers.push({ id: `A${c}-${n}-${r}-0`, from: 'cash', to: chainAccount(c, 0), amount });
    for (let h = 1; h < HOPS; h++) {
      transfers.push({ id: `A${c}-${n}-${r}-${h}`, from: chainAccount(c, h - 1),
        to: chainAccount(c, h), amount });
    }
  }
  return { client: c, atomic: true, transfers, commits: transfers.map(() => true) };
}

function chunkedBatch(c: number, n: number): SentBatch {
  const transfers: TransferBody[] = [];
  const commits: boolean[] = [];
  for (let i = 0; i < CHUNKED_SIZE; i++) {
    const reject = i % REJECT_EVERY === REJECT_EVERY - 1;
    transfers.push({ id: `N${c}-${n}-${i}`, from: reject ? empty(c) : 'cash',
      to: target(c, i % TARGETS), amount: String(n * CHUNKED_SIZE + i + 1) });
    commits.push(!reject);
  }
  return { client: c, atomic: false, transfers, commits };
}

/** The balances if every transfer of every batch is decided exactly once. */
function expectedBalances(batches: SentBatch[]): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const add = (id: string, v: bigint) => out.set(id, (out.get(id) ?? 0n) + v);
  for (const b of batches) {
    for (const [i, t] of b.transfers.entries()) {
      if (!b.commits[i]) continue;
      add(t.from, -BigInt(t.amount));
      add(t.to, BigInt(t.amount));
    }
  }
  return out;
}

/** An acknowledged result says what the workload implies, and GET answers the same today. */
function checkAcknowledged(b: SentBatch, results: BatchResult[],
  stored: Map<string, { status: number; body: Record<string, unknown> }>): void {
  expect(results.map((r) => r.id)).toEqual(b.transfers.map((t) => t.id));
  for (const [i, r] of results.entries()) {
    const now = stored.get(r.id);
    expect(now?.status, `${r.id} was acknowledged, then lost`).toBe(200);
    if (b.commits[i]) {
      expect(r.status, r.id).toBe(201);
      expect(now?.body, `${r.id} as acknowledged`).toEqual(r.transfer);
    } else {
      expect(r.status, r.id).toBe(422);
      expect(r.problem?.code).toBe('INSUFFICIENT_FUNDS');
      expect(now?.body).toMatchObject({ id: r.id, status: 'rejected',
        reason: 'INSUFFICIENT_FUNDS' });
    }
  }
}

test('kill -9 of Redis under concurrent batches: acknowledged stay, unknown ones resolve ' +
  'all-or-nothing (atomic) or as a prefix (chunked), re-sent exactly once', async () => {
  const started = Date.now();
  const redis = new RedisOn(tempDir());
  await redis.start();
  const f = await ledgerOn(redis.current.url, uniqueLedgerName());
  const base = await listen(f);
  const accounts: string[] = [];
  for (let c = 0; c < ATOMIC_CLIENTS; c++) {
    for (let h = 0; h < HOPS; h++) accounts.push(chainAccount(c, h));
  }
  for (let c = 0; c < CHUNKED_CLIENTS; c++) {
    for (let k = 0; k < TARGETS; k++) accounts.push(target(c, k));
    accounts.push(empty(c));
  }
  await createAccounts(f, accounts, 'cash');
  accounts.push('cash');

  const batches: SentBatch[] = [];
  let acked = 0;
  let inFlight = 0;
  let stop = false;
  // Closed from a kill until the service is ready again: clients wait rather than pile up
  // batches that all answer 503, so the batch count (and the time to check them) stays bounded
  // however long a restart takes on a busy machine.
  let gate = Promise.resolve();
  let openGate = () => {};
  const client = async (c: number, atomic: boolean) => {
    for (let n = 0; ; n++) {
      await gate;
      if (stop) return;
      const b = atomic ? atomicBatch(c, n) : chunkedBatch(c, n);
      batches.push(b);
      inFlight++;
      b.sentAt = Date.now() - started;
      b.first = await postBatch(base, atomic, b.transfers);
      b.answeredAt = Date.now() - started;
      inFlight--;
      if (b.first.status === 200) acked++;
      else await sleep(20); // no tight loop should a 503 come with the gate open
    }
  };
  const kills: Array<{ atMs: number; acked: number; sent: number; inFlight: number }> = [];
  const crasher = async () => {
    const until = async (goal: number) => {
      let [seen, since] = [acked, Date.now()];
      while (acked < goal) {
        if (acked !== seen) [seen, since] = [acked, Date.now()];
        expect(Date.now() - since, 'the workload stalled: no batch acknowledged')
          .toBeLessThan(STALL_LIVENESS_MS);
        await sleep(5);
      }
    };
    // Did the kill at `atMs` leave a chunked batch partly decided? Looks at the batches it
    // caught once they are answered: the first transfer decided and the last one not.
    const split = async (atMs: number): Promise<boolean> => {
      const caught = batches.filter((b) => !b.atomic && (b.sentAt as number) <= atMs);
      while (caught.some((b) => b.first === undefined)) await sleep(5);
      for (const b of caught.filter((x) => x.first?.status !== 200
        && (x.answeredAt as number) >= atMs)) {
        const [head, tail] = [b.transfers[0]?.id as string, b.transfers.at(-1)?.id as string];
        const s = await readTransfers(f, [head, tail]);
        if (s.get(head)?.status === 200 && s.get(tail)?.status === 404) return true;
      }
      return false;
    };
    try {
      let splitOne = false;
      for (let k = 0; k < KILLS_MAX && (k < KILLS || !splitOne); k++) {
        await until(acked + ACKS_BETWEEN_KILLS);
        await sleep(Math.random() * 30); // somewhere inside a batch, not on an answer's heels
        const atMs = Date.now() - started;
        kills.push({ atMs, acked, sent: batches.length, inFlight });
        gate = new Promise((open) => { openGate = open; });
        await redis.current.kill();
        await sleep(DOWN_MS);
        await redis.start();
        await readyAgain(f);
        openGate();
        splitOne ||= await split(atMs);
      }
      await until(acked + ACKS_BETWEEN_KILLS);
    } finally {
      stop = true;
      openGate();
    }
  };
  await Promise.all([crasher(),
    ...Array.from({ length: ATOMIC_CLIENTS }, (_, c) => client(c, true)),
    ...Array.from({ length: CHUNKED_CLIENTS }, (_, c) => client(c, false))]);
  const workloadMs = Date.now() - started;
  await readyAgain(f);

  const unknown = batches.filter((b) => b.first?.status !== 200);
  for (const b of unknown) {
    // 503 or no answer only: any other status would be a decided answer we are not expecting.
    expect([0, 503], `${b.transfers[0]?.id}: ${b.first?.text}`).toContain(b.first?.status);
  }
  const stored = await readTransfers(f, batches.flatMap((b) => b.transfers.map((t) => t.id)));

  // (a) Every transfer of every acknowledged batch is there exactly as acknowledged.
  for (const b of batches.filter((x) => x.first?.status === 200)) {
    checkAcknowledged(b, resultsOf(b.first as Answer), stored);
  }

  // (b) + (c) What the unknown batches left: all or nothing, or a prefix of whole chunks.
  const figures = { atomicNone: 0, atomicAll: 0, chunkedNone: 0, chunkedPartial: 0,
    chunkedAll: 0 };
  const decidedBefore = new Map<SentBatch, boolean[]>();
  for (const b of unknown) {
    const decided = b.transfers.map((t) => {
      const s = stored.get(t.id);
      expect([200, 404], `${t.id}: ${JSON.stringify(s?.body)}`).toContain(s?.status);
      return s?.status === 200;
    });
    decidedBefore.set(b, decided);
    const count = decided.filter(Boolean).length;
    const first = b.transfers[0]?.id;
    if (b.atomic) {
      expect([0, b.transfers.length], `atomic batch ${first}: ${count} decided`).toContain(count);
      if (count === 0) figures.atomicNone++;
      else figures.atomicAll++;
    } else {
      expect(decided.slice(0, count).every(Boolean), `batch ${first}: decided is a prefix`)
        .toBe(true);
      // Chunks are BATCH_CHUNK_TRANSFERS_MAX transfers here: these are far below the bytes bound.
      expect(count === b.transfers.length || count % limits.BATCH_CHUNK_TRANSFERS_MAX === 0,
        `batch ${first}: ${count} decided is whole chunks`).toBe(true);
      if (count === 0) figures.chunkedNone++;
      else if (count === b.transfers.length) figures.chunkedAll++;
      else figures.chunkedPartial++;
    }
    // Whatever was decided was decided as the workload implies (committed or rejected).
    for (const [i, t] of b.transfers.entries()) {
      if (!decided[i]) continue;
      expect(stored.get(t.id)?.body.status, t.id).toBe(b.commits[i] ? 'committed' : 'rejected');
    }
  }
  // The crash must have caught batches in flight, chunked ones between chunks among them, or
  // (b) and (c) were checked on nothing.
  expect(unknown.length).toBeGreaterThan(0);
  expect(figures.chunkedPartial, 'a chunked batch split by a crash').toBeGreaterThan(0);

  // (c) Re-sending each unknown batch replays exactly what was decided and decides the rest.
  for (const b of unknown) {
    const before = decidedBefore.get(b) as boolean[];
    const again = await postBatch(base, b.atomic, b.transfers);
    expect(again.status, again.text).toBe(200);
    const results = resultsOf(again);
    for (const [i, r] of results.entries()) {
      expect(r.replayed, `${r.id} replayed iff decided before`).toBe(before[i]);
      if (!before[i]) continue;
      // A replay answers what was decided before the re-send, not a new decision.
      const was = stored.get(r.id)?.body;
      if (b.commits[i]) expect(r.transfer, r.id).toEqual(was);
      else expect(r.problem?.code, r.id).toBe(was?.reason);
    }
    const now = await readTransfers(f, b.transfers.map((t) => t.id));
    checkAcknowledged(b, results, now);
    // And once more: everything replays now, nothing is applied twice.
    const third = await postBatch(base, b.atomic, b.transfers);
    expect(third.status, third.text).toBe(200);
    expect(resultsOf(third).every((r) => r.replayed)).toBe(true);
  }

  // (d) Money is conserved, entries add up, and every transfer counted exactly once.
  await conserved(f, accounts, expectedBalances(batches));

  const atomicSent = batches.filter((b) => b.atomic).length;
  const caught = unknown.filter((b) => kills.some((k) =>
    (b.sentAt as number) <= k.atMs && k.atMs <= (b.answeredAt as number))).length;
  console.info(`batch kill -9: ${batches.length} batches (${atomicSent} atomic × ` +
    `${HOPS * CHAINS}, ${batches.length - atomicSent} chunked × ${CHUNKED_SIZE}), ` +
    `${batches.length - unknown.length} acknowledged, ${unknown.length} unknown ` +
    `(${caught} in flight at a kill, the rest sent while Redis was down or loading) ` +
    `${JSON.stringify(figures)}; kills ${JSON.stringify(kills)}; repairs ` +
    `${JSON.stringify(redis.repairs)}; workload ${workloadMs} ms, ` +
    `total ${Date.now() - started} ms`);
});

// ---------------------------------------------------------------------------------------------
// 2. An AOF torn inside an atomic batch's MULTI block

const MULTI = Buffer.from('*1\r\n$5\r\nMULTI\r\n');
const EXEC = Buffer.from('*1\r\n$4\r\nEXEC\r\n');
/** Where redis-server keeps the AOF files (--appenddirname); the repair's backups sit beside. */
const AOF_DIR = 'appendonlydir';

/**
 * The newest incremental AOF, read from the live manifest by this test itself rather than by
 * the code under test. (bank/disk.ts's newestIncrAof takes the first folder with a manifest,
 * which after one repair is the `aof-backup-*` copy, so a second tear would hit the backup.)
 */
function newestIncrAof(dir: string): string {
  const aofDir = join(dir, AOF_DIR);
  const manifest = readdirSync(aofDir).find((name) => name.endsWith('.manifest'));
  expect(manifest, `a manifest in ${aofDir}`).toBeDefined();
  const incr = readFileSync(join(aofDir, manifest as string), 'utf8').split('\n')
    .map((line) => /^file (\S+) seq \d+ type i$/.exec(line.trim())?.[1])
    .filter((name): name is string => name !== undefined);
  expect(incr.length).toBeGreaterThan(0);
  return join(aofDir, incr[incr.length - 1] as string);
}

/**
 * The newest AOF's last MULTI…EXEC block, checked to be the batch (it names every id) and the
 * last write (nothing after its EXEC), so a cut inside it tears exactly this batch.
 */
function lastBlock(dir: string, ids: string[]): { file: string; multiAt: number;
  commandStarts: number[] } {
  const file = newestIncrAof(dir);
  const aof = readFileSync(file);
  const multiAt = aof.lastIndexOf(MULTI);
  const execAt = aof.indexOf(EXEC, multiAt);
  expect(multiAt).toBeGreaterThan(0);
  expect(execAt + EXEC.length, 'the batch is the last write').toBe(aof.length);
  const block = aof.subarray(multiAt, execAt);
  for (const id of ids) expect(block.includes(Buffer.from(id)), id).toBe(true);
  const commandStarts: number[] = [];
  for (let i = MULTI.length; i < block.length; i++) {
    if (block[i] === 0x2a && block[i - 1] === 0x0a && block[i - 2] === 0x0d) {
      commandStarts.push(multiAt + i);
    }
  }
  return { file, multiAt, commandStarts };
}

/** Cuts the block `at` a few bytes into one of its commands, keeping the earlier ones whole. */
function tearAt(dir: string, ids: string[], which: (commands: number) => number): number {
  const { file, commandStarts } = lastBlock(dir, ids);
  expect(commandStarts.length).toBeGreaterThan(2);
  truncateSync(file, (commandStarts[which(commandStarts.length)] as number) + 3);
  return commandStarts.length;
}

/** The middle command: half the batch's writes stay whole before the cut. */
const tearInTheMiddle = (dir: string, ids: string[]) => tearAt(dir, ids, (n) => n >> 1);
/**
 * The last command, as bank/disk.ts's tearInsideLastMulti does: every other write of the batch
 * stays whole in the file, one write short of the complete batch.
 */
const tearInTheLastCommand = (dir: string, ids: string[]) => tearAt(dir, ids, (n) => n - 1);

test('an AOF torn inside an atomic batch loses the whole batch and nothing before it; ' +
  're-sent, the batch commits whole', async () => {
  const started = Date.now();
  const redis = new RedisOn(tempDir());
  await redis.start();
  const name = uniqueLedgerName();
  let f = await ledgerOn(redis.current.url, name);
  let base = await listen(f);
  const accounts = [...Array.from({ length: HOPS }, (_, h) => chainAccount(0, h)),
    ...Array.from({ length: TARGETS }, (_, k) => target(0, k)), empty(0)];
  await createAccounts(f, accounts, 'cash');
  accounts.push('cash');

  // Before the batch: a chunked batch (with rejections) and an atomic one, all acknowledged.
  const earlier = [chunkedBatch(0, 0), atomicBatch(0, 0), chunkedBatch(0, 1)];
  for (const b of earlier) {
    b.first = await postBatch(base, b.atomic, b.transfers);
    expect(b.first.status, b.first.text).toBe(200);
  }
  const dumpBefore = await dumpLedger(f.redis, f.keys);
  const batch = atomicBatch(0, 1);
  const ids = batch.transfers.map((t) => t.id);
  expect(ids.length).toBe(HOPS * CHAINS);

  const commands: number[] = [];
  for (const tear of [tearInTheMiddle, tearInTheLastCommand]) {
    // The batch (the first time, or its re-send after the previous tear) commits whole.
    const sent = await postBatch(base, true, batch.transfers);
    expect(sent.status, sent.text).toBe(200);
    expect(resultsOf(sent).every((r) => r.status === 201 && !r.replayed)).toBe(true);
    await f.close();
    await redis.current.kill();
    commands.push(tear(redis.dir, ids));
    const repairsBefore = redis.repairs.length;
    await redis.start();
    expect(redis.current.repairs.join('\n'), 'the torn tail was repaired at start')
      .toMatch(/shrink the AOF .* from \d+ bytes/);
    expect(redis.repairs.length).toBeGreaterThan(repairsBefore);

    f = await ledgerOn(redis.current.url, name);
    base = await listen(f);
    // Not one key of the batch survived, and every key before it is as it was.
    expect(await dumpLedger(f.redis, f.keys)).toBe(dumpBefore);
    const stored = await readTransfers(f, ids);
    expect([...stored.values()].filter((s) => s.status !== 404), 'the batch is absent')
      .toEqual([]);
    const before = await readTransfers(f, earlier.flatMap((b) => b.transfers.map((t) => t.id)));
    for (const b of earlier) checkAcknowledged(b, resultsOf(b.first as Answer), before);
    await conserved(f, accounts, expectedBalances(earlier));
  }

  // The last re-send commits whole. Then a clean stop and start: a torn block's complete
  // commands left in the file would only show at this later load, merged into the next block
  // (what Redis's own `aof-load-truncated yes` does: it reverts the block in memory but cuts
  // the file after the block's last complete command, not before its MULTI).
  batch.first = await postBatch(base, true, batch.transfers);
  expect(batch.first.status, batch.first.text).toBe(200);
  expect(resultsOf(batch.first).every((r) => r.status === 201 && !r.replayed)).toBe(true);
  await f.close();
  await redis.current.stop();
  const repairsBefore = redis.repairs.length;
  await redis.start();
  expect(redis.repairs.length, 'a clean stop needs no repair').toBe(repairsBefore);
  f = await ledgerOn(redis.current.url, name);
  const all = [...earlier, batch];
  const stored = await readTransfers(f, all.flatMap((b) => b.transfers.map((t) => t.id)));
  for (const b of all) checkAcknowledged(b, resultsOf(b.first as Answer), stored);
  await conserved(f, accounts, expectedBalances(all));
  console.info(`batch torn AOF: ${ids.length} transfers, ${commands.join(' and ')} commands ` +
    `in the torn blocks; repairs: ${redis.repairs.join(' | ')}; ${Date.now() - started} ms`);
});
