/**
 * Lifecycle faults on a Redis of this file's own (they would disturb the shared one):
 * the script cache vanishing (SCRIPT FLUSH, as after a restart) and a graceful close while a
 * transfer is in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/redis/embedded.js';
import { type Fixture, fixture, json, listen, postJson } from '../helpers/ledger.js';

let dir: string;
let redis: EmbeddedRedis;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ledger-lifecycle-'));
  redis = await startEmbeddedRedis({ dataDir: dir });
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function seeded(): Promise<Fixture> {
  const f = await fixture({ url: redis.url });
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0']]) {
    await f.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: od } });
  }
  return f;
}

test('NOSCRIPT after SCRIPT FLUSH: the transfer runs once, ' +
  'and readiness reloads the cache', async () => {
  const f = await seeded();
  await f.redis.script('FLUSH');
  const res = await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
    payload: { id: 'after-flush', from: 'cash', to: 'alice', amount: '3' } });
  expect(res.statusCode).toBe(201);
  expect((await f.app.inject({ method: 'GET', url: '/accounts/alice' })).json().balance).toBe('3');
  await f.redis.script('FLUSH');
  expect((await f.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  const shas = [...f.ledger.scripts.values()].map((s) => s.sha);
  expect(await f.redis.script('EXISTS', ...shas)).toEqual(shas.map(() => 1));
  await f.close();
});

test('graceful close: an in-flight transfer finishes and is answered ' +
  'before the app closes', async () => {
  const f = await seeded();
  const base = await listen(f);
  // Hold every write in Redis for a moment so that the request is in flight during close().
  const admin = f.redis.duplicate();
  await admin.connect();
  await admin.client('PAUSE', 700, 'WRITE');
  const inFlight = postJson(base, '/transfers',
    { id: 'in-flight', from: 'cash', to: 'alice', amount: '5' });
  await sleep(150);
  let closed = false;
  const closing = f.app.close().then(() => { closed = true; });
  const answer = await inFlight;
  expect(answer.status).toBe(201);
  await closing;
  expect(closed).toBe(true);
  // The ledger connection is still usable after the app closed: server.ts closes it next.
  expect(await f.ledger.getAccount('alice')).toMatchObject({ balance: '5' });
  admin.disconnect();
  f.redis.disconnect();
});
