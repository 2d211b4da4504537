/**
 * Starting and stopping the service as people do: `npm start` in a terminal, a second one by
 * mistake, Ctrl-C, a kill -9, a port already taken. Real processes in process groups of their
 * own (as a terminal runs a job), the embedded redis-server, temporary data dirs, free ports.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { freePort } from '../../src/redis/embedded.js';
import { until } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Generous: two cores shared with the rest of the suite. */
const START_DEADLINE_MS = 60_000;
/** The issue asks "within a few seconds"; the test allows more, for a loaded machine. */
const REDIS_EXIT_DEADLINE_MS = 15_000;

interface Service {
  child: ChildProcess;
  port: number;
  base: string;
  output: () => string;
  exit: Promise<number | null>;
}

const services: Service[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const s of services) {
    try {
      process.kill(-(s.child.pid as number), 'SIGKILL');
    } catch { /* the group is gone */ }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-first-start-'));
  dirs.push(dir);
  return dir;
}

/**
 * The service on `dataDir` and `port`, in a process group of its own: `npm start` (npm, then
 * node), or node itself. The environment of a fresh shell: no Redis, no keys.
 */
function launch(how: 'npm' | 'node', dataDir: string, port: number): Service {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(REDIS_|LEDGER_|PORT$|HOST$|LOG_LEVEL$)/.test(name)) env[name] = value;
  }
  // --ignore-scripts: not prestart's set-up (the test run has done it), only `start` itself.
  const [command, args] = how === 'npm'
    ? ['npm', ['start', '--ignore-scripts', '--silent']]
    : [process.execPath, ['--import', 'tsx', 'src/server.ts']];
  const child = spawn(command, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...env, LEDGER_DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'info',
      npm_config_update_notifier: 'false' } });
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  const exit = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  const service = { child, port, base: `http://127.0.0.1:${port}`, output: () => output, exit };
  services.push(service);
  return service;
}

async function ready(s: Service): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (s.child.exitCode !== null) throw new Error(`the service exited:\n${s.output()}`);
    try {
      if ((await fetch(`${s.base}/readyz`)).status === 200) return;
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  throw new Error(`the service was not ready in time:\n${s.output()}`);
}

async function started(how: 'npm' | 'node', dataDir: string): Promise<Service> {
  const s = launch(how, dataDir, await freePort());
  await ready(s);
  return s;
}

const devKey = (dir: string) => readFileSync(join(dir, 'dev-api-key'), 'utf8').trim();
const redisPid = (dir: string) => Number(readFileSync(join(dir, 'redis.pid'), 'utf8'));

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

const createAccount = (s: Service, dir: string, id: string) =>
  fetch(`${s.base}/accounts`, { method: 'POST', body: JSON.stringify({ id, currency: 'USD' }),
    headers: { 'content-type': 'application/json', authorization: `Bearer ${devKey(dir)}` } });

/** Everything the AOF holds, as text: what Redis wrote before it stopped. */
function aofText(dir: string): string {
  const aof = join(dir, 'appendonlydir');
  return readdirSync(aof).map((f) => readFileSync(join(aof, f), 'latin1')).join('');
}

test('a second instance on the same data dir refuses at once, naming the directory and the ' +
  'running instance; the first keeps serving, and its start-up hint works', async () => {
  const dir = tempDir();
  const first = await started('node', dir);
  const redis = redisPid(dir);
  const link = join(tempDir(), 'same-data');
  symlinkSync(dir, link); // another spelling of the same directory is the same data dir
  for (const spelling of [dir, link]) {
    const second = launch('node', spelling, await freePort());
    expect(await second.exit).toBe(1);
    expect(second.output()).toContain(`data dir ${realpathSync(dir)} is in use by another ` +
      `instance (pid ${first.child.pid}, port ${first.port}): stop that one, or set ` +
      'LEDGER_DATA_DIR to another directory');
    expect(second.output()).not.toContain('embedded redis-server'); // refused before Redis
  }
  expect(redisPid(dir)).toBe(redis);
  expect(alive(redis)).toBe(true);
  expect((await createAccount(first, dir, 'still-serving')).status).toBe(201);
  // The start-up hint works as printed, on a ledger that was empty.
  const hint = /^try it.*\n((?:  .*\n){2})/m.exec(first.output())?.[1] ?? '';
  expect(hint).toMatch(/^ {2}curl -s /);
  const tried = spawnSync('bash', ['-c', hint], { encoding: 'utf8' });
  expect(JSON.parse(tried.stdout)).toMatchObject({ id: 'cash', createdBy: 'dev' });
  first.child.kill('SIGTERM');
  expect(await first.exit).toBe(0);
});

test('kill -9 of the service: its redis-server stops by itself, gracefully, and the next ' +
  'start finds no stale lock', async () => {
  const dir = tempDir();
  const first = await started('node', dir);
  expect((await createAccount(first, dir, 'before-the-crash')).status).toBe(201);
  const redis = redisPid(dir);
  first.child.kill('SIGKILL');
  await first.exit;
  await until('the orphaned redis-server to exit', async () => !running(redis),
    REDIS_EXIT_DEADLINE_MS);
  // SIGTERM from its keeper: Redis's own graceful shutdown, the AOF fsynced.
  expect(readFileSync(join(dir, 'redis.log'), 'utf8')).toMatch(/Received SIGTERM/);
  const next = await started('node', dir);
  const res = await fetch(`${next.base}/accounts/before-the-crash`,
    { headers: { authorization: `Bearer ${devKey(dir)}` } });
  expect(res.status).toBe(200);
  next.child.kill('SIGTERM');
  expect(await next.exit).toBe(0);
});

/**
 * A request the service has accepted (it answered `100 Continue` to its headers) whose body the
 * test sends only when told: in flight for as long as the test wants, with no timing involved.
 */
async function heldRequest(s: Service, dir: string, body: string) {
  const socket = connect(s.port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => { received += d; });
  socket.write(`POST /accounts HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n` +
    `Authorization: Bearer ${devKey(dir)}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`);
  await until('the service to take the request', async () => received.includes('100 Continue'));
  return {
    /** Sends the body; the status line of the answer. */
    async finish(): Promise<string> {
      socket.write(body);
      const answer = /HTTP\/1\.1 (?!100)\d{3}[^\r]*\r\n[\s\S]*?\r\n\r\n\{[\s\S]*\}$/;
      await until('the answer', async () => answer.test(received));
      socket.end();
      return /HTTP\/1\.1 (?!100)\d{3}[^\r]*/.exec(received)?.[0] ?? '';
    },
  };
}

// SIGINT to the group is a terminal's Ctrl-C; SIGTERM to the group, a service manager's stop.
test.each(['SIGINT', 'SIGTERM'] as const)('%s to the whole process group of `npm start`: the ' +
  'request in flight is answered, then Redis stops, then exit 0', async (sig) => {
  const dir = tempDir();
  const service = await started('npm', dir);
  const redis = redisPid(dir);
  const body = JSON.stringify({ id: 'in-flight', currency: 'USD' });
  const held = await heldRequest(service, dir, body);
  process.kill(-(service.child.pid as number), sig);
  await until('the service to start its shutdown', async () =>
    service.output().includes('"msg":"shutting down"'));
  // Redis is in a process group of its own: the signal did not reach it, and the drain needs it.
  expect(alive(redis)).toBe(true);
  expect(await held.finish()).toBe('HTTP/1.1 201 Created');
  expect(await service.exit).toBe(0);
  expect(alive(redis)).toBe(false);
  expect(aofText(dir)).toContain('in-flight');
  expect(service.output()).not.toMatch(/second SIG|killed by timeout/);
});

test('a busy PORT fails at once, naming the port and PORT, with no Redis started', async () => {
  const dir = join(tempDir(), 'data');
  const taken = createServer();
  await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
  const port = (taken.address() as { port: number }).port;
  try {
    const s = launch('node', dir, port);
    expect(await s.exit).toBe(1);
    expect(s.output()).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(s.output()).toMatch(/set PORT to a free port/);
    expect(s.output()).not.toMatch(/embedded redis-server|scripts loaded/);
    expect(existsSync(join(dir, 'redis.pid')) || existsSync(join(dir, 'redis.log'))).toBe(false);
  } finally {
    taken.close();
  }
});
