/**
 * The process as a user runs it (`npm start` runs src/server.ts): embedded Redis with AOF under
 * LEDGER_DATA_DIR, graceful shutdown that stops its redis-server, data kept across restarts,
 * REDIS_URL honoured, and a one-line hint when redis-server is missing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, inject, test } from 'vitest';
import { freePort } from '../src/redis/embedded.js';
import { API_KEYS_ENV, SECRETS } from './helpers/auth.js';

const dirs: string[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  // A failed assertion leaves its service running: stopped here, gracefully (its Redis too).
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess; base: string; output: () => string; exit: Promise<number | null>;
}

async function start(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  const exit = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, base: `http://127.0.0.1:${port}`, output: () => output, exit };
}

async function ready(r: Running): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (r.child.exitCode !== null) throw new Error(`server exited: ${r.output()}`);
    try {
      if ((await fetch(`${r.base}/readyz`)).status === 200) return;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error(`server never became ready: ${r.output()}`);
}

/** The development key the service made under its data dir (no LEDGER_API_KEYS). */
const devSecret = (dir: string) => readFileSync(join(dir, 'dev-api-key'), 'utf8').trim();

const post = (base: string, path: string, body: unknown, secret: string) =>
  fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` } });
const get = (url: string, secret: string) =>
  fetch(url, { headers: { authorization: `Bearer ${secret}` } });

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Alive and not a zombie: a process whose parent died is reaped by init, in its own time. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return process.platform === 'linux' ? false : alive(pid);
  }
}

test('embedded Redis: serves, shuts down gracefully with its redis-server, ' +
  'keeps data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-server-'));
  dirs.push(dir);
  const first = await start({ LEDGER_DATA_DIR: dir, REDIS_URL: '', LEDGER_API_KEYS: '' });
  await ready(first);
  // No keys configured: a development key, kept 0600 under the data dir, printed once.
  const key = devSecret(dir);
  expect(statSync(join(dir, 'dev-api-key')).mode & 0o777).toBe(0o600);
  expect(first.output()).toContain(key);
  expect((await post(first.base, '/accounts', { id: 'x', currency: 'USD' }, 'wrong')).status)
    .toBe(401);
  expect((await post(first.base, '/accounts',
    { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' }, key)).status).toBe(201);
  expect((await post(first.base, '/accounts', { id: 'alice', currency: 'USD' }, key)).status)
    .toBe(201);
  expect((await post(first.base, '/transfers',
    { id: 't1', from: 'cash', to: 'alice', amount: '42' }, key)).status).toBe(201);
  expect(await (await get(`${first.base}/transfers/t1`, key)).json())
    .toMatchObject({ createdBy: 'dev' });
  expect(existsSync(join(dir, 'appendonlydir'))).toBe(true);
  const redisPid = Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));
  first.child.kill('SIGTERM');
  expect(await first.exit).toBe(0);
  expect(alive(redisPid)).toBe(false);

  const second = await start({ LEDGER_DATA_DIR: dir, REDIS_URL: '', LEDGER_API_KEYS: '' });
  await ready(second);
  expect(second.output()).not.toContain(key); // printed once only
  expect(await (await get(`${second.base}/accounts/alice`, key)).json())
    .toMatchObject({ balance: '42' });
  // Kill the service hard: its redis-server stops by itself (test/ops/first-start.test.ts has
  // the details), and the next start carries on with the data.
  const orphan = Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));
  second.child.kill('SIGKILL');
  await second.exit;
  const third = await start({ LEDGER_DATA_DIR: dir, REDIS_URL: '', LEDGER_API_KEYS: '' });
  await ready(third);
  for (let i = 0; i < 150 && running(orphan); i++) await sleep(100);
  expect(running(orphan)).toBe(false);
  expect(await (await get(`${third.base}/transfers/t1`, key)).json())
    .toMatchObject({ status: 'committed' });
  third.child.kill('SIGTERM');
  expect(await third.exit).toBe(0);
});

test('the embedded redis-server dying on its own is restarted; the service recovers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-server-'));
  dirs.push(dir);
  const r = await start({ LEDGER_DATA_DIR: dir, REDIS_URL: '', LEDGER_API_KEYS: API_KEYS_ENV });
  await ready(r);
  expect((await post(r.base, '/accounts',
    { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' }, SECRETS.test)).status).toBe(201);
  const first = Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));
  process.kill(first, 'SIGKILL');
  await sleep(100);
  expect((await fetch(`${r.base}/readyz`)).status).toBe(503);
  await ready(r);
  expect(Number(readFileSync(join(dir, 'redis.pid'), 'utf8'))).not.toBe(first);
  expect(await (await get(`${r.base}/accounts/cash`, SECRETS.test)).json())
    .toMatchObject({ id: 'cash' });
  expect(r.output()).toMatch(/embedded redis: redis-server exited \(SIGKILL\).*restarting it/);
  r.child.kill('SIGTERM');
  expect(await r.exit).toBe(0);
});

test('REDIS_URL: uses that Redis and starts none', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'ledger-server-')), 'unused');
  dirs.push(dirname(dir));
  const r = await start({ LEDGER_DATA_DIR: dir, REDIS_URL: inject('redisUrl'),
    LEDGER_NAME: `srv-${Date.now()}`, LEDGER_API_KEYS: API_KEYS_ENV });
  await ready(r);
  expect(existsSync(dir)).toBe(false);
  r.child.kill('SIGTERM');
  expect(await r.exit).toBe(0);
});

test('REDIS_URL without API keys refuses to start; ' +
  'LEDGER_AUTH=off starts open, warning', async () => {
  const env = {
    REDIS_URL: inject('redisUrl'), LEDGER_NAME: `open-${Date.now()}`, LEDGER_API_KEYS: '',
  };
  const refused = await start(env);
  expect(await refused.exit).toBe(1);
  expect(refused.output()).toMatch(/LEDGER_API_KEYS is empty: set it .*or set LEDGER_AUTH=off/);
  const open = await start({ ...env, LEDGER_AUTH: 'off' });
  await ready(open);
  expect(open.output())
    .toMatch(/LEDGER_AUTH=off: anyone who can reach this service can move money/);
  const res = await fetch(`${open.base}/accounts`, { method: 'POST', body: '{"currency":"USD"}',
    headers: { 'content-type': 'application/json' } });
  expect(res.status).toBe(201);
  expect((await res.json()).createdBy).toBe('anonymous');
  open.child.kill('SIGTERM');
  expect(await open.exit).toBe(0);
});

test('no redis-server on PATH: one line saying how to install it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-server-'));
  dirs.push(dir);
  // An empty directory as PATH: the service itself is started by absolute path.
  const r = await start({ LEDGER_DATA_DIR: join(dir, 'data'), REDIS_URL: '', PATH: dir });
  expect(await r.exit).toBe(1);
  expect(r.output().trim())
    .toMatch(/^redis-server was not found on PATH\. Install it .*apt-get install -y redis-server/);
});
