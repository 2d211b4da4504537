/**
 * The archive in PostgreSQL (LEDGER_ARCHIVE_URL; schema: migrations/): what the archiver writes
 * and what reads of archived records ask. One transaction per page: the rows, the accounts'
 * totals and the archive's position move together, so a page copied twice (a crash between
 * PostgreSQL's commit and Redis's note of it) is recognised by the position and skipped: a copy
 * repeats nothing. Money is bigint here and numeric(39,0) there; never a JS number.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { LedgerInvariantError } from '../ledger/errors.js';
import { iso, type StoredTransfer, storedTransfer } from '../ledger/records.js';
import type {
  ArchivedRecord, ArchiveReader, ArchiveRecord, ArchiveRejection, EntriesPage, Entry, Totals,
} from '../ledger/types.js';
import { CHAIN_START, chainHash } from './chain.js';

/** How far a ledger is archived, and the hash chains' heads there (src/archive/chain.ts). */
export interface ArchivePositions {
  seq: string;
  rejection: string;
  journalHash: string;
  rejectionsHash: string;
}

/** The archive's rows do not follow on from its position: a record is missing in between. */
export class ArchiveGapError extends Error {}

/** A record's balance disagrees with the totals archived before it: the archive stops. */
export class ArchiveMismatchError extends Error {}

const CHAINED = new Set(['transfer', 'post', 'reversal']);

function bytesOf(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}

/** `timestamptz` from milliseconds since the epoch, exactly (no float in between). */
const MS = "(timestamptz 'epoch' + $::bigint * interval '1 millisecond')";
function ms(param: string): string {
  return MS.replace('$', param);
}

interface Running { debits: bigint; credits: bigint; lastSeq: string }

export class ArchiveStore implements ArchiveReader {
  readonly pool: pg.Pool;

  constructor(url: string, options: { max?: number; onError?: (error: Error) => void } = {}) {
    this.pool = new pg.Pool({ connectionString: url, max: options.max ?? 4,
      // A dead PostgreSQL must fail a call, not hang it: the archiver retries on its next pass.
      connectionTimeoutMillis: 5_000, query_timeout: 30_000, application_name: 'atomic-ledger' });
    // An idle client's connection dropped (PostgreSQL restarted): the pool replaces it.
    this.pool.on('error', (error) => options.onError?.(error));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** How far `ledger` is archived (nothing yet: zeros and the chains' start). */
  async positions(ledger: string, client: pg.PoolClient | pg.Pool = this.pool,
    lock = false): Promise<ArchivePositions> {
    const { rows } = await client.query<{ seq: string; rejection: string; jh: Buffer;
      rh: Buffer }>('SELECT seq::text, rejection::text, journal_hash AS jh, ' +
      `rejections_hash AS rh FROM ledger.positions WHERE ledger = $1${lock ? ' FOR UPDATE' : ''}`,
    [ledger]);
    const row = rows[0];
    if (row === undefined) {
      return { seq: '0', rejection: '0', journalHash: CHAIN_START, rejectionsHash: CHAIN_START };
    }
    return { seq: row.seq, rejection: row.rejection, journalHash: row.jh.toString('hex'),
      rejectionsHash: row.rh.toString('hex') };
  }

  /** The decided record `id` as Redis stored it (undefined: not archived). */
  async record(ledger: string, id: string): Promise<ArchivedRecord | undefined> {
    const { rows } = await this.pool.query<{ ref: string; record: string; f: string;
      t: string }>('SELECT seq::text AS ref, record, from_account AS f, to_account AS t ' +
      "FROM ledger.transfers WHERE ledger = $1 AND id = $2 UNION ALL SELECT '-' || n, " +
      "record, '', '' FROM ledger.rejections WHERE ledger = $1 AND id = $2", [ledger, id]);
    const row = rows[0];
    if (row === undefined) return undefined;
    return { ref: row.ref, fields: JSON.parse(row.record) as string[], fromId: row.f,
      toId: row.t };
  }

  async journal(ledger: string, after: string, upto: string,
    limit: number): Promise<ArchiveRecord[]> {
    const { rows } = await this.pool.query<{ seq: string; record: string; f: string;
      t: string }>('SELECT seq::text, record, from_account AS f, to_account AS t ' +
      // (ORDER BY r.seq, the column: a bare `seq` would be the text output column.)
      'FROM ledger.transfers r WHERE ledger = $1 AND seq > $2 AND seq <= $3 ORDER BY r.seq ' +
      'LIMIT $4', [ledger, after, upto, limit]);
    return rows.map((r) => ({ seq: r.seq, fields: JSON.parse(r.record) as string[],
      fromId: r.f, toId: r.t }));
  }

  async totalsAt(ledger: string, account: string, seq: string): Promise<Totals> {
    const { rows } = await this.pool.query<Totals>('SELECT debits_after::text AS debits, ' +
      'credits_after::text AS credits FROM ledger.entries e WHERE ledger = $1 AND ' +
      'account = $2 AND seq <= $3 ORDER BY e.seq DESC LIMIT 1', [ledger, account, seq]);
    return rows[0] ?? { debits: '0', credits: '0' };
  }

  async seqAt(ledger: string, atMs: number): Promise<string> {
    const { rows } = await this.pool.query<{ seq: string | null }>(
      `SELECT max(seq)::text AS seq FROM ledger.transfers WHERE ledger = $1 AND created_at <= ${
        ms('$2')}`, [ledger, String(atMs)]);
    return rows[0]?.seq ?? '0';
  }

  async entries(ledger: string, account: string, from: string,
    limit: number): Promise<EntriesPage> {
    const { rows } = await this.pool.query<{ seq: string; id: string; kind: string;
      amount: string; balance: string; other: string; ms: string }>(
      'SELECT seq::text, transfer_id AS id, kind, amount::text, balance_after::text AS ' +
      'balance, counterparty AS other, (extract(epoch FROM created_at) * 1000)::bigint::text ' +
      'AS ms FROM ledger.entries e WHERE ledger = $1 AND account = $2 AND seq <= $3 ' +
      'ORDER BY e.seq DESC LIMIT $4', [ledger, account, from, limit + 1]);
    const entries = rows.slice(0, limit).map((r): Entry => ({ transferId: r.id,
      kind: r.kind as Entry['kind'], seq: r.seq, amount: r.amount, balanceAfter: r.balance,
      counterparty: r.other, createdAt: iso(r.ms) }));
    return { entries, nextSeq: rows[limit]?.seq ?? null };
  }

  /**
   * Copies a page in one transaction: the records after the archive's position (those at or
   * before it are already there), each with its entries and chain hash, then the accounts'
   * totals and the position. Returns the position after it.
   */
  async append(ledger: string, journal: readonly ArchiveRecord[],
    rejections: readonly ArchiveRejection[]): Promise<ArchivePositions & { copied: number[] }> {
    const client = await checkOut(this.pool);
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO ledger.positions (ledger, journal_hash, rejections_hash) ' +
        'VALUES ($1, $2, $2) ON CONFLICT (ledger) DO NOTHING', [ledger, bytesOf(CHAIN_START)]);
      const at = await this.positions(ledger, client, true);
      const records = journal.filter((r) => BigInt(r.seq) > BigInt(at.seq));
      const rejected = rejections.filter((r) => BigInt(r.n) > BigInt(at.rejection));
      const next = { ...at };
      if (records.length > 0) {
        next.journalHash = await this.insertRecords(client, ledger, at, records);
        next.seq = (records.at(-1) as ArchiveRecord).seq;
      }
      if (rejected.length > 0) {
        next.rejectionsHash = await this.insertRejections(client, ledger, at, rejected);
        next.rejection = (rejected.at(-1) as ArchiveRejection).n;
      }
      if (records.length > 0 || rejected.length > 0) {
        await client.query('UPDATE ledger.positions SET seq = $2, rejection = $3, ' +
          'journal_hash = $4, rejections_hash = $5, updated_at = now() WHERE ledger = $1',
        [ledger, next.seq, next.rejection, bytesOf(next.journalHash),
          bytesOf(next.rejectionsHash)]);
      }
      await client.query('COMMIT');
      return { ...next, copied: [records.length, rejected.length] };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.done();
    }
  }

  /**
   * The journal's rows, their entries and the accounts' totals; returns the chain's head. The
   * rows go to COPY COPY_BATCH_ROWS at a time as they are built, so that PostgreSQL takes in
   * one batch while the next is built (before, the whole page was built first, then taken in:
   * this thread and PostgreSQL's took turns). The entries follow in a COPY of their own.
   */
  private async insertRecords(client: pg.PoolClient, ledger: string, at: ArchivePositions,
    records: readonly ArchiveRecord[]): Promise<string> {
    const entries = new CopyRows();
    const touched = [...new Set(records.flatMap((r) => [r.fromId, r.toId]))];
    const totals = await this.totals(client, ledger, touched);
    let expected = BigInt(at.seq) + 1n;
    let hash = at.journalHash;
    // Pulled by COPY's stream as it takes the batches; a check failing here fails the COPY
    // (and the transaction) with that error.
    function* batches(): Generator<string> {
      const rows = new CopyRows();
      for (const r of records) {
        if (BigInt(r.seq) !== expected) {
          throw new ArchiveGapError(`archive of ${ledger}: seq ${r.seq} where ${expected} ` +
            'was due');
        }
        expected += 1n;
        const record = JSON.stringify(r.fields);
        const t = storedTransfer(r.seq, r.fields, r.fromId, r.toId);
        const id = idOf(r.fields, r.seq);
        hash = chainHash(hash, ledger, 'journal', r.seq, record);
        const createdAt = copyTime(t.createdAt);
        rows.row(ledger, r.seq, id, t.kind, t.from, t.to, t.amount, t.accountsCurrency,
          t.metadata, createdAt, t.createdBy, t.fromBalanceAfter as string,
          t.toBalanceAfter as string, t.target === '' ? null : t.target,
          t.expiresAt === '' ? null : copyTime(t.expiresAt),
          t.requested === '' ? null : t.requested, record, copyBytes(hash));
        if (!CHAINED.has(t.kind)) continue;
        const amount = BigInt(t.amount);
        for (const side of ['from', 'to'] as const) {
          const account = side === 'from' ? t.from : t.to;
          const sum = totals.get(account) ?? { debits: 0n, credits: 0n, lastSeq: '0' };
          if (side === 'from') sum.debits += amount;
          else sum.credits += amount;
          sum.lastSeq = r.seq;
          totals.set(account, sum);
          const balance = side === 'from' ? t.fromBalanceAfter : t.toBalanceAfter;
          if (BigInt(balance as string) !== sum.credits - sum.debits) {
            throw new ArchiveMismatchError(`archive of ${ledger}: seq ${r.seq} leaves ` +
              `${account} at ${balance}, its archived entries at ${sum.credits - sum.debits}`);
          }
          entries.row(ledger, account, r.seq, id, t.kind,
            side === 'from' ? `-${t.amount}` : t.amount, side === 'from' ? t.to : t.from,
            String(sum.debits), String(sum.credits), balance as string, createdAt);
        }
        if (rows.count >= COPY_BATCH_ROWS) yield rows.take();
      }
      if (rows.count > 0) yield rows.take();
    }
    await copyIn(client, 'ledger.transfers (ledger, seq, id, kind, from_account, to_account, ' +
      'amount, currency, metadata, created_at, created_by, from_balance_after, ' +
      'to_balance_after, target, expires_at, requested, record, hash)', batches());
    if (entries.count > 0) {
      await copyIn(client, 'ledger.entries (ledger, account, seq, transfer_id, kind, amount, ' +
        'counterparty, debits_after, credits_after, balance_after, created_at)',
      [entries.take()]);
      const changed = [...totals.entries()].filter(([, s]) => s.lastSeq !== '0');
      await client.query(`INSERT INTO ledger.accounts (ledger, account, debits, credits,
        last_seq) SELECT $1, u.account, u.debits, u.credits, u.last_seq
        FROM unnest($2::text[], $3::numeric[], $4::numeric[], $5::bigint[])
          AS u(account, debits, credits, last_seq)
        ON CONFLICT (ledger, account) DO UPDATE SET debits = excluded.debits,
          credits = excluded.credits, last_seq = excluded.last_seq`,
      [ledger, changed.map(([a]) => a), changed.map(([, s]) => String(s.debits)),
        changed.map(([, s]) => String(s.credits)), changed.map(([, s]) => s.lastSeq)]);
    }
    return hash;
  }

  /** The accounts' archived totals, for the entries of a page to start from. */
  private async totals(client: pg.PoolClient, ledger: string,
    accounts: readonly string[]): Promise<Map<string, Running>> {
    const { rows } = await client.query<{ account: string; debits: string; credits: string;
      last_seq: string }>('SELECT account, debits::text, credits::text, last_seq::text ' +
      'FROM ledger.accounts WHERE ledger = $1 AND account = ANY($2::text[])', [ledger, accounts]);
    return new Map(rows.map((r) => [r.account, { debits: BigInt(r.debits),
      credits: BigInt(r.credits), lastSeq: r.last_seq }]));
  }

  private async insertRejections(client: pg.PoolClient, ledger: string, at: ArchivePositions,
    rejections: readonly ArchiveRejection[]): Promise<string> {
    const rows = new CopyRows();
    let expected = BigInt(at.rejection) + 1n;
    let hash = at.rejectionsHash;
    for (const r of rejections) {
      if (BigInt(r.n) !== expected) {
        throw new ArchiveGapError(`archive of ${ledger}: rejection ${r.n} where ${expected} ` +
          'was due');
      }
      expected += 1n;
      const record = JSON.stringify(r.fields);
      const t: StoredTransfer = storedTransfer(`-${r.n}`, r.fields, undefined, undefined);
      hash = chainHash(hash, ledger, 'rejections', r.n, record);
      rows.row(ledger, r.n, idOf(r.fields, `-${r.n}`), t.status, t.kind, t.from, t.to,
        t.amount === '' ? null : t.amount, t.currency === '' ? null : t.currency,
        t.accountsCurrency, t.metadata, copyTime(t.createdAt), t.createdBy,
        t.target === '' ? null : t.target, record, copyBytes(hash));
    }
    await copyIn(client, 'ledger.rejections (ledger, n, id, reason, kind, from_account, ' +
      'to_account, amount, currency, accounts_currency, metadata, created_at, created_by, ' +
      'target, record, hash)', [rows.take()]);
    return hash;
  }
}

/**
 * Rows in COPY's text format: columns split by tabs, rows ended by newlines, NULL as \N, and a
 * backslash, tab, newline or carriage return inside a value escaped. COPY takes a page's rows
 * in one message each way, without the parameters and arrays an INSERT would parse.
 */
class CopyRows {
  count = 0;
  private lines: string[] = [];

  row(...values: Array<string | null>): void {
    this.lines.push(values.map(copyValue).join('\t'));
    this.count += 1;
  }

  /** The rows so far as COPY's text, each ended by a newline; then none. */
  take(): string {
    const text = this.lines.length === 0 ? '' : `${this.lines.join('\n')}\n`;
    this.lines = [];
    this.count = 0;
    return text;
  }
}

/** Rows handed to COPY at a time (insertRecords): ~250 KB of text, a few socket writes. */
const COPY_BATCH_ROWS = 256;

const COPY_SPECIAL = /[\\\t\n\r]/g;
const COPY_ESCAPE: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n',
  '\r': '\\r' };

function copyValue(value: string | null): string {
  if (value === null) return '\\N';
  return value.replace(COPY_SPECIAL, (c) => COPY_ESCAPE[c] as string);
}

/** A bytea in COPY's text format: `\x` and hex digits (its backslash escaped by copyValue). */
function copyBytes(hex: string): string {
  return `\\x${hex}`;
}

/**
 * A timestamptz from milliseconds since the epoch: an ISO 8601 text in UTC, exact to the
 * millisecond (the stored values are whole milliseconds, far below 2^53).
 */
function copyTime(ms: string): string {
  return new Date(Number(ms)).toISOString();
}

/**
 * `COPY <table (columns)> FROM STDIN` with these batches of rows (COPY's text), each taken
 * from `batches` when the stream wants more; resolves once PostgreSQL took them all.
 */
async function copyIn(client: pg.PoolClient, target: string,
  batches: Iterable<string>): Promise<void> {
  const stream = client.query(copyFrom(`COPY ${target} FROM STDIN`));
  await pipeline(Readable.from(batches), stream);
}

/**
 * A client out of the pool, with a listener for its `error` event: a connection that PostgreSQL
 * drops while checked out (a restart, kill -9) emits one, and an event nobody listens to would
 * end the process. The query in flight fails on its own; the client is then discarded.
 */
export async function checkOut(pool: pg.Pool): Promise<pg.PoolClient & { done(): void }> {
  const client = await pool.connect();
  let failed: Error | undefined;
  const onError = (error: Error) => { failed = error; };
  client.on('error', onError);
  return Object.assign(client, {
    done: () => {
      client.off('error', onError);
      client.release(failed);
    },
  });
}

/** A record's id: its first field (records.ts, JOURNAL_FIELDS and REJECTION_FIELDS). */
function idOf(fields: readonly string[], ref: string): string {
  if (fields[0] !== 'i' || typeof fields[1] !== 'string') {
    throw new LedgerInvariantError(`record ${ref} does not start with its id`);
  }
  return fields[1];
}
