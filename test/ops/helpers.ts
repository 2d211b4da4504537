/**
 * Fixtures for the operations tests: redis-servers of their own (AOF, a temporary directory, a
 * free port, never 6379), primary + replica pairs, an admin connection, and the app built on a
 * chosen primary and replicas, served over real HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import { limits } from '../../src/config/limits.js';
import { type LedgerKeys, ledgerKeys } from '../../src/ledger/keys.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { LedgerMetricsOptions } from '../../src/metrics/ledger-metrics.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { createRedis } from '../../src/redis/client.js';
import {
  type EmbeddedRedis, type EmbeddedRedisOptions, startEmbeddedRedis,
} from '../../src/redis/embedded.js';
import { AUTH_HEADER } from '../helpers/auth.js';
import { authenticateInjects, ledgerApp, uniqueLedgerName } from '../helpers/ledger.js';

/** Waits for replication and polls; generous for a shared 2-core machine. */
export const SYNC_TIMEOUT_MS = 20_000;
const POLL_MS = 25;

export interface TestRedis {
  server: EmbeddedRedis;
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Graceful stop, then a start on the same port and directory (its AOF). */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
  /** Stops it (if running) and removes its directory. */
  dispose(): Promise<void>;
}

type StartOptions = Omit<EmbeddedRedisOptions, 'dataDir' | 'port'>;

export async function startRedis(options: StartOptions = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-ops-'));
  let server = await startEmbeddedRedis({ ...options, dataDir: dir });
  if (server.port === 6379) throw new Error('tests must never use the shared Redis on 6379');
  let running = true;
  const t: TestRedis = {
    get server() { return server; },
    url: server.url,
    port: server.port,
    dir,
    async restart(downMs = 0) {
      await t.stop();
      await sleep(downMs);
      server = await startEmbeddedRedis({ ...options, dataDir: dir, port: t.port });
      running = true;
    },
    async stop() {
      if (running) await server.stop();
      running = false;
    },
    async dispose() {
      await t.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** For replicas and digests: no 5 s wait before a full sync, DEBUG allowed (loopback only). */
export const REPLICATION_ARGS = ['--repl-diskless-sync-delay', '0',
  '--enable-debug-command', 'local'];

export async function startReplica(primary: TestRedis, options: StartOptions = {}) {
  return startRedis({ ...options, extraArgs: [...REPLICATION_ARGS,
    '--replicaof', '127.0.0.1', String(primary.port), ...(options.extraArgs ?? [])] });
}

/** A plain connection for the test's own commands (never the service's). */
export async function admin(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1,
    connectTimeout: 2000, retryStrategy: (n) => Math.min(n * 50, 500) });
  redis.on('error', () => {});
  await redis.connect();
  return redis;
}

export async function info(redis: Redis, section: string): Promise<Map<string, string>> {
  return parseInfo(await redis.info(section));
}

export async function until(what: string, check: () => Promise<boolean>,
  timeoutMs = SYNC_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch { /* not yet: e.g. LOADING while a replica syncs */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

/** The replica has applied everything the primary has written so far (offsets equal). */
export async function caughtUp(primary: Redis, replica: Redis): Promise<void> {
  await until('the replica to catch up', async () => {
    const [p, r] = [await info(primary, 'replication'), await info(replica, 'replication')];
    return r.get('master_link_status') === 'up' &&
      p.get('master_repl_offset') === r.get('slave_repl_offset');
  });
}

/**
 * `cmdstat_<name>` calls that succeeded, from INFO commandstats (0 when never called). Failed
 * calls (an EVALSHA answered NOSCRIPT) are left out.
 */
export async function calls(redis: Redis, command: string): Promise<number> {
  const stat = (await info(redis, 'commandstats')).get(`cmdstat_${command}`) ?? '';
  const field = (name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(stat)?.[1] ?? 0);
  return field('calls') - field('failed_calls');
}

/** `errorstat_<PREFIX>` count from INFO errorstats (0 when never replied). */
export async function errorCount(redis: Redis, prefix: string): Promise<number> {
  const stat = (await info(redis, 'errorstats')).get(`errorstat_${prefix}`);
  return Number(/count=(\d+)/.exec(stat ?? '')?.[1] ?? 0);
}

export interface OpsApp {
  app: App;
  ledger: Ledger;
  redis: Redis;
  replicas: Redis[];
  /** The writes' own connection, with replica acks (else undefined: writes use `redis`). */
  writer: Redis | undefined;
  keys: LedgerKeys;
  /** Base URL of the app served over real HTTP. */
  base: string;
  close(): Promise<void>;
}

export interface OpsAppOptions {
  replicaUrls?: string[];
  /** Default: metrics on, with a poll interval long enough to stay out of the way. */
  metrics?: LedgerMetricsOptions | false;
  ledgerName?: string;
  /** Default `test`. */
  keyPrefix?: string;
  /** Wait for replica acks (src/redis/replica-acks.ts), writes on their own connection. */
  replicaAcks?: { required: number; timeoutMs: number };
}

export async function opsApp(primaryUrl: string, options: OpsAppOptions = {}): Promise<OpsApp> {
  const connect = async (url: string) => {
    const r = createRedis(url);
    r.on('error', () => {});
    await r.connect();
    return r;
  };
  const redis = await connect(primaryUrl);
  const replicas = await Promise.all((options.replicaUrls ?? []).map(connect));
  const writer = options.replicaAcks === undefined ? undefined : await connect(primaryUrl);
  const keys = ledgerKeys(options.keyPrefix ?? 'test', options.ledgerName ?? uniqueLedgerName());
  const { ledger, app } = await ledgerApp({ redis, keys, replicas, metrics: options.metrics,
    ...(writer === undefined ? {} : { writer, replicaAcks: options.replicaAcks }) });
  authenticateInjects(app);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app, ledger, redis, replicas, writer, keys, base,
    async close() {
      await app.close();
      for (const r of [redis, ...replicas, ...(writer === undefined ? [] : [writer])]) {
        r.disconnect();
      }
    },
  };
}

export interface Answer {
  status: number;
  code?: string;
  text: string;
  retryAfter: string | null;
  replayed: boolean;
  start: number;
  end: number;
}

/** One HTTP request with the test key; a connection failure is status 0. Never throws. */
export async function call(base: string, method: 'GET' | 'POST', path: string,
  body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const start = Date.now();
  try {
    const res = await fetch(`${base}${path}`, { method,
      headers: { ...AUTH_HEADER, ...(body === undefined ? {} : { 'content-type':
        'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      // Past the service's own request timeout: the service, not the test, answers 503.
      signal: AbortSignal.timeout(limits.HTTP_REQUEST_TIMEOUT_MS + 5000) });
    const text = await res.text();
    const code = res.headers.get('content-type')?.startsWith('application/problem+json')
      ? (JSON.parse(text) as { code: string }).code : undefined;
    return { status: res.status, code, text, retryAfter: res.headers.get('retry-after'),
      replayed: res.headers.get('idempotent-replayed') === 'true', start, end: Date.now() };
  } catch (error) {
    return { status: 0, text: String(error), retryAfter: null, replayed: false, start,
      end: Date.now() };
  }
}

/** Prometheus sample value from the app's /metrics (0 when the series is absent). */
export async function metric(app: App, name: string, labels: Record<string, string> = {}) {
  const res = await app.inject({ method: 'GET', url: '/metrics' });
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of res.body.split('\n')) {
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',');
    if (want.every((w) => have.includes(w))) return Number(match[3]);
  }
  return 0;
}
