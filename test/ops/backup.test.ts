/**
 * Backup and restore (docs/backup.md), end to end with real processes: the service runs with its
 * embedded Redis under concurrent transfers over HTTP; `npm run backup` snapshots it meanwhile;
 * `npm run restore` fills a fresh redis-server (REDIS_URL) and an empty data dir (the service
 * then starts on it). Each restored ledger must be exactly one point in time, the manifest's:
 * - every transfer acknowledged (201 or 422) before the backup began is there, and a retry of
 *   it replays the same status and body; every committed one with a seq up to the manifest's
 *   journal seq is there, every later one is absent (404);
 * - each balance is the sum of its entries, the balances sum to zero, and the entries number
 *   twice the journal seq; the next transfer gets the next seq.
 * A dump.rdb saved before the load lies in the data dir, so a backup that copied Redis's file
 * instead of taking a new snapshot would miss every transfer of the load and fail here.
 * Restore refuses a target that holds anything, and a backup with one byte changed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DATA_FORMAT_VERSION } from '../../src/ledger/scripts.js';
import type { Manifest } from '../../src/ops/manifest.js';
import { freePort } from '../../src/redis/embedded.js';
import { ServiceProcess } from '../faults/bank/system.js';
import { API_KEYS_ENV } from '../helpers/auth.js';
import {
  admin, type Answer, call, type OpsApp, opsApp, startRedis, type TestRedis, until,
} from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LEDGER = 'backup-test';
const CUSTOMERS = 8;
const LOAD_WORKERS = 6;
/** The load runs until this much is acknowledged before the backup, and as much after it. */
const ACKNOWLEDGED_BEFORE = 300;
const REJECTED_BEFORE = 20;
const ACKNOWLEDGED_AFTER = 100;
/** Liveness only: the load on a shared 2-core machine, and a backup (a 5 s fork delay). */
const LOAD_TIMEOUT_MS = 60_000;
const TOOL_TIMEOUT_MS = 120_000;
const CHECK_CONCURRENCY = 16;

/** Every npm process this file started, killed if the test process exits first. */
const tools = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of tools) if (child.exitCode === null) child.kill('SIGKILL');
});

/** The environment of the service and tools: nothing of the caller's ledger settings. */
function envWith(extra: Record<string, string>): Record<string, string> {
  const theirs = ['REDIS_URL', 'LEDGER_DATA_DIR', 'REDIS_TLS_CA_FILE', 'LEDGER_KEY_PREFIX'];
  const env = Object.fromEntries(Object.entries(process.env).filter(([name, value]) =>
    value !== undefined && !theirs.includes(name))) as Record<string, string>;
  return { ...env, LOG_LEVEL: 'warn', LEDGER_NAME: LEDGER, ...extra };
}

/** `npm run <command> -- <dir>`: its exit code and everything it printed. */
function tool(command: 'backup' | 'restore', dir: string, env: Record<string, string>):
  Promise<{ code: number | null; out: string }> {
  const child = spawn('npm', ['run', '--silent', command, '--', dir],
    { cwd: ROOT, env: envWith(env), stdio: ['ignore', 'pipe', 'pipe'] });
  tools.add(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS);
  return new Promise((ok) => child.once('exit', (code) => {
    clearTimeout(timer);
    tools.delete(child);
    ok({ code, out });
  }));
}

async function startService(dataDir: string): Promise<ServiceProcess> {
  const service = ServiceProcess.spawn(await freePort(), envWith({ LEDGER_DATA_DIR: dataDir,
    LEDGER_API_KEYS: API_KEYS_ENV, LEDGER_RATE_LIMIT_PER_SECOND: '1000000' }));
  services.push(service);
  await service.waitReady();
  return service;
}

interface Sent {
  body: { id: string; from: string; to: string; amount: string };
  answer: Answer;
}

const acknowledged = (s: Sent) => s.answer.status === 201 || s.answer.status === 422;
const seqOf = (s: Sent) => BigInt((JSON.parse(s.answer.text) as { seq: string }).seq);
const customer = (i: number) => `c${i}`;
const ACCOUNTS = ['cash', ...Array.from({ length: CUSTOMERS }, (_, i) => customer(i))];
const pick = (n: number) => Math.floor(Math.random() * n);

/** One client: transfers between customers (some refused for funds) and top-ups from cash. */
async function loadWorker(base: string, worker: number, sent: Sent[], stop: () => boolean) {
  for (let n = 0; !stop(); n++) {
    const from = pick(4) === 0 ? 'cash' : customer(pick(CUSTOMERS));
    const to = customer(pick(CUSTOMERS));
    if (from === to) continue;
    const body = { id: `w${worker}-${n}`, from, to, amount: String(1 + pick(400)) };
    sent.push({ body, answer: await call(base, 'POST', '/transfers', body) });
  }
}

/** Runs `check` over `items`, a few at a time. */
async function each<T>(items: T[], check: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += CHECK_CONCURRENCY) {
    await Promise.all(items.slice(i, i + CHECK_CONCURRENCY).map(check));
  }
}

const services: ServiceProcess[] = [];
const temp = mkdtempSync(join(tmpdir(), 'ledger-backup-test-'));
let source: ServiceProcess;
const sent: Sent[] = [];
let backupBegan = 0;
let backupEnded = 0;
let heldSeq = 0n;
const backupDir = join(temp, 'backup');
let restoredRedis: TestRedis | undefined;
let restoredApp: OpsApp | undefined;
const restoredDataDir = join(temp, 'restored-data');

beforeAll(async () => {
  source = await startService(join(temp, 'data'));
  for (const id of ACCOUNTS) {
    const overdraftLimit = id === 'cash' ? 'unlimited' : '0';
    expect((await call(source.base, 'POST', '/accounts', { id, currency: 'USD',
      overdraftLimit })).status).toBe(201);
  }
  // The stale file: Redis's own dump.rdb, in its dir, from before any transfer of the load.
  const url = /embedded redis-server on (redis:\/\/\S+),/.exec(source.log)?.[1] as string;
  const redis = await admin(url);
  await redis.save();
  redis.disconnect();
  expect(readdirSync(join(temp, 'data'))).toContain('dump.rdb');
});

afterAll(async () => {
  await restoredApp?.close();
  await restoredRedis?.dispose();
  for (const service of services) await service.kill();
  rmSync(temp, { recursive: true, force: true });
});

test('a backup taken under load holds exactly the ledger at one moment', async () => {
  let stopping = false;
  const loaders = Array.from({ length: LOAD_WORKERS },
    (_, w) => loadWorker(source.base, w, sent, () => stopping));
  const count = (when: (s: Sent) => boolean) => sent.filter((s) => when(s)).length;
  await until('load before the backup', async () => count(acknowledged) >= ACKNOWLEDGED_BEFORE &&
    count((s) => s.answer.status === 422) >= REJECTED_BEFORE, LOAD_TIMEOUT_MS);
  backupBegan = Date.now();
  const backup = await tool('backup', backupDir, { LEDGER_DATA_DIR: join(temp, 'data') });
  backupEnded = Date.now();
  await until('load after the backup', async () =>
    count((s) => acknowledged(s) && s.answer.start > backupEnded) >= ACKNOWLEDGED_AFTER,
  LOAD_TIMEOUT_MS).finally(() => { stopping = true; });
  await Promise.all(loaders);
  expect(backup.code, backup.out).toBe(0);
  // Decided answers throughout. A 503 (Redis slower than REDIS_COMMAND_TIMEOUT_MS on a busy
  // shared machine) is an unknown outcome, never checked below; anything else is a defect.
  expect(sent.filter((s) => !acknowledged(s) && s.answer.code !== 'UNAVAILABLE')
    .map((s) => s.answer.text)).toEqual([]);

  const manifest = JSON.parse(readFileSync(join(backupDir, 'manifest.json'), 'utf8')) as Manifest;
  const rdb = readFileSync(join(backupDir, 'dump.rdb'));
  expect(manifest.files).toEqual([{ name: 'dump.rdb', bytes: rdb.length,
    sha256: createHash('sha256').update(rdb).digest('hex') }]);
  expect(manifest.source.kind).toBe('embedded');
  expect(manifest.dataFormatVersion).toBe(DATA_FORMAT_VERSION);
  expect(manifest.source.redisVersion).toMatch(/^\d+\.\d+\.\d+$/);
  const ledger = manifest.ledgers.find((l) => l.ledger === LEDGER && l.prefix === 'ledger');
  expect(ledger?.format).toBe(DATA_FORMAT_VERSION);
  expect(ledger?.accounts).toBe(String(ACCOUNTS.length));
  heldSeq = BigInt(ledger?.journalSeq ?? -1);
  const committed = sent.filter((s) => s.answer.status === 201);
  // Acknowledged before the backup began: in it. Sent after it ended: after the fork.
  expect(committed.filter((s) => s.answer.end < backupBegan && seqOf(s) > heldSeq)).toEqual([]);
  expect(committed.filter((s) => s.answer.start > backupEnded && seqOf(s) <= heldSeq))
    .toEqual([]);
  console.log(`backup under load: ${backup.out.match(/snapshot: .*/)?.[0]}, ` +
    `${((backupEnded - backupBegan) / 1000).toFixed(1)} s in all; journal seq ${heldSeq} of ` +
    `${committed.length} committed, ${count((s) => s.answer.status === 422)} rejected, ` +
    `${count((s) => !acknowledged(s))} unknown (503)`);
}, 4 * TOOL_TIMEOUT_MS);

/**
 * The restored ledger at `base` is the manifest's moment: see the file's header. Leaves one new
 * transfer behind (seq heldSeq + 1).
 */
async function checkRestored(base: string): Promise<void> {
  const committed = sent.filter((s) => s.answer.status === 201);
  await each(committed.filter((s) => seqOf(s) > heldSeq), async (s) => {
    expect((await call(base, 'GET', `/transfers/${s.body.id}`)).status, s.body.id).toBe(404);
  });
  const decided = [...committed.filter((s) => seqOf(s) <= heldSeq),
    ...sent.filter((s) => s.answer.status === 422 && s.answer.end < backupBegan)];
  expect(decided.length).toBeGreaterThanOrEqual(ACKNOWLEDGED_BEFORE);
  await each(decided, async (s) => {
    const replay = await call(base, 'POST', '/transfers', s.body);
    expect([replay.status, replay.text, replay.replayed], s.body.id)
      .toEqual([s.answer.status, s.answer.text, true]);
  });
  let balances = 0n;
  let entries = 0n;
  for (const id of ACCOUNTS) {
    const account = JSON.parse((await call(base, 'GET', `/accounts/${id}`)).text) as
      { balance: string };
    let sum = 0n;
    for (let cursor: string | null = '', page = 0; cursor !== null; page++) {
      const query = cursor === '' ? '' : `&cursor=${cursor}`;
      const res = await call(base, 'GET', `/accounts/${id}/entries?limit=100${query}`);
      expect(res.status, res.text).toBe(200);
      const body = JSON.parse(res.text) as
        { entries: Array<{ amount: string }>; nextCursor: string | null };
      for (const entry of body.entries) sum += BigInt(entry.amount);
      entries += BigInt(body.entries.length);
      cursor = body.nextCursor;
    }
    expect(sum, id).toBe(BigInt(account.balance));
    balances += sum;
  }
  expect([balances, entries]).toEqual([0n, 2n * heldSeq]);
  const next = await call(base, 'POST', '/transfers',
    { id: 'after-restore', from: 'cash', to: customer(0), amount: '1' });
  expect(next.status, next.text).toBe(201);
  expect(JSON.parse(next.text).seq).toBe(String(heldSeq + 1n));
}

test('restored into a fresh redis-server (REDIS_URL): that moment, and it takes transfers',
  async () => {
    expect(heldSeq).toBeGreaterThan(0n);
    restoredRedis = await startRedis();
    const restore = await tool('restore', backupDir, { REDIS_URL: restoredRedis.url });
    expect(restore.code, restore.out).toBe(0);
    restoredApp = await opsApp(restoredRedis.url, { keyPrefix: 'ledger', ledgerName: LEDGER,
      metrics: false });
    await checkRestored(restoredApp.base);
  }, 2 * TOOL_TIMEOUT_MS);

test('restored into an empty data dir: the service starts on it, at that moment', async () => {
  expect(heldSeq).toBeGreaterThan(0n);
  const restore = await tool('restore', backupDir, { LEDGER_DATA_DIR: restoredDataDir });
  expect(restore.code, restore.out).toBe(0);
  expect(readdirSync(join(restoredDataDir, 'appendonlydir')).sort()).toEqual([
    'appendonly.aof.1.base.rdb', 'appendonly.aof.1.incr.aof', 'appendonly.aof.manifest']);
  await checkRestored((await startService(restoredDataDir)).base);
}, 2 * TOOL_TIMEOUT_MS);

test('restore refuses a target that holds anything, and changes nothing there', async () => {
  const url = (restoredRedis as TestRedis).url;
  const redis = await admin(url);
  const keys = await redis.dbsize();
  const intoRedis = await tool('restore', backupDir, { REDIS_URL: url });
  expect(intoRedis.code).toBe(1);
  expect(intoRedis.out).toMatch(/restore refused: redis:\/\/127\.0\.0\.1:\d+ is not empty: db0/);
  expect(await redis.dbsize()).toBe(keys);
  redis.disconnect();

  const notes = join(temp, 'not-empty');
  mkdirSync(notes);
  writeFileSync(join(notes, 'notes.txt'), 'mine\n');
  const intoDir = await tool('restore', backupDir, { LEDGER_DATA_DIR: notes });
  expect(intoDir.code).toBe(1);
  expect(intoDir.out).toContain(`restore refused: LEDGER_DATA_DIR ${notes} is not empty ` +
    '(it holds notes.txt)');
  expect(readdirSync(notes)).toEqual(['notes.txt']);

  const again = await tool('backup', backupDir, { LEDGER_DATA_DIR: join(temp, 'data') });
  expect(again.code).toBe(1);
  expect(again.out).toMatch(/backup refused: backup directory .* is not empty/);
}, 2 * TOOL_TIMEOUT_MS);

test('restore refuses a damaged backup: one byte changed, or no manifest', async () => {
  const damaged = join(temp, 'damaged');
  cpSync(backupDir, damaged, { recursive: true });
  const rdb = readFileSync(join(damaged, 'dump.rdb'));
  const middle = Math.floor(rdb.length / 2);
  rdb.writeUInt8(rdb.readUInt8(middle) ^ 0x01, middle);
  writeFileSync(join(damaged, 'dump.rdb'), rdb);
  const target = join(temp, 'never-filled');
  const flipped = await tool('restore', damaged, { LEDGER_DATA_DIR: target });
  expect(flipped.code).toBe(1);
  expect(flipped.out).toMatch(new RegExp(`restore refused: ${damaged}/dump.rdb has SHA-256 ` +
    '[0-9a-f]{64}, the manifest says [0-9a-f]{64}: the backup is damaged'));
  expect(existsSync(target)).toBe(false);

  rmSync(join(damaged, 'manifest.json'));
  const unfinished = await tool('restore', damaged, { LEDGER_DATA_DIR: target });
  expect(unfinished.code).toBe(1);
  expect(unfinished.out).toContain(`restore refused: ${damaged}/manifest.json does not exist`);
  expect(existsSync(target)).toBe(false);
}, 2 * TOOL_TIMEOUT_MS);

test('backs up REDIS_URL as a least-privilege user, and a stopped data dir', async () => {
  const { port } = restoredRedis as TestRedis;
  const redis = await admin(`redis://127.0.0.1:${port}`);
  await redis.acl('SETUSER', 'backup', 'on', '>backup-secret', 'resetchannels', '-@all',
    '+info', '+ping', '+sync', '+replconf');
  redis.disconnect();
  const fromUrl = await tool('backup', join(temp, 'from-url'),
    { REDIS_URL: `redis://backup:backup-secret@127.0.0.1:${port}` });
  expect(fromUrl.code, fromUrl.out).toBe(0);
  expect(fromUrl.out).not.toContain('backup-secret');
  const restored = services[services.length - 1] as ServiceProcess;
  const exited = new Promise((ok) => restored.child.once('exit', ok));
  restored.child.kill('SIGTERM'); // graceful: the service stops its Redis last
  await exited;
  const fromStopped = await tool('backup', join(temp, 'from-stopped'),
    { LEDGER_DATA_DIR: restoredDataDir });
  expect(fromStopped.code, fromStopped.out).toBe(0);
  for (const [dir, kind] of [['from-url', 'redis-url'], ['from-stopped', 'stopped-data-dir']]) {
    const manifest = JSON.parse(readFileSync(join(temp, dir as string, 'manifest.json'),
      'utf8')) as Manifest;
    expect(manifest.source.kind).toBe(kind);
    if (kind === 'redis-url') {
      expect(manifest.source.redisUrl).toBe(`redis://backup:***@127.0.0.1:${port}`);
    }
    // Each restored ledger took one transfer after the restore.
    expect(manifest.ledgers.find((l) => l.ledger === LEDGER)?.journalSeq)
      .toBe(String(heldSeq + 1n));
  }
}, 2 * TOOL_TIMEOUT_MS);
