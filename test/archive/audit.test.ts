/**
 * The audit (src/archive/audit.ts, `npm run audit`) against the run's real Redis and a real
 * PostgreSQL (test/helpers/postgres.ts): a history of every kind, archived, passes, also with
 * its records freed from Redis (by the archiver, or by freeRecords below, which frees as
 * lua/archive-7.lua does) and with Redis alone; each kind of tampering is reported by name.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { audit, AUDIT_NEEDS, type AuditResult, runAudit } from '../../src/archive/audit.js';
import { CHAIN_START, chainHash } from '../../src/archive/chain.js';
import { compactId } from '../../src/ledger/keys.js';
import { type Fixture, fixture, uniqueLedgerName } from '../helpers/ledger.js';
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

/** Keeps every archived record in Redis too: the tests free them themselves. */
const KEEP_ALL = 1_000_000;

async function post(f: Fixture, url: string, payload: object, status: number): Promise<void> {
  const res = await f.app.inject({ method: 'POST', url, payload });
  expect(res.statusCode, `${url}: ${res.body}`).toBe(status);
}

const UUID_LOWER = randomUUID();
const UUID_UPPER = randomUUID().toUpperCase();

/**
 * Every kind of record: transfers (two with UUID ids, whose archived index entries are
 * compact), rejections, holds posted and voided, a reversal, and a hold left open (it stays
 * in Redis when the records around it are freed). Seqs: 1 t1, 2 t2, 3 h1, 4 p1, 5 h2, 6 v1,
 * 7 x1, 8 uuid, 9 UUID, 10 h3 (open).
 */
async function history(f: Fixture): Promise<void> {
  await post(f, '/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' }, 201);
  for (const id of ['alice', 'bob']) await post(f, '/accounts', { id, currency: 'USD' }, 201);
  await post(f, '/transfers', { id: 't1', from: 'cash', to: 'alice', amount: '1000' }, 201);
  await post(f, '/transfers', { id: 't2', from: 'alice', to: 'bob', amount: '300',
    metadata: { order: 'o-1' } }, 201);
  await post(f, '/transfers', { id: 'r1', from: 'bob', to: 'alice', amount: '99999' }, 422);
  await post(f, '/transfers', { id: 'h1', from: 'alice', to: 'bob', amount: '200',
    pending: true, timeoutSeconds: 3600 }, 201);
  await post(f, '/transfers/h1/post', { id: 'p1', amount: '150' }, 201);
  await post(f, '/transfers', { id: 'h2', from: 'alice', to: 'bob', amount: '50',
    pending: true }, 201);
  await post(f, '/transfers/h2/void', { id: 'v1' }, 201);
  await post(f, '/transfers/t2/reversals', { id: 'x1', amount: '100' }, 201);
  await post(f, '/transfers/t2/reversals', { id: 'r2', amount: '1000' }, 422);
  await post(f, '/transfers', { id: UUID_LOWER, from: 'cash', to: 'bob', amount: '7' }, 201);
  await post(f, '/transfers', { id: UUID_UPPER, from: 'bob', to: 'alice', amount: '2' }, 201);
  await post(f, '/transfers', { id: 'h3', from: 'alice', to: 'cash', amount: '5',
    pending: true }, 201);
}

/** Waits until PostgreSQL has both streams up to their heads and Redis has noted it. */
async function archived(f: Fixture): Promise<{ seq: string; rejection: string }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const info = async (key: string) => {
      const reply = await f.redis.xinfo('STREAM', key) as unknown[];
      return String(reply[reply.indexOf('last-generated-id') + 1]).slice(2);
    };
    const head = await info(f.keys.journal());
    const rejections = await info(f.keys.rejections());
    const [seq, rejection] = await f.redis.hmget(f.keys.positions(), 'archive', 'archive:r');
    if (seq === head && rejection === rejections) return { seq, rejection };
    if (Date.now() > deadline) throw new Error(`not archived: ${seq}/${rejection}`);
    await sleep(50);
  }
}

/**
 * Frees archived records as the archiver does (lua/archive-7.lua): each stream entry up to
 * `upTo` deleted, and its id's index entry turned into the archived form (compactId, or the id
 * itself, -> ''); an open hold stays.
 */
async function freeRecords(f: Fixture, upTo: { seq: string; rejection: string }):
  Promise<number> {
  let freed = 0;
  const streams: [string, string, string][] = [[f.keys.journal(), upTo.seq, ''],
    [f.keys.rejections(), upTo.rejection, '-']];
  for (const [key, last, sign] of streams) {
    for (const [id, fields] of await f.redis.xrange(key, '-', `0-${last}`)) {
      const seq = id.slice(2);
      const at = fields.findIndex((name, i) => i % 2 === 0 && name === 'x');
      const kind = at < 0 ? '' : fields[at + 1];
      if (sign === '' && kind === 'h' && !(await f.redis.hget(f.keys.state(), seq))) continue;
      const transferId = fields[1] as string;
      const bucket = f.keys.transferBucket(transferId);
      expect(await f.redis.hget(bucket, transferId)).toBe(`${sign}${seq}`);
      await f.redis.xdel(key, id);
      await f.redis.hdel(bucket, transferId);
      await f.redis.hset(bucket, compactId(transferId) ?? transferId, '');
      freed++;
    }
  }
  return freed;
}

function auditOf(f: Fixture, archive = true): Promise<AuditResult> {
  return audit({ redis: f.redis, prefix: f.keys.prefix, defaultLedger: f.keys.ledger,
    ledgers: [f.keys.ledger], archiveUrl: archive ? db.url : undefined });
}

/** An archived ledger with every record freed from Redis but the open hold (seq 10). */
async function archivedLedger(): Promise<Fixture> {
  const f = await fixture({ archive: { url: db.url, keepRecords: KEEP_ALL } });
  await history(f);
  expect(await freeRecords(f, await archived(f))).toBe(11);
  expect(await f.redis.xlen(f.keys.journal())).toBe(1);
  return f;
}

describe('audit', () => {
  test('an archived history of every kind holds; Redis alone holds too', async () => {
    const f = await fixture({ archive: { url: db.url, keepRecords: KEEP_ALL } });
    try {
      await history(f);
      await archived(f);
      // Every record in both places: each compared with its archived copy.
      const both = await auditOf(f);
      expect(both.divergences).toEqual([]);
      expect([both.records, both.rejections, both.unchecked]).toEqual([10, 2, []]);
      const redisOnly = await auditOf(f, false);
      expect(redisOnly.divergences).toEqual([]);
      expect(redisOnly.records).toBe(10);
    } finally {
      await f.close();
    }
    const never = await fixture();
    try {
      await history(never);
      expect(await never.redis.hget(never.keys.positions(), 'archive')).toBeNull();
      const result = await auditOf(never, false);
      expect([result.divergences, result.records, result.unchecked]).toEqual([[], 10, []]);
      // A tampered balance in a ledger never archived: Redis's records still show it.
      await never.redis.hset(never.keys.account('bob'), 'dr', '1');
      const tampered = await auditOf(never, false);
      expect(tampered.divergences).toContain(`ledger ${never.keys.ledger}: account bob: ` +
        'debits 1 in Redis, 102 from its records (to seq 10)');
    } finally {
      await never.close();
    }
  });

  test('freed records (by the archiver, and part by hand) hold, with records after them',
    async () => {
      // The archiver frees everything it may (it keeps the newest record and the open hold).
      const byArchiver = await fixture({ archive: { url: db.url, keepRecords: 1 } });
      try {
        await history(byArchiver);
        await archived(byArchiver);
        const deadline = Date.now() + 10_000;
        while (await byArchiver.redis.xlen(byArchiver.keys.journal()) > 1) {
          if (Date.now() > deadline) throw new Error('the archiver freed nothing');
          await sleep(50);
        }
        expect(await auditOf(byArchiver)).toMatchObject({ divergences: [], records: 10,
          rejections: 2, unchecked: [] });
        // Without the archive, the freed records cannot be read: not passed, not failed.
        const alone = await auditOf(byArchiver, false);
        expect(alone.divergences).toEqual([]);
        expect(alone.unchecked).toEqual([expect.stringMatching(
          /^ledger t-[0-9a-f]+: \d+ records archived and freed .* needs LEDGER_ARCHIVE_URL/)]);
      } finally {
        await byArchiver.close();
      }

      // Freed up to seq 6 and rejection 1 by hand: seqs 7-10 and rejection 2 in both places;
      // then, the archiver stopped, records after the archive in Redis only.
      const f = await fixture({ archive: { url: db.url, keepRecords: KEEP_ALL } });
      await history(f);
      await archived(f);
      await f.close();
      const later = await fixture({ ledgerName: f.keys.ledger, keyPrefix: f.keys.prefix });
      try {
        expect(await freeRecords(later, { seq: '6', rejection: '1' })).toBe(7);
        await post(later, '/transfers', { id: 'late-1', from: 'cash', to: 'bob', amount: '11' },
          201);
        await post(later, '/transfers', { id: 'late-2', from: 'bob', to: 'alice',
          amount: '99999' }, 422);
        expect(await later.redis.xlen(later.keys.journal())).toBe(5);
        const result = await auditOf(later);
        expect(result).toMatchObject({ divergences: [], records: 11, rejections: 3,
          unchecked: [] });
      } finally {
        await later.close();
      }
    });

  test('beside a live service: a transfer after each read of a stream\'s head, no divergence',
    async () => {
      // Each write lands right after the audit reads a stream's newest number (XINFO), before
      // its next command: an account read after it may be past that number, which only a head
      // read after the accounts bounds.
      const f = await archivedLedger();
      try {
        let n = 0;
        const live = new Proxy(f.redis, {
          get(target, name) {
            const value: unknown = Reflect.get(target, name, target);
            if (name !== 'xinfo') {
              return typeof value === 'function' ? value.bind(target) : value;
            }
            return async (...args: Parameters<typeof target.xinfo>) => {
              const reply = await target.xinfo(...args);
              n += 1;
              await post(f, '/transfers', { id: `live-${n}`, from: 'cash', to: 'alice',
                amount: '1' }, 201);
              return reply;
            };
          },
        });
        const result = await audit({ redis: live, prefix: f.keys.prefix,
          defaultLedger: f.keys.ledger, ledgers: [f.keys.ledger], archiveUrl: db.url });
        expect(n, 'transfers written during the audit').toBeGreaterThan(0);
        expect(result.divergences).toEqual([]);
      } finally {
        await f.close();
      }
    });

  describe('tampering, each reported by name', () => {
    let f: Fixture;
    let line: (text: string) => string;
    const prepare = async () => {
      f = await archivedLedger();
      line = (text) => `ledger ${f.keys.ledger}: ${text}`;
      expect((await auditOf(f)).divergences).toEqual([]);
    };
    const finish = async () => {
      await f?.close();
    };

    test('an archived amount changed, column and record alike', async () => {
      await prepare();
      try {
        const ledger = f.keys.ledger;
        await sql.query(`UPDATE ledger.transfers SET amount = 301,
          record = replace(record, '"a","300"', '"a","301"') WHERE ledger = $1 AND seq = 2`,
        [ledger]);
        const { divergences } = await auditOf(f);
        expect(divergences).toContain(line('seq 2: the entry of account alice: ' +
          'ledger.entries.amount is -300, its transfer\'s row says -301'));
        expect(divergences).toContain(line('seq 2: the entry of account bob: ' +
          'ledger.entries.amount is 300, its transfer\'s row says 301'));
        expect(divergences).toContainEqual(expect.stringMatching(
          new RegExp(`^ledger ${ledger}: seq 2: hash [0-9a-f]{64} in ledger.transfers, ` +
            '[0-9a-f]{64} from the row before and its record$')));
        // Its balances after no longer follow from the amount.
        expect(divergences).toContain(line('seq 2: fb (account alice\'s balance after) is ' +
          '700, the entry before leaves 1000 and this one debits 301: 699'));
      } finally {
        await finish();
      }
    });

    test('a column changed, its record left alone', async () => {
      await prepare();
      try {
        await sql.query('UPDATE ledger.transfers SET amount = 301 WHERE ledger = $1 AND seq = 2',
          [f.keys.ledger]);
        // (its entries, which the column no longer matches, say so too)
        expect((await auditOf(f)).divergences).toEqual([
          line('seq 2: ledger.transfers.amount is 301, its record says 300'),
          line('seq 2: the entry of account alice: ledger.entries.amount is -300, its ' +
            'transfer\'s row says -301'),
          line('seq 2: the entry of account bob: ledger.entries.amount is 300, its ' +
            'transfer\'s row says 301')]);
      } finally {
        await finish();
      }
    });

    test('an entry deleted', async () => {
      await prepare();
      try {
        await sql.query("DELETE FROM ledger.entries WHERE ledger = $1 AND seq = 4 " +
          "AND account = 'bob'", [f.keys.ledger]);
        const { divergences } = await auditOf(f);
        expect(divergences).toEqual(expect.arrayContaining([
          line('seq 4: no entry of account bob (its credit) in ledger.entries'),
          line('account bob: the entry at seq 7: credits_after is 450, the entry before ' +
            'leaves 300 and this one credits 0: 300'),
          line('account bob: ledger.accounts.credits is 457, its entries in ledger.entries ' +
            'make 307'),
          expect.stringMatching(new RegExp(`^ledger ${f.keys.ledger}: account bob: credits ` +
            '457 in Redis, 307 from its archived entries up to seq \\d+ and its records after')),
        ]));
      } finally {
        await finish();
      }
    });

    test('an archived row deleted', async () => {
      await prepare();
      try {
        await sql.query('DELETE FROM ledger.transfers WHERE ledger = $1 AND seq = 3',
          [f.keys.ledger]);
        expect((await auditOf(f)).divergences).toEqual([
          line('seq 3: in neither Redis\'s journal nor PostgreSQL'),
          line('seq 3: missing from ledger.transfers, which holds rows up to 10'),
          line('id h1: archived in the index, in neither ledger.transfers nor ' +
            'ledger.rejections'),
        ]);
      } finally {
        await finish();
      }
    });

    test("a Redis balance changed (an account's credits)", async () => {
      await prepare();
      try {
        expect(await f.redis.hget(f.keys.account('alice'), 'cr')).toBe('1102');
        await f.redis.hset(f.keys.account('alice'), 'cr', '1103');
        const { divergences } = await auditOf(f);
        expect(divergences).toEqual([
          expect.stringMatching(new RegExp(`^ledger ${f.keys.ledger}: account alice: credits ` +
            '1103 in Redis, 1102 from its archived entries up to seq \\d+ and its records ' +
            'after \\(to seq 10\\)$')),
          expect.stringMatching(/: account alice: balance 653 in Redis, 652 from /),
          line('currency USD: its accounts\' balances sum to 1, not 0'),
        ]);
      } finally {
        await finish();
      }
    });

    test('the archive edited and its whole chain re-hashed: Redis\'s note disagrees',
      async () => {
        await prepare();
        try {
          const ledger = f.keys.ledger;
          await sql.query(`UPDATE ledger.transfers SET metadata = '{"order":"o-2"}',
            record = replace(record, 'o-1', 'o-2') WHERE ledger = $1 AND seq = 2`, [ledger]);
          // (bigint comes back as text, in numeric order)
          const { rows } = await sql.query<{ seq: string; record: string }>('SELECT seq, ' +
            'record FROM ledger.transfers WHERE ledger = $1 ORDER BY seq', [ledger]);
          let hash = CHAIN_START;
          for (const row of rows) {
            hash = chainHash(hash, ledger, 'journal', row.seq, row.record);
            await sql.query('UPDATE ledger.transfers SET hash = $3 WHERE ledger = $1 AND ' +
              'seq = $2', [ledger, row.seq, Buffer.from(hash, 'hex')]);
          }
          await sql.query('UPDATE ledger.positions SET journal_hash = $2 WHERE ledger = $1',
            [ledger, Buffer.from(hash, 'hex')]);
          const noted = await f.redis.hget(f.keys.positions(), 'archive:hj');
          expect((await auditOf(f)).divergences).toEqual([line('seq 10: the journal chain\'s ' +
            `hash there (Redis's note of the archive) is ${hash} in PostgreSQL, Redis noted ` +
            `${noted}`)]);
        } finally {
          await finish();
        }
      });

    test('an archived id dropped from the index', async () => {
      await prepare();
      try {
        const bucket = f.keys.transferBucket(UUID_LOWER);
        expect(await f.redis.hdel(bucket, compactId(UUID_LOWER) as string)).toBe(1);
        expect((await auditOf(f)).divergences).toEqual([
          line(`id ${UUID_LOWER} (seq 8): not in the id index`)]);
      } finally {
        await finish();
      }
    });
  });

  test('npm run audit: exit 0, then 1 with the divergence on stdout; 2 without REDIS_URL',
    async () => {
      // A database of its own: the process audits every ledger the archive holds.
      await sql.query('CREATE DATABASE audit_cli');
      const url = db.url.replace(/\/ledger$/, '/audit_cli');
      const prefix = `audit-${randomUUID().slice(0, 8)}`;
      const f = await fixture({ keyPrefix: prefix, archive: { url, keepRecords: 1 } });
      try {
        await history(f);
        await archived(f);
        const env = { REDIS_URL: inject('redisUrl'), LEDGER_KEY_PREFIX: prefix,
          LEDGER_NAME: f.keys.ledger, LEDGER_ARCHIVE_URL: url };
        const ok = await npmAudit(env);
        expect(ok, ok.stderr).toMatchObject({ code: 0 });
        expect(ok.stdout).toMatch(/^audit: every check holds \(1 ledgers, 10 records, 2 rej/);
        await f.redis.hset(f.keys.account('bob'), 'cr', '1');
        const bad = await npmAudit(env);
        expect(bad.code).toBe(1);
        expect(bad.stdout.split('\n')).toContain(`ledger ${f.keys.ledger}: account bob: ` +
          'credits 1 in Redis, 457 from its archived entries up to seq 10 and its records ' +
          'after (to seq 10)');
        // Without REDIS_URL it says what it needs (in this process: a third npm start is
        // seconds on a busy machine).
        const said: string[] = [];
        expect(await runAudit({ LEDGER_NAME: uniqueLedgerName() }, (l) => said.push(l),
          (l) => said.push(l))).toBe(2);
        expect(said).toEqual([AUDIT_NEEDS]);
        expect(AUDIT_NEEDS).toMatch(/^audit needs REDIS_URL: /);
      } finally {
        await f.close();
      }
    });
});

/** `npm run audit` in a child process with the service's variables as given. */
function npmAudit(vars: Record<string, string>): Promise<{ code: number | null;
  stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(REDIS_|LEDGER_)/.test(name)) env[name] = value;
  }
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'audit'], { env: { ...env, ...vars },
      stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
