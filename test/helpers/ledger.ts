/**
 * Test fixtures: a ledger under a fresh ledger name (its own hash tag and keys) on the run's
 * real redis-server, the app around it, and a full dump of the ledger's keys.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import { type LedgerKeys, ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { PersistencePolicy } from '../../src/ledger/readiness.js';
import { createRedis } from '../../src/redis/client.js';

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
  persistence?: PersistencePolicy;
}

export async function fixture(options: FixtureOptions = {}): Promise<Fixture> {
  const redis = createRedis(options.url ?? inject('redisUrl'));
  redis.on('error', () => {});
  await redis.connect();
  const keys = ledgerKeys('test', options.ledgerName ?? uniqueLedgerName());
  const ledger = new Ledger({ redis, keys, now: options.now });
  await ledger.ensureScripts();
  const app = await buildApp({ ledger, redis, persistence: options.persistence });
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
    else value = `<${type}>`;
    out.push([name, type, value]);
  }
  return JSON.stringify(out);
}

export const json = { 'content-type': 'application/json' };

/** Serves the fixture's app on a free loopback port, for tests that need real HTTP. */
export async function listen(f: Fixture): Promise<string> {
  return f.app.listen({ port: 0, host: '127.0.0.1' });
}

export async function postJson(base: string, path: string, body: unknown) {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: json, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
