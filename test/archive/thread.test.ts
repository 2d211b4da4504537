/**
 * The archiver on its own thread (src/archive/thread.ts), as the service runs it: it archives
 * a ledger's records, its events reach the service's observers as messages, a thread that
 * cannot start (Redis refused its connection) is started again and said so, and stop() ends
 * it. A real redis-server and PostgreSQL; the thread loads the service's own modules.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { ArchiverThread } from '../../src/archive/thread.js';
import { loadConfig } from '../../src/config/env.js';
import { freePort } from '../../src/redis/embedded.js';
import { fixture } from '../helpers/ledger.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

let db: TestPostgres;
beforeAll(async () => {
  db = await startTestPostgres();
}, 120_000);
afterAll(async () => {
  await db?.close();
});

async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

test('archives on its own thread; its events reach the observers; stop ends it', async () => {
  // The fixture's archiver never runs: the thread is the one archiving.
  const f = await fixture({ archive: { url: db.url, background: false } });
  const seen = { archived: 0, freed: 0, lag: 0, scripts: new Set<string>(), warnings: [] as
    string[] };
  const redisUrl = inject('redisUrl');
  // Archiving at once: this test's event loop, on a busy machine, may count as a busy service.
  const config = loadConfig({ REDIS_URL: redisUrl, LEDGER_ARCHIVE_URL: db.url,
    LEDGER_ARCHIVE_KEEP: '1', LEDGER_ARCHIVE_YIELD_S: '0', LEDGER_KEY_PREFIX: f.keys.prefix,
    LEDGER_NAME: f.keys.ledger });
  const thread = new ArchiverThread({ config, url: redisUrl,
    observer: { archived: (records) => { seen.archived += records; },
      freed: (records) => { seen.freed += records; }, lag: () => { seen.lag += 1; } },
    scripts: { scriptCompleted: (script) => seen.scripts.add(script) },
    warn: (message, error) => seen.warnings.push(`${message}: ${error}`) });
  const sql = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    await f.app.inject({ method: 'POST', url: '/accounts',
      payload: { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' } });
    await f.app.inject({ method: 'POST', url: '/accounts', payload: { id: 'a', currency: 'USD' } });
    for (let i = 0; i < 5; i++) {
      const res = await f.app.inject({ method: 'POST', url: '/transfers',
        payload: { id: `t${i}`, from: 'cash', to: 'a', amount: '7' } });
      expect(res.statusCode).toBe(201);
    }
    thread.start();
    await until('5 records archived and 4 freed', () => seen.archived === 5 && seen.freed === 4);
    const { rows } = await sql.query('SELECT count(*)::int AS n FROM ledger.transfers ' +
      'WHERE ledger = $1', [f.keys.ledger]);
    expect(rows[0]?.n).toBe(5);
    expect(seen.lag).toBeGreaterThan(0);
    expect([...seen.scripts]).toContain('archive');
    // A freed record still answers, from PostgreSQL.
    const res = await f.app.inject({ method: 'GET', url: '/transfers/t0' });
    expect([res.statusCode, res.json().amount]).toEqual([200, '7']);
    await thread.stop();
    // Stopped: a new transfer is not archived.
    await f.app.inject({ method: 'POST', url: '/transfers',
      payload: { id: 't9', from: 'cash', to: 'a', amount: '7' } });
    await sleep(500);
    expect(seen.archived).toBe(5);
    expect(seen.warnings).toEqual([]);
  } finally {
    await thread.stop();
    await sql.end();
    await f.close();
  }
}, 60_000);

/** Keeps this event loop busy (work, with a moment for timers every 50 ms) until `done()`. */
async function spin(done: () => boolean): Promise<void> {
  while (!done()) {
    const until = Date.now() + 50;
    while (Date.now() < until) { /* busy */ }
    await new Promise((ok) => setImmediate(ok));
  }
}

test('the service busy (its event loop): the thread waits, then archives once it is not',
  async () => {
    const f = await fixture({ archive: { url: db.url, background: false } });
    const seen = { archived: 0, lag: 0, yielded: 0 };
    const redisUrl = inject('redisUrl');
    const config = loadConfig({ REDIS_URL: redisUrl, LEDGER_ARCHIVE_URL: db.url,
      LEDGER_ARCHIVE_YIELD_S: '60', LEDGER_KEY_PREFIX: f.keys.prefix,
      LEDGER_NAME: f.keys.ledger });
    try {
      await f.app.inject({ method: 'POST', url: '/accounts',
        payload: { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' } });
      await f.app.inject({ method: 'POST', url: '/accounts',
        payload: { id: 'a', currency: 'USD' } });
      const res = await f.app.inject({ method: 'POST', url: '/transfers',
        payload: { id: 't0', from: 'cash', to: 'a', amount: '7' } });
      expect(res.statusCode).toBe(201);
      const thread = new ArchiverThread({ config, url: redisUrl,
        observer: { archived: (records) => { seen.archived += records; },
          lag: (records) => { if (records > 0) seen.lag += 1; },
          yielded: () => { seen.yielded += 1; } },
        warn: () => undefined });
      try {
        // Busy from before the thread starts until it has looked at the lag 3 times.
        let busy = true;
        const spinning = spin(() => !busy);
        const end = Date.now() + 300;
        while (Date.now() < end) { /* the thread's first sample: busy */ }
        thread.start();
        await until('the lag seen 3 times', () => seen.lag >= 3);
        busy = false;
        await spinning;
        expect(seen.archived).toBe(0);
        expect(seen.yielded).toBeGreaterThan(0);
        await until('archived once idle', () => seen.archived === 1);
      } finally {
        await thread.stop();
      }
    } finally {
      await f.close();
    }
  }, 60_000);

test('a thread that cannot start is started again, and says so; stop ends the retries',
  async () => {
    // Nothing listens there: the thread's connection fails, so does the thread.
    const url = `redis://127.0.0.1:${await freePort()}`;
    const warnings: string[] = [];
    const config = loadConfig({ REDIS_URL: url, LEDGER_ARCHIVE_URL: db.url });
    const thread = new ArchiverThread({ config, url, warn: (message) => warnings.push(message) });
    try {
      thread.start();
      await until('two failed starts', () => warnings.length >= 2);
      expect(warnings[0]).toMatch(/thread failed; it starts again/);
    } finally {
      await thread.stop();
    }
    const count = warnings.length;
    await sleep(1_500);
    expect(warnings.length).toBe(count);
  }, 60_000);
