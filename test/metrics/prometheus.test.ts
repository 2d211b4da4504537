/**
 * A real Prometheus (the Debian package's binary) scrapes the real service, on a primary and a
 * replica of its own with replica acks on (the Replication row needs both): the config is the
 * shipped deploy/prometheus/prometheus.yml with the ledger target pointed at a test server, its
 * credentials file at a temp file holding a metrics-only test key (so the scrape proves that scope
 * is enough), a 1 s scrape and evaluation interval, and the shipped alert rules. Authentication is
 * on, and so is the hold sweeper; traffic of every outcome (holds opened, posted, voided and
 * left to expire among them) flows, with the all-scopes test key, while it scrapes; then,
 * through Prometheus's HTTP API: the target is up, EVERY query of EVERY dashboard panel parses
 * and returns data, and every rule evaluates without error.
 * promtool checks the shipped files, and `promtool test rules` checks that the alerts fire.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { AMOUNT_MAX_STRING } from '../../src/config/limits.js';
import { freePort } from '../../src/redis/embedded.js';
import { bearer, SECRETS } from '../helpers/auth.js';
import { startRedis, startReplica, type TestRedis } from '../ops/helpers.js';
import { dashboardQueries, grafanaToPromQL } from './dashboard.js';
import { type MetricsFixture, metricsFixture } from './helpers.js';

const repo = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const PROMETHEUS_YML = repo('deploy/prometheus/prometheus.yml');
const ALERTS_YML = repo('deploy/prometheus/alerts.yml');
const DASHBOARD = repo('deploy/grafana/dashboards/ledger.json');
/** Every wait below is bounded by this; the whole file normally takes ~10 s. */
const WAIT_MS = 30_000;

let dir: string;
let f: MetricsFixture;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let base: string;
/** A primary and a replica of its own: the Replication row's WAIT and lag panels need both. */
let primary: TestRedis | undefined;
let replica: TestRedis | undefined;

/**
 * The shipped config with the ledger job's bearer credential read from `keyFile` (the shipped
 * path is the container's) and the rule files resolved beside the shipped config; nothing else
 * changed.
 */
function shippedConfig(keyFile: string) {
  const config = parse(readFileSync(PROMETHEUS_YML, 'utf8'));
  const job = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'ledger');
  if (!job || job.static_configs.length !== 1) throw new Error('prometheus.yml: no ledger job');
  const { authorization } = job;
  if (authorization?.type !== 'Bearer' || typeof authorization.credentials_file !== 'string') {
    throw new Error('prometheus.yml: the ledger job sends no bearer credentials_file');
  }
  authorization.credentials_file = keyFile;
  const beside = (file: string) => join(repo('deploy/prometheus'), file);
  config.rule_files = config.rule_files.map(beside);
  return { config, job };
}

/** A file holding the metrics-only test key, as compose mounts the real one. */
function metricsKeyFile(): string {
  const file = join(dir, 'ledger-metrics-key');
  writeFileSync(file, `${SECRETS.metrics}\n`, { mode: 0o600 }); // a trailing newline is fine
  return file;
}

/** The shipped config, with the ledger job aimed at `target` and 1 s intervals. */
function testConfig(target: string): string {
  const { config, job } = shippedConfig(metricsKeyFile());
  job.static_configs[0].targets = [target];
  config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
  return stringify(config);
}

async function startPrometheus(target: string): Promise<void> {
  writeFileSync(join(dir, 'prometheus.yml'), testConfig(target));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  const log = openSync(join(dir, 'prometheus.log'), 'w');
  prometheus = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'], { stdio: ['ignore', log, log] });
  await until('Prometheus ready', async () => {
    if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${prometheusLog()}`);
    return (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok === true;
  });
}

const prometheusLog = () => readFileSync(join(dir, 'prometheus.log'), 'utf8').slice(-2000);

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

interface QueryReply {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: object; value: [number, string] }> };
}

async function query(promql: string): Promise<QueryReply> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  return (await res.json()) as QueryReply;
}

/** Data: a vector with at least one finite value (NaN alone would be an empty panel). */
const hasData = (reply: QueryReply) => reply.status === 'success' &&
  (reply.data?.result ?? []).some((r) => Number.isFinite(Number(r.value[1])));

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ledger-prometheus-'));
  primary = await startRedis();
  replica = await startReplica(primary);
  f = await metricsFixture({ metrics: { pollIntervalMs: 250 }, sweepHolds: true,
    replicaAcks: { required: 1, timeoutMs: 500 } }, primary.url);
  base = await f.app.listen({ port: 0, host: '127.0.0.1' });
  await startPrometheus(new URL(base).host);
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((ok) => prometheus?.once('exit', ok));
    prometheus.kill('SIGTERM');
    await Promise.race([exited, sleep(5000).then(() => prometheus?.kill('SIGKILL'))]);
  }
  await f?.close();
  await replica?.dispose();
  await primary?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * One of each outcome, over real HTTP; every third round also an unknown outcome. Holds: one
 * posted, one voided, one left open (10 minutes: the open-hold panels have data all along) and
 * one of 1 s, which the sweeper releases.
 */
async function trafficRound(round: number): Promise<void> {
  const authorization = bearer(SECRETS.test);
  const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST',
    headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify(body) });
  const get = (path: string) => fetch(`${base}${path}`, { headers: { authorization } });
  const id = (name: string) => `${name}-${round}`;
  await post('/accounts', { id: id('cash'), currency: 'USD', overdraftLimit: 'unlimited' });
  await post('/accounts', { id: id('alice'), currency: 'USD' });
  await post('/accounts', { id: id('euro'), currency: 'EUR' });
  const transfer = (t: string, from: string, to: string, amount: string) =>
    post('/transfers', { id: id(t), from: id(from), to: id(to), amount });
  await transfer('ok', 'cash', 'alice', '100');
  await transfer('ok', 'cash', 'alice', '100'); // replayed
  await transfer('ok', 'cash', 'alice', '5'); // conflict
  await transfer('nsf', 'alice', 'cash', '1000');
  await transfer('nf', 'alice', 'nobody', '1');
  await transfer('cur', 'alice', 'euro', '1');
  await transfer('ovf', 'cash', 'alice', AMOUNT_MAX_STRING);
  const hold = (h: string, timeoutSeconds: number) => post('/transfers', { id: id(h),
    from: id('alice'), to: id('cash'), amount: '10', pending: true, timeoutSeconds });
  for (const [h, timeoutSeconds] of [['open', 600], ['posted', 600], ['voided', 600],
    ['short', 1]] as const) {
    await hold(h, timeoutSeconds);
  }
  await post(`/transfers/${id('posted')}/post`, { id: id('post'), amount: '4' });
  await post(`/transfers/${id('voided')}/void`, { id: id('void') });
  await post(`/transfers/${id('ok')}/reversals`, { id: id('reversal'), amount: '1' });
  await get(`/transfers/${id('ok')}`);
  await get('/no/such/route');
  if (round % 3 === 0) {
    const ended = once(f.redis, 'end');
    f.redis.disconnect(); // Redis gone for a moment: an unknown outcome (503)
    await ended;
    await transfer('unknown', 'cash', 'alice', '1');
    await f.redis.connect();
  }
}

describe('a real Prometheus scraping the service', () => {
  test('target up; every dashboard query and every rule evaluates, with data', async () => {
    let stop = false;
    const traffic = (async () => {
      for (let round = 0; !stop; round++) {
        await trafficRound(round);
        await sleep(100);
      }
    })();
    try {
      let scrapeError = '';
      await until('the ledger target to be up', async () => {
        const targets = await (await fetch(`${promUrl}/api/v1/targets`)).json();
        const ledger = targets.data.activeTargets.find((t: { labels: { job: string } }) =>
          t.labels.job === 'ledger') as { health: string; lastError: string } | undefined;
        scrapeError = ledger?.lastError ?? 'no ledger target';
        return ledger?.health === 'up';
      }).catch((error) => { throw new Error(`${error.message}: ${scrapeError}`); });
      const queries = dashboardQueries(JSON.parse(readFileSync(DASHBOARD, 'utf8')));
      expect(queries.length).toBeGreaterThanOrEqual(20);
      let empty: string[] = [];
      await until('every dashboard query to return data', async () => {
        const replies = await Promise.all(queries.map(async (q) =>
          [q, await query(grafanaToPromQL(q.expr))] as const));
        empty = replies.filter(([, r]) => !hasData(r))
          .map(([q, r]) => `${q.panel}: ${q.expr} → ${JSON.stringify(r).slice(0, 200)}`);
        return empty.length === 0;
      }).catch((error) => { throw new Error(`${error.message}:\n${empty.join('\n')}`); });
      await expectHoldsSeen();
      await expectEveryRuleEvaluated();
    } finally {
      stop = true;
      await traffic;
    }
  });
});

/**
 * The holds panels show the traffic's holds, not only series at 0: holds open, and every
 * event counted, the sweeper's expiries and calls included.
 */
async function expectHoldsSeen(): Promise<void> {
  const seen = ['ledger_open_holds{currency="USD"} > 0',
    'ledger_open_hold_amount{currency="USD"} > 0',
    ...['opened', 'posted', 'voided', 'expired'].map((e) => `ledger_holds_total{event="${e}"} > 0`),
    'ledger_hold_sweep_calls_total > 0'];
  let missing: string[] = [];
  await until('every hold event and gauge above 0', async () => {
    const replies = await Promise.all(seen.map(async (q) => [q, await query(q)] as const));
    missing = replies.filter(([, r]) => !hasData(r)).map(([q]) => q);
    return missing.length === 0;
  }).catch((error) => { throw new Error(`${error.message}: ${missing.join(', ')}`); });
}

interface Rule { name: string; query: string; health: string; lastError?: string; type: string }

async function expectEveryRuleEvaluated(): Promise<void> {
  const shipped = parse(readFileSync(ALERTS_YML, 'utf8')) as
    { groups: Array<{ rules: unknown[] }> };
  const count = shipped.groups.reduce((n, g) => n + g.rules.length, 0);
  let rules: Rule[] = [];
  await until('every rule to be evaluated', async () => {
    const reply = await (await fetch(`${promUrl}/api/v1/rules`)).json();
    rules = reply.data.groups.flatMap((g: { rules: Rule[] }) => g.rules);
    return rules.length === count && rules.every((r) => r.health !== 'unknown');
  });
  for (const rule of rules) {
    expect(rule.health, `${rule.name}: ${rule.lastError}`).toBe('ok');
    const reply = await query(rule.query);
    expect(reply.status, `${rule.name}: ${reply.error}`).toBe('success');
    // Recording rules must produce series; alert conditions need only evaluate.
    if (rule.type === 'recording') expect(hasData(reply), rule.name).toBe(true);
  }
}

describe('promtool', () => {
  const promtool = (...args: string[]) =>
    execFileSync('promtool', args, { encoding: 'utf8', timeout: WAIT_MS });

  test('check config: the shipped prometheus.yml and the rule files it names', () => {
    // promtool stats the credentials file, and the shipped path is the container's; so: the
    // shipped file as it is for syntax, then in full with only that path aimed at a real file.
    expect(promtool('check', 'config', '--syntax-only', PROMETHEUS_YML)).toMatch(/SUCCESS/);
    const checked = join(dir, 'promtool-check.yml');
    writeFileSync(checked, stringify(shippedConfig(metricsKeyFile()).config));
    expect(promtool('check', 'config', checked)).toMatch(/SUCCESS/);
  });

  test('check rules: the shipped alerts.yml', () => {
    expect(promtool('check', 'rules', ALERTS_YML)).toMatch(/SUCCESS: 18 rules found/);
  });

  test('test rules: each alert fires on a sick instance and not on a healthy one', () => {
    expect(promtool('test', 'rules', repo('test/metrics/alerts.promtool.yml'))).toMatch(/SUCCESS/);
  });
});
