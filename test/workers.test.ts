/**
 * LEDGER_WORKERS > 1 as a user runs it (src/server.ts, src/workers.ts): a primary with the
 * embedded Redis and N workers on one port. Both workers serve; transfers apply once; one
 * `/metrics`, whichever worker answers, shows the whole service (counters summed, gauges not
 * multiplied); a worker killed with -9 is replaced without losing its counts; SIGTERM lets an
 * in-flight request finish, exits 0 and stops the embedded Redis. Also: a busy port and a bad
 * LEDGER_WORKERS stop the start, and the configuration and restart-rate rules as tables.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { loadConfig } from '../src/config/env.js';
import { limits } from '../src/config/limits.js';
import { freePort } from '../src/redis/embedded.js';
import { nextStartAt } from '../src/workers.js';
import { API_KEYS_ENV, SECRETS } from './helpers/auth.js';
import { parseExposition, type Sample, valueOf } from './metrics/exposition.js';

const dirs: string[] = [];
const running: ChildProcess[] = [];
afterAll(() => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Service {
  child: ChildProcess; port: number; output: () => string; exit: Promise<number | null>;
}

async function start(env: Record<string, string>, port?: number): Promise<Service> {
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env, PORT: String(listenPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  const exit = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, port: listenPort, output: () => output, exit };
}

/**
 * Liveness bounds only, generous on purpose: the suite must pass on a busy 2-core machine with
 * a CPU burner running, where each worker compiling the service under tsx takes seconds.
 */
const WAIT_MS = 90_000;

async function until<T>(what: string, s: Service, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (s.child.exitCode !== null) throw new Error(`service exited: ${s.output()}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${WAIT_MS} ms: ${s.output()}`);
}

interface Reply { status: number; body: string }

/**
 * One request on a connection of its own (no keep-alive pool): the primary hands each new
 * connection to the next worker, so consecutive calls alternate between the workers.
 */
function call(port: number, method: string, path: string, body?: unknown,
  secret: string = SECRETS.test): Promise<Reply> {
  return new Promise((ok, fail) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ host: '127.0.0.1', port, method, path, agent: false,
      headers: { authorization: `Bearer ${secret}`,
        ...(payload === undefined ? {} : { 'content-type': 'application/json' }) } },
    (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', fail);
    req.end(payload);
  });
}

/** The pino lines (JSON) of the workers in the output. */
function logLines(s: Service): Array<{ pid: number; msg: string; req?: { url: string } }> {
  return s.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}
const listeningPids = (s: Service) => new Set(logLines(s)
  .filter((l) => l.msg.startsWith('Server listening')).map((l) => l.pid));
const servedBy = (s: Service, url: string) => new Set(logLines(s)
  .filter((l) => l.msg === 'request completed' && l.req?.url === url).map((l) => l.pid));

async function scrape(port: number, secret: string): Promise<Sample[]> {
  const res = await call(port, 'GET', '/metrics', undefined, secret);
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${res.body}`);
  return parseExposition(res.body);
}
const committed = (samples: Sample[]) =>
  valueOf(samples, 'ledger_transfers_total', { outcome: 'committed' });

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** A redis-server whose command line names this data dir (the embedded one, still running). */
function redisRunningIn(dir: string): boolean {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[0]?.includes('redis-server') === true && argv.includes(dir);
    } catch { return false; }
  });
}

async function transfers(port: number, secret: string, ids: string[]): Promise<void> {
  const replies = await Promise.all(ids.map((id) =>
    call(port, 'POST', '/transfers', { id, from: 'cash', to: 'alice', amount: '1' }, secret)));
  expect(replies.map((r) => r.status)).toEqual(ids.map(() => 201));
}

test('LEDGER_WORKERS=2: one service on one port, metrics of the whole, a killed worker ' +
  'replaced, SIGTERM graceful', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-workers-'));
  dirs.push(dir);
  const s = await start({ LEDGER_WORKERS: '2', LEDGER_DATA_DIR: dir, REDIS_URL: '',
    LEDGER_API_KEYS: '' });
  await until('ready', s, async () => (s.output().includes('2 workers serving') &&
    (await call(s.port, 'GET', '/readyz')).status === 200) || undefined);
  // The primary made the development key once and printed it once; the workers read it.
  const key = readFileSync(join(dir, 'dev-api-key'), 'utf8').trim();
  expect(s.output().split(key).length - 1).toBe(1);
  // Log lines reach the output in blocks (LOG_FLUSH_INTERVAL_MS at the latest): wait for them.
  const workers = await until('both workers logged listening', s, async () => {
    const pids = [...listeningPids(s)];
    return pids.length === 2 ? pids : undefined;
  });
  expect(workers).not.toContain(s.child.pid);

  for (const id of ['cash', 'alice']) {
    const account = { id, currency: 'USD', overdraftLimit: id === 'cash' ? 'unlimited' : '0' };
    expect((await call(s.port, 'POST', '/accounts', account, key)).status).toBe(201);
  }
  const first = Array.from({ length: 40 }, (_, i) => `t-${i}`);
  await transfers(s.port, key, first);
  await until('both served transfers', s, async () =>
    servedBy(s, '/transfers').size === 2 || undefined);
  expect(servedBy(s, '/transfers')).toEqual(new Set(workers));
  // Each transfer applied once: a replay is a replay, alice holds exactly 40.
  expect(JSON.parse((await call(s.port, 'GET', '/accounts/alice', undefined, key)).body))
    .toMatchObject({ balance: '40' });

  // Consecutive scrapes are answered by alternating workers; each shows the whole service.
  for (let i = 0; i < 4; i++) {
    const samples = await scrape(s.port, key);
    expect(valueOf(samples, 'ledger_workers', { state: 'answered' })).toBe(2);
    expect(committed(samples)).toBe(40);
    expect(valueOf(samples, 'ledger_http_request_duration_seconds_count',
      { method: 'POST', route: '/transfers', status_class: '2xx' })).toBe(40);
    expect(valueOf(samples, 'ledger_ready')).toBe(1); // not 2
    expect(valueOf(samples, 'ledger_redis_up')).toBe(1);
    const cpu = samples.filter((x) => x.name === 'process_cpu_seconds_total');
    expect(cpu.map((x) => x.labels.worker).sort()).toEqual(['1', '2']);
  }
  await until('both served scrapes', s, async () =>
    servedBy(s, '/metrics').size === 2 || undefined);
  expect(servedBy(s, '/metrics')).toEqual(new Set(workers));

  // kill -9 of a worker: replaced; what it counted stays in the totals.
  process.kill(workers[0] as number, 'SIGKILL');
  await until('replaced', s, async () => listeningPids(s).size === 3 || undefined);
  const replaced = await until('scraped after the restart', s, async () => {
    const samples = await scrape(s.port, key);
    return valueOf(samples, 'ledger_workers', { state: 'answered' }) === 2 ? samples : undefined;
  });
  expect(valueOf(replaced, 'ledger_worker_restarts_total')).toBe(1);
  expect(committed(replaced)).toBe(40);
  await transfers(s.port, key, Array.from({ length: 10 }, (_, i) => `u-${i}`));
  expect(committed(await scrape(s.port, key))).toBe(50);

  // SIGTERM to the primary with a request in flight: it finishes, then everything stops.
  const inFlight = await startInFlight(s.port, key,
    { id: 'last', from: 'cash', to: 'alice', amount: '1' });
  s.child.kill('SIGTERM');
  await until('workers closing', s, async () => logLines(s)
    .filter((l) => l.msg === 'shutting down').length === 2 || undefined);
  expect((await inFlight.finish()).status).toBe(201);
  expect(await s.exit).toBe(0);
  for (const pid of listeningPids(s)) expect(alive(pid), `worker ${pid}`).toBe(false);
  expect(redisRunningIn(dir)).toBe(false);
  expect(existsSync(join(dir, 'appendonlydir'))).toBe(true);
});

/**
 * A POST whose headers the worker has read (it answered `100 Continue`) and whose body has not
 * been sent yet: in flight until `finish()` sends the body.
 */
async function startInFlight(port: number, secret: string, body: unknown) {
  const payload = JSON.stringify(body);
  let reply: Promise<Reply> | undefined;
  const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/transfers',
    agent: false, headers: { authorization: `Bearer ${secret}`, expect: '100-continue',
      'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } });
  reply = new Promise<Reply>((ok, fail) => {
    req.on('error', fail);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body: text }));
    });
  });
  req.flushHeaders();
  await new Promise<void>((ok) => req.once('continue', () => ok()));
  return { finish: () => { req.end(payload); return reply; } };
}

test('a busy port stops the start, naming it, and leaves no redis-server', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-workers-'));
  dirs.push(dir);
  const taken = createServer();
  const port = await new Promise<number>((ok) => taken.listen(0, '127.0.0.1', () =>
    ok((taken.address() as { port: number }).port)));
  try {
    const s = await start({ LEDGER_WORKERS: '2', LEDGER_DATA_DIR: dir, REDIS_URL: '',
      LEDGER_API_KEYS: API_KEYS_ENV }, port);
    expect(await s.exit).toBe(1);
    // Checked before Redis starts or a worker forks (src/instance.ts): at once, with the fix.
    expect(s.output()).toMatch(new RegExp(`port ${port} on 127.0.0.1 is already in use.*PORT`));
    expect(redisRunningIn(dir)).toBe(false);
  } finally {
    taken.close();
  }
});

test('REDIS_URL: the workers use it; LEDGER_WORKERS=0 is refused at start', async () => {
  const s = await start({ LEDGER_WORKERS: '2', REDIS_URL: inject('redisUrl'),
    LEDGER_NAME: `workers-${Date.now()}`, LEDGER_API_KEYS: API_KEYS_ENV });
  await until('ready', s, async () => (s.output().includes('2 workers serving') &&
    (await call(s.port, 'GET', '/readyz')).status === 200) || undefined);
  expect(s.output()).not.toContain('embedded redis-server');
  s.child.kill('SIGTERM');
  expect(await s.exit).toBe(0);

  const refused = await start({ LEDGER_WORKERS: '0', REDIS_URL: inject('redisUrl'),
    LEDGER_API_KEYS: API_KEYS_ENV });
  expect(await refused.exit).toBe(1);
  expect(refused.output()).toMatch(/LEDGER_WORKERS=0 must be an integer from 1 to 64/);
});

describe('rules', () => {
  test.each([
    [undefined, 1], ['1', 1], ['2', 2], [String(limits.WORKERS_MAX), limits.WORKERS_MAX],
    ['0', 'refused'], [String(limits.WORKERS_MAX + 1), 'refused'], ['', 'refused'],
    ['two', 'refused'], ['2.5', 'refused'], [' 2', 'refused'], ['-1', 'refused'],
  ])('LEDGER_WORKERS=%j: %s', (value, expected) => {
    const env = value === undefined ? {} : { LEDGER_WORKERS: value };
    const load = () => loadConfig({ ...env, LEDGER_API_KEYS: API_KEYS_ENV }).workers;
    if (expected === 'refused') expect(load).toThrow(/LEDGER_WORKERS=.* must be an integer/);
    else expect(load()).toBe(expected);
  });

  const W = limits.WORKER_RESTART_WINDOW_MS;
  const MAX = limits.WORKER_RESTARTS_MAX;
  const full = (t: number) => Array.from({ length: MAX }, (_, i) => t + i);
  test.each([
    ['none before: at once', [], 5_000, 5_000],
    ['one fewer than the budget: at once', full(0).slice(1), 100, 100],
    ['the budget spent: when the oldest leaves the window', full(0), 100, W],
    ['the oldest already out of the window: at once', full(0), W + 1, W + 1],
    ['a delayed one pending, budget left: not before it', [...full(0).slice(2), W], 100, W],
    ['a delayed one pending, budget spent: when the oldest leaves the window',
      [...full(0).slice(1), W], 100, W + 1],
  ])('the next replacement, %s', (_why, starts, now, expected) => {
    expect(nextStartAt(starts, now)).toBe(expected);
  });
});
