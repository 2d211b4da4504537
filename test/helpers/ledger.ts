/**
 * Test fixtures: a ledger under a fresh ledger name (its own hash tag and keys) on the run's
 * real redis-server, the app around it, and a full dump of the ledger's keys.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { type App, type AppOptions, buildApp } from '../../src/app.js';
import type { ArchiveYield } from '../../src/archive/archiver.js';
import { ArchiveStore } from '../../src/archive/store.js';
import { type LedgerKeys, ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger, type LedgerOptions } from '../../src/ledger/ledger.js';
import {
  createLedgerMetrics, type LedgerMetricsOptions,
} from '../../src/metrics/ledger-metrics.js';
import type { PersistencePolicy } from '../../src/redis/readiness.js';
import type { AuthOptions } from '../../src/plugins/auth.js';
import { createRedis } from '../../src/redis/client.js';
import { AUTH_HEADER, SECRETS, TEST_KEYS } from './auth.js';

const SECRETS_TEST = SECRETS.test;

export interface Fixture {
  redis: Redis;
  keys: LedgerKeys;
  ledger: Ledger;
  app: App;
  close(): Promise<void>;
}

export function uniqueLedgerName(): string {
  return `t-${randomUUID().slice(0, 8)}`;
}

export interface FixtureOptions {
  url?: string;
  now?: () => number;
  /** Reuse a ledger (e.g. after a Redis restart); default: a fresh name. */
  ledgerName?: string;
  /**
   * The first part of every key; default `test`. All ledgers of one prefix share its index
   * (`<prefix>:ledgers`): a test that lists ledgers, or creates many, takes a prefix of its own.
   */
  keyPrefix?: string;
  persistence?: PersistencePolicy;
  /** Default: the test keys, authentication on (rate limit out of the way). */
  auth?: AuthOptions;
  /** Scripts of another release (default: this build's). */
  scripts?: Ledger['scripts'];
  metrics?: LedgerMetricsOptions | false;
  /** Single transfers arriving together share a script call (src/ledger/group-commit.ts). */
  groupCommit?: boolean;
  /** Run the hold sweeper, as the service does (off: the test releases holds itself). */
  sweepHolds?: boolean;
  /** Publish change data to this broker and exchange (src/cdc/). */
  cdc?: AppOptions['cdc'];
  /** Archive to this PostgreSQL (src/archive/), and read archived records from it. */
  archive?: { url: string; keepRecords?: number; background?: boolean; yieldTo?: ArchiveYield };
}

export interface LedgerAppOptions extends Omit<LedgerOptions, 'observer'>,
  Omit<AppOptions, 'ledger' | 'metrics' | 'auth'> {
  /** Default: metrics on, polling Redis every 60 s (out of the way), no process metrics. */
  metrics?: LedgerMetricsOptions | false;
  /** Default: the test keys, authentication on (rate limit out of the way). */
  auth?: AuthOptions;
}

/**
 * A ledger and the app around it, built as server.ts builds them: the metrics first, the ledger
 * with their observer, the app with both. Scripts are loaded; the app is not yet ready.
 */
export async function ledgerApp(options: LedgerAppOptions): Promise<{ ledger: Ledger; app: App }> {
  const { metrics: metricsOptions, auth, ...rest } = options;
  const metrics = metricsOptions === false ? false
    : createLedgerMetrics({ pollIntervalMs: 60_000, defaultMetrics: false, ...metricsOptions });
  const ledger = new Ledger({ ...rest,
    observer: metrics === false ? undefined : metrics.observer });
  await ledger.ensureScripts();
  const app = await buildApp({ ...rest, ledger, metrics,
    auth: auth ?? { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 1_000_000 } });
  return { ledger, app };
}

export async function fixture(options: FixtureOptions = {}): Promise<Fixture> {
  const redis = createRedis(options.url ?? inject('redisUrl'));
  redis.on('error', () => {});
  await redis.connect();
  // An archiver archives and frees every ledger its prefix lists (the default ledger of each
  // fixture is listed): with the shared prefix it would free other tests' records under them.
  const prefix = options.keyPrefix
    ?? (options.archive === undefined ? 'test' : `ta-${randomUUID().slice(0, 8)}`);
  const keys = ledgerKeys(prefix, options.ledgerName ?? uniqueLedgerName());
  const store = options.archive === undefined ? undefined
    : new ArchiveStore(options.archive.url);
  const { ledger, app } = await ledgerApp({ redis, keys, now: options.now,
    scripts: options.scripts, persistence: options.persistence, auth: options.auth,
    metrics: options.metrics, groupCommit: options.groupCommit,
    sweepHolds: options.sweepHolds, cdc: options.cdc,
    ...(store === undefined ? {} : { archive: { store,
      keepRecords: options.archive?.keepRecords ?? 0,
      background: options.archive?.background ?? true,
      ...(options.archive?.yieldTo === undefined ? {} : { yieldTo: options.archive.yieldTo }) },
    archiveReader: store }) });
  authenticateInjects(app);
  await app.ready();
  return {
    redis, keys, ledger, app,
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}

/** Every key of the ledger with its type and full content, sorted: equal dumps = no write. */
export async function dumpLedger(redis: Redis, keys: LedgerKeys): Promise<string> {
  const names: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.all(), 'COUNT', 1000);
    names.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const out: unknown[] = [];
  for (const name of names.sort()) {
    const type = await redis.type(name);
    let value: unknown;
    if (type === 'hash') value = await redis.hgetall(name);
    else if (type === 'stream') value = await redis.xrange(name, '-', '+');
    else if (type === 'string') value = await redis.get(name);
    else if (type === 'zset') value = await redis.zrange(name, 0, -1, 'WITHSCORES');
    else value = `<${type}>`;
    out.push([name, type, value]);
  }
  return JSON.stringify(out);
}

/**
 * A parsed dump with the record of the rejected transfer `id` taken out (its id-bucket field
 * and its rejections-stream entry): equal to the dump before means the rejection wrote only its
 * own record.
 */
export function withoutRejection(dump: string, keys: LedgerKeys, id: string): unknown[] {
  const out: unknown[] = [];
  for (const [name, type, value] of JSON.parse(dump) as Array<[string, string, unknown]>) {
    if (name === keys.transferBucket(id)) {
      const { [id]: _own, ...rest } = value as Record<string, string>;
      if (Object.keys(rest).length > 0) out.push([name, type, rest]);
    } else if (name === keys.rejections()) {
      const rest = (value as Array<[string, string[]]>).filter(([, fields]) => fields[1] !== id);
      if (rest.length > 0) out.push([name, type, rest]);
    } else {
      out.push([name, type, value]);
    }
  }
  return out;
}

export const json = { 'content-type': 'application/json' };

/**
 * Every test runs with authentication on: `inject` sends the all-scopes test key unless the
 * request sets its own `authorization` header (an empty one sends none).
 */
export function authenticateInjects(app: App): void {
  const inject = app.inject.bind(app) as (opts: unknown) => Promise<unknown>;
  (app as unknown as { inject: unknown }).inject = (opts: Record<string, unknown>) => {
    const headers = { ...AUTH_HEADER, ...(opts.headers as Record<string, string> | undefined) };
    if (headers.authorization === '') delete (headers as Record<string, string>).authorization;
    return inject({ ...opts, headers });
  };
}

/** GET over real HTTP with the test key. */
export function getJson(url: string, secret?: string) {
  return fetch(url, { headers: { authorization: `Bearer ${secret ?? SECRETS_TEST}` } });
}

/** Serves the fixture's app on a free loopback port, for tests that need real HTTP. */
export async function listen(f: Fixture): Promise<string> {
  return f.app.listen({ port: 0, host: '127.0.0.1' });
}

export async function postJson(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`,
    { method: 'POST', headers: { ...json, ...AUTH_HEADER }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
