/**
 * The PostgreSQL archive (src/archive/) against a real PostgreSQL (test/helpers/postgres.ts
 * starts its own): every decided record of every kind copied once, in order, with its entries,
 * the accounts' totals and a hash chain whose head Redis also keeps; a page copied twice adds
 * nothing; PostgreSQL stopped while transfers go on (they do; the lag and the errors show; the
 * archive catches up after the restart).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHAIN_START, chainHash } from '../../src/archive/chain.js';
import { ArchiveGapError, ArchiveMismatchError, ArchiveStore } from '../../src/archive/store.js';
import { limits } from '../../src/config/limits.js';
import { AUTH_HEADER } from '../helpers/auth.js';
import { type Fixture, fixture } from '../helpers/ledger.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

let db: TestPostgres;
let sql: pg.Pool;
beforeAll(async () => {
  db = await startTestPostgres();
  sql = new pg.Pool({ connectionString: db.url, max: 2 });
  sql.on('error', () => undefined);
}, 120_000);
afterAll(async () => {
  await sql?.end();
  await db?.close();
});

async function post(f: Fixture, url: string, payload: object, status?: number) {
  const res = await f.app.inject({ method: 'POST', url, payload });
  if (status !== undefined) expect(res.statusCode, `${url}: ${res.body}`).toBe(status);
  return res.json() as Record<string, string>;
}

async function metric(f: Fixture, name: string, label = ''): Promise<number> {
  const res = await f.app.inject({ method: 'GET', url: '/metrics', headers: AUTH_HEADER });
  const line = res.body.split('\n').find((l) => l.startsWith(`${name}${label} `)
    || (label === '' && l.startsWith(`${name}{`)));
  return line === undefined ? NaN : Number(line.split(' ').at(-1));
}

/** Waits until PostgreSQL's position for the ledger reaches the journal's and rejections' heads. */
async function archived(f: Fixture, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const head = await f.ledger.journalHead();
    const top = await f.redis.xrevrange(f.keys.rejections(), '+', '-', 'COUNT', 1);
    const rejections = top[0]?.[0].slice(2) ?? '0';
    const { rows } = await sql.query('SELECT seq::text, rejection::text FROM ledger.positions ' +
      'WHERE ledger = $1', [f.keys.ledger]).catch(() => ({ rows: [] as never[] }));
    const at = rows[0] as { seq: string; rejection: string } | undefined;
    if (at?.seq === head && at.rejection === rejections) return;
    if (Date.now() > deadline) {
      throw new Error(`not archived: ${JSON.stringify(at)} vs ${head}/${rejections}`);
    }
    await sleep(50);
  }
}

/** Metadata with what COPY's text format escapes (a tab, newline, return, backslash). */
const AWKWARD = { order: 'o-1', note: 'a\tb\nc\rd\\e "f" \u00e9 \\N' };

/** A ledger with every kind of record: transfers, a rejection, holds posted and voided, a
 * reversal. */
async function history(f: Fixture): Promise<void> {
  await post(f, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' }, 201);
  for (const id of ['alice', 'bob']) await post(f, '/accounts', { id, currency: 'USD' }, 201);
  await post(f, '/transfers', { id: 't1', from: 'cash', to: 'alice', amount: '1000' }, 201);
  await post(f, '/transfers', { id: 't2', from: 'alice', to: 'bob', amount: '300',
    metadata: AWKWARD }, 201);
  await post(f, '/transfers', { id: 'r1', from: 'bob', to: 'alice', amount: '99999',
    metadata: AWKWARD }, 422);
  await post(f, '/transfers', { id: 'h1', from: 'alice', to: 'bob', amount: '200',
    pending: true, timeoutSeconds: 3600 }, 201);
  await post(f, '/transfers/h1/post', { id: 'p1', amount: '150' }, 201);
  await post(f, '/transfers', { id: 'h2', from: 'alice', to: 'bob', amount: '50',
    pending: true }, 201);
  await post(f, '/transfers/h2/void', { id: 'v1' }, 201);
  await post(f, '/transfers/t2/reversals', { id: 'x1', amount: '100' }, 201);
  await post(f, '/transfers/t2/reversals', { id: 'r2', amount: '1000' }, 422);
}

describe('archive', () => {
  test('copies every decided record once, in order, with entries, totals and the chain',
    async () => {
      const f = await fixture({ archive: { url: db.url, keepRecords: 1_000_000 } });
      try {
        await history(f);
        await archived(f);
        const ledger = f.keys.ledger;
        const { rows: transfers } = await sql.query(
          'SELECT seq::text, id, kind, amount::text, record, hash FROM ledger.transfers x ' +
          'WHERE ledger = $1 ORDER BY x.seq', [ledger]);
        const journal = await f.redis.xrange(f.keys.journal(), '-', '+');
        expect(transfers.map((r) => r.seq)).toEqual(journal.map(([id]) => id.slice(2)));
        // The record is Redis's, field for field.
        expect(transfers.map((r) => JSON.parse(r.record as string)))
          .toEqual(journal.map(([, fields]) => fields));
        expect(transfers.map((r) => `${r.id}:${r.kind}:${r.amount}`)).toEqual(['t1:transfer:1000',
          't2:transfer:300', 'h1:hold:200', 'p1:post:150', 'h2:hold:50', 'v1:void:50',
          'x1:reversal:100']);
        // The typed columns too: metadata and times as the record has them.
        const { rows: typed } = await sql.query('SELECT id, metadata, (extract(epoch FROM ' +
          'created_at) * 1000)::bigint::text AS ms FROM ledger.transfers WHERE ledger = $1 ' +
          "UNION ALL SELECT id, metadata, (extract(epoch FROM created_at) * 1000)::bigint::text " +
          "FROM ledger.rejections WHERE ledger = $1 AND id = 'r1'", [ledger]);
        for (const row of typed) {
          const res = await f.app.inject({ method: 'GET', url: `/transfers/${row.id}` });
          const stored = res.json() as { metadata: unknown; createdAt: string };
          expect([row.id, row.metadata, row.ms]).toEqual([row.id, stored.metadata,
            String(Date.parse(stored.createdAt))]);
        }
        expect(typed.filter((r) => r.id === 't2' || r.id === 'r1').map((r) => r.metadata))
          .toEqual([AWKWARD, AWKWARD]);
        const { rows: rejections } = await sql.query('SELECT n::text, id, reason, record, hash ' +
          'FROM ledger.rejections x WHERE ledger = $1 ORDER BY x.n', [ledger]);
        expect(rejections.map((r) => `${r.id}:${r.reason}`))
          .toEqual(['r1:INSUFFICIENT_FUNDS', 'r2:EXCEEDS_REVERSIBLE_AMOUNT']);

        // The chains, recomputed; their heads are PostgreSQL's position and Redis's note of it.
        let hash = CHAIN_START;
        for (const r of transfers) {
          hash = chainHash(hash, ledger, 'journal', r.seq as string, r.record as string);
          expect((r.hash as Buffer).toString('hex')).toBe(hash);
        }
        const positions = await f.redis.hgetall(f.keys.positions());
        expect(positions['archive']).toBe(transfers.at(-1)?.seq);
        expect(positions['archive:hj']).toBe(hash);
        let rhash = CHAIN_START;
        for (const r of rejections) {
          rhash = chainHash(rhash, ledger, 'rejections', r.n as string, r.record as string);
        }
        expect(positions['archive:hr']).toBe(rhash);
        expect(positions['archive:r']).toBe('2');

        // Entries: two per transfer, post and reversal, none for holds and voids; each
        // account's archived totals are Redis's.
        const { rows: entries } = await sql.query('SELECT account, seq::text, amount::text, ' +
          'balance_after::text FROM ledger.entries x WHERE ledger = $1 ORDER BY x.seq, account',
        [ledger]);
        expect(entries.map((e) => `${e.seq}:${e.account}:${e.amount}:${e.balance_after}`))
          .toEqual(['1:alice:1000:1000', '1:cash:-1000:-1000', '2:alice:-300:700',
            '2:bob:300:300', '4:alice:-150:550', '4:bob:150:450', '7:alice:100:650',
            '7:bob:-100:350']);
        const { rows: totals } = await sql.query('SELECT account, debits::text, credits::text ' +
          'FROM ledger.accounts WHERE ledger = $1 ORDER BY account', [ledger]);
        for (const t of totals) {
          const res = await f.app.inject({ method: 'GET', url: `/accounts/${t.account}` });
          const account = res.json() as { debits: string; credits: string };
          expect([t.account, t.debits, t.credits])
            .toEqual([t.account, account.debits, account.credits]);
        }
        expect(totals.length).toBe(3);
        expect(await metric(f, 'ledger_archive_records_total', '{stream="journal"}')).toBe(7);
        expect(await metric(f, 'ledger_archive_lag_records')).toBe(0);
      } finally {
        await f.close();
      }
    }, 60_000);

  test('an archive ahead of Redis (Redis lost records, or another Redis) stops it as a ' +
    'mismatch, noting and freeing nothing', async () => {
    const ledgerName = `ahead-${Date.now().toString(36)}`;
    const first = await fixture({ archive: { url: db.url, keepRecords: 1_000_000 }, ledgerName });
    try {
      await history(first);
      await archived(first);
    } finally {
      await first.close();
    }
    // The same ledger on a Redis with less of it: its own key prefix, one transfer.
    const f = await fixture({ archive: { url: db.url, keepRecords: 0 }, ledgerName });
    try {
      await post(f, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' },
        201);
      await post(f, '/accounts', { id: 'bob', currency: 'USD' }, 201);
      await post(f, '/transfers', { id: 'only', from: 'cash', to: 'bob', amount: '5' }, 201);
      const deadline = Date.now() + 10_000;
      while (!(await metric(f, 'ledger_archive_errors_total', '{reason="mismatch"}') > 0)) {
        if (Date.now() > deadline) throw new Error('no mismatch counted within 10 s');
        await sleep(50);
      }
      expect(await f.redis.hgetall(f.keys.positions())).toEqual({});
      expect(await f.redis.xlen(f.keys.journal())).toBe(1);
    } finally {
      await f.close();
    }
  }, 60_000);

  test('a page read in several chunks while transfers go on: its heads are the newest',
    async () => {
    // A page is read JOURNAL_READ_CHUNK_MAX records at a time; transfers decided between two
    // chunks are in the later one, past the first chunk's head. Taken for the page's head,
    // that head made the archive look ahead of Redis (a false mismatch, seen in the bench).
    const f = await fixture({ archive: { url: db.url, keepRecords: 1_000_000,
      background: false } });
    try {
      await post(f, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' },
        201);
      await post(f, '/accounts', { id: 'bob', currency: 'USD' }, 201);
      const batch = (from: number, n: number) => post(f, '/transfers/batch', { atomic: false,
        transfers: Array.from({ length: n }, (_, i) => ({ id: `c${from + i}`, from: 'cash',
          to: 'bob', amount: '1' })) }, 200);
      await batch(0, limits.JOURNAL_READ_CHUNK_MAX + 10);
      const read = f.ledger.archiveRead.bind(f.ledger);
      let chunks = 0;
      f.ledger.archiveRead = async (...args) => {
        const chunk = await read(...args);
        chunks += 1;
        if (chunks === 1) await batch(1000, 20); // between the first chunk and the second
        return chunk;
      };
      expect(await f.app.archiver?.archiveOnce()).toBe(limits.JOURNAL_READ_CHUNK_MAX + 30);
      expect(chunks).toBeGreaterThan(1);
      expect(await metric(f, 'ledger_archive_errors_total', '{reason="mismatch"}')).toBe(0);
      expect(await f.redis.hget(f.keys.positions(), 'archive')).toBe(
        String(limits.JOURNAL_READ_CHUNK_MAX + 30));
    } finally {
      await f.close();
    }
  }, 60_000);

  test('a busy service: the archiver waits until the lag reaches LEDGER_ARCHIVE_YIELD_S',
    async () => {
    let now = Date.parse('2026-12-07T00:00:00Z');
    let busy = true;
    const f = await fixture({ now: () => now, archive: { url: db.url, keepRecords: 1_000_000,
      background: false, yieldTo: { busy: () => busy, lagS: 2 } } });
    const position = async () => (await sql.query('SELECT seq::text FROM ledger.positions ' +
      'WHERE ledger = $1', [f.keys.ledger])).rows[0]?.seq as string | undefined;
    try {
      await history(f);
      const head = await f.ledger.journalHead();
      // Busy, the oldest record 1.9 s old: nothing copied, and the lag still shows.
      now += 1_900;
      expect(await f.app.archiver?.archiveOnce()).toBe(0);
      expect(await position()).toBeUndefined();
      expect(await metric(f, 'ledger_archive_lag_records')).toBe(Number(head) + 2);
      expect(await metric(f, 'ledger_archive_lag_seconds')).toBeCloseTo(1.9, 5);
      expect(await metric(f, 'ledger_archive_yields_total')).toBe(1);
      // 2 s old: it copies (busy or not, a lag that long is worked off).
      now += 100;
      expect(await f.app.archiver?.archiveOnce()).toBe(Number(head) + 2);
      expect(await position()).toBe(head);
      expect(await metric(f, 'ledger_archive_yields_total')).toBe(1);
      // Not busy: what is new is copied at once.
      await post(f, '/transfers', { id: 'n1', from: 'cash', to: 'bob', amount: '1' }, 201);
      expect(await f.app.archiver?.archiveOnce()).toBe(0);
      busy = false;
      expect(await f.app.archiver?.archiveOnce()).toBe(1);
      expect(await metric(f, 'ledger_archive_lag_records')).toBe(0);
      // Busy with nothing to copy: not a wait.
      busy = true;
      expect(await f.app.archiver?.archiveOnce()).toBe(0);
      expect(await metric(f, 'ledger_archive_yields_total')).toBe(2);
    } finally {
      await f.close();
    }
  }, 60_000);

  test('a page copied again adds nothing; Redis behind PostgreSQL catches up to it',
    async () => {
      const f = await fixture({ archive: { url: db.url, keepRecords: 1_000_000 } });
      try {
        await history(f);
        await archived(f);
        const count = async () => (await sql.query('SELECT (SELECT count(*) FROM ' +
          'ledger.transfers WHERE ledger = $1) + (SELECT count(*) FROM ledger.rejections ' +
          'WHERE ledger = $1) + (SELECT count(*) FROM ledger.entries WHERE ledger = $1) AS n',
        [f.keys.ledger])).rows[0]?.n as string;
        const before = await count();
        // A crash between PostgreSQL's commit and Redis's note: the same page again.
        const store = new ArchiveStore(db.url);
        const journal = await f.redis.xrange(f.keys.journal(), '-', '+');
        const ids = await f.redis.hgetall(f.keys.accountIds());
        const page = journal.map(([id, fields]) => ({ seq: id.slice(2), fields,
          fromId: ids[fields[3] as string] as string, toId: ids[fields[5] as string] as string }));
        const at = await store.append(f.keys.ledger, page, []);
        await store.close();
        expect(at.seq).toBe(journal.at(-1)?.[0].slice(2));
        expect(await count()).toBe(before);
        // Redis's note rolled back (as if the save never happened): the next pass restores it.
        await f.redis.hset(f.keys.positions(), 'archive', '3');
        await post(f, '/transfers', { id: 't3', from: 'cash', to: 'bob', amount: '5' }, 201);
        await archived(f);
        await sleep(300);
        expect(await f.redis.hget(f.keys.positions(), 'archive')).toBe(
          await f.ledger.journalHead());
        expect(Number(await count())).toBe(Number(before) + 3);
      } finally {
        await f.close();
      }
    }, 60_000);

  test('a page whose balances or seqs do not follow on is refused whole, by name',
    async () => {
      // Rows go to COPY in batches as they are built: a check failing midway fails the COPY,
      // and the transaction with it (nothing of the page stays), with the check's own error.
      const f = await fixture({ archive: { url: db.url, keepRecords: 1_000_000,
        background: false } });
      const store = new ArchiveStore(db.url, { max: 1 });
      try {
        await post(f, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' },
          201);
        await post(f, '/accounts', { id: 'bob', currency: 'USD' }, 201);
        await post(f, '/transfers/batch', { atomic: false, transfers: Array.from({ length: 600 },
          (_, i) => ({ id: `b${i}`, from: 'cash', to: 'bob', amount: '1' })) }, 200);
        const ids = await f.redis.hgetall(f.keys.accountIds());
        const page = (await f.redis.xrange(f.keys.journal(), '-', '+')).map(([sid, fields]) =>
          ({ seq: sid.slice(2), fields, fromId: ids[fields[3] as string] as string,
            toId: ids[fields[5] as string] as string }));
        const at = page.findIndex((r) => r.seq === '500');
        const edited = page.map((r, i) => (i !== at ? r : { ...r,
          fields: r.fields.map((v, j) => (r.fields[j - 1] === 'tb' ? '7' : v)) }));
        await expect(store.append(f.keys.ledger, edited, [])).rejects
          .toThrow(ArchiveMismatchError);
        await expect(store.append(f.keys.ledger, page.filter((_, i) => i !== at), [])).rejects
          .toThrow(ArchiveGapError);
        const { rows } = await sql.query('SELECT (SELECT count(*) FROM ledger.transfers WHERE ' +
          'ledger = $1)::int AS t, (SELECT count(*) FROM ledger.entries WHERE ledger = $1)::int ' +
          'AS e', [f.keys.ledger]);
        expect(rows[0]).toEqual({ t: 0, e: 0 });
        // The same connection goes on: the whole page, as it is, is taken.
        expect((await store.append(f.keys.ledger, page, [])).copied).toEqual([600, 0]);
      } finally {
        await store.close();
        await f.close();
      }
    }, 60_000);

  test('PostgreSQL stopped: transfers go on, the lag and errors show, then it catches up',
    async () => {
      const f = await fixture({ archive: { url: db.url, keepRecords: 1_000_000 } });
      try {
        await history(f);
        await archived(f);
        await db.kill9();
        for (let i = 0; i < 20; i++) {
          await post(f, '/transfers', { id: `d${i}`, from: 'cash', to: 'bob', amount: '1' }, 201);
        }
        await sleep(1500);
        expect(await metric(f, 'ledger_archive_lag_records')).toBe(20);
        expect(await metric(f, 'ledger_archive_lag_seconds')).toBeGreaterThan(0.5);
        expect(await metric(f, 'ledger_archive_errors_total', '{reason="postgres"}'))
          .toBeGreaterThan(0);
        await db.start();
        await archived(f, 30_000);
        const { rows } = await sql.query('SELECT count(*)::int AS n FROM ledger.transfers ' +
          'WHERE ledger = $1', [f.keys.ledger]);
        expect(rows[0]?.n).toBe(27);
        await sleep(300);
        expect(await metric(f, 'ledger_archive_lag_records')).toBe(0);
      } finally {
        await f.close();
      }
    }, 90_000);
});
