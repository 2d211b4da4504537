/**
 * The audit (`npm run audit`, scripts/audit.ts): checks that every ledger's books hold, across
 * Redis and the PostgreSQL archive (LEDGER_ARCHIVE_URL; without it, Redis alone). PostgreSQL is
 * authoritative for what it has archived (Redis may have freed those records), Redis for the
 * rest. Each divergence is one line naming the ledger, the seq, rejection number, account or id
 * concerned, and both values. The checks:
 *
 * 1. The journal is seqs 1..head, each in Redis, in PostgreSQL (1..P, no gap) or in both (then
 *    with the identical record); a record absent from Redis only once Redis notes it archived.
 *    An archived row's columns agree with its record. The same for the rejections by number.
 * 2. The hash chains (src/archive/chain.ts): each archived row's hash follows from the row
 *    before, and the hash at Redis's note of the archive's position is the one Redis noted.
 * 3. Each account's debits and credits, recomputed from its archived entries and the records
 *    after them, are its Redis hash's; every entry agrees with its record, the entries' running
 *    totals and ledger.accounts with their sums; every record's balances after follow from the
 *    one before on the account's chain.
 * 4. The balances of each currency sum to 0.
 * 5. Every decided id has exactly one entry in the id index, which leads to its record.
 *
 * It runs beside a live service: a cut is taken first (each stream's newest number and Redis's
 * note), and each window of records is read from Redis before PostgreSQL, so a record freed
 * meanwhile is already in PostgreSQL; accounts moved past the cut are compared at their own
 * newest seq. Memory: the ids (a map), the accounts, and a few bits per seq; records stream
 * in windows of seqs, and the archived entries from one cursor.
 */
import type { Redis } from 'ioredis';
import pg from 'pg';
import { type Config, loadConfig } from '../config/env.js';
import {
  compactId, ledgerIndexKey, type LedgerKeys, ledgerKeys, TRANSFER_ID_BUCKETS, transferBucketOf,
  uuidOfCompact,
} from '../ledger/keys.js';
import { type StoredTransfer, storedTransfer } from '../ledger/records.js';
import { createRedis } from '../redis/client.js';
import { CHAIN_START, chainHash, type ChainStream } from './chain.js';

/** Seqs read per window: one XRANGE (~1 ms of Redis) and one PostgreSQL query each. */
const WINDOW = 1000;
/** Entries per FETCH from the cursor over ledger.entries. */
const ENTRIES_PAGE = 5000;
/** work_mem of the audit's sort of the entries (its own transaction's only). */
const SORT_MEMORY = '64MB';
/** Redis keys read per pipeline. */
const REDIS_BATCH = 500;
/** A broken table's extra rows are listed up to this many (the rest are alike). */
const LIST_MAX = 1000;
const CHAINED = new Set(['transfer', 'post', 'reversal']);

export interface AuditOptions {
  redis: Redis;
  prefix: string;
  /** LEDGER_NAME: audited whether or not the index of ledgers lists it. */
  defaultLedger: string;
  /** The archive; undefined: Redis-only checks. */
  archiveUrl?: string | undefined;
  /** Only these ledgers (tests); default: every ledger Redis lists, and any PostgreSQL has. */
  ledgers?: readonly string[];
  /** Each divergence, as it is found. */
  onDivergence?: (line: string) => void;
}

export interface AuditResult {
  ledgers: string[];
  records: number;
  rejections: number;
  divergences: string[];
  /** What could not be checked: records freed from Redis, and no archive to read them in. */
  unchecked: string[];
}

type Emit = (line: string) => void;

const int = (text: string | null | undefined): bigint | undefined =>
  typeof text === 'string' && /^-?[0-9]+$/.test(text) ? BigInt(text) : undefined;

/** Equal as integers (numeric text from PostgreSQL), else as text; NULL equals only NULL. */
function same(a: string | null, b: string | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  const x = int(a);
  const y = int(b);
  return x !== undefined && y !== undefined ? x === y : a === b;
}

/** JSON with every object's keys sorted: jsonb's text is not the record's. */
function canonicalJson(text: string): string | undefined {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.keys(v).sort()
      .map((k) => [k, sort((v as Record<string, unknown>)[k])]));
  };
  try {
    return JSON.stringify(sort(JSON.parse(text)));
  } catch {
    return undefined;
  }
}

const show = (v: string | null | undefined) => (v === null || v === undefined ? 'NULL' : v);
const nullIfEmpty = (v: string) => (v === '' ? null : v);

/** A value of a flat field/value list. */
function valueOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** One bit per seq: which of them a place holds, 1M seqs in 125 kB. */
class Bits {
  private readonly bytes: Uint8Array;
  constructor(size: number) {
    this.bytes = new Uint8Array(Math.floor(size / 8) + 1);
  }

  set(n: number): void {
    const at = Math.floor(n / 8);
    this.bytes[at] = (this.bytes[at] as number) | (1 << (n % 8));
  }

  has(n: number): boolean {
    const at = Math.floor(n / 8);
    return n >= 0 && at < this.bytes.length && ((this.bytes[at] as number) & (1 << (n % 8))) !== 0;
  }
}

/** Milliseconds since the epoch as PostgreSQL computes them (numeric text; NULL stays). */
const MS = (column: string) => `(extract(epoch FROM ${column}) * 1000)::text`;
const ms = (text: string | null) => (text === null ? null : text.replace(/\.0*$/, ''));

interface JournalRow {
  seq: string;
  id: string;
  kind: string;
  f: string;
  t: string;
  amount: string;
  currency: string;
  metadata: string;
  at: string | null;
  by: string;
  fb: string;
  tb: string;
  target: string | null;
  expires: string | null;
  requested: string | null;
  record: string;
  hash: Buffer;
}

interface RejectionRow {
  n: string;
  id: string;
  reason: string;
  kind: string;
  f: string;
  t: string;
  amount: string | null;
  currency: string | null;
  ac: string;
  metadata: string;
  at: string | null;
  by: string;
  target: string | null;
  record: string;
  hash: Buffer;
}

/** A ledger.accounts row. */
interface AccountRow {
  debits: string;
  credits: string;
  last: string;
}

interface Summary {
  count: bigint;
  max: bigint;
  min: bigint;
  /** ledger.positions' (undefined: no row), and the hash of the row there. */
  position: bigint | undefined;
  positionHash: string | undefined;
  rowHash: string | undefined;
}

/** An entry and its transfer's row (NULLs: none). */
interface EntryRow {
  account: string;
  seq: string;
  id: string;
  kind: string;
  amount: string;
  other: string;
  debits: string;
  credits: string;
  balance: string;
  at: string | null;
  t_id: string | null;
  t_kind: string | null;
  t_from: string | null;
  t_to: string | null;
  t_amount: string | null;
  t_fb: string | null;
  t_tb: string | null;
  t_at: string | null;
}

const STREAM_TABLE = { journal: ['ledger.transfers', 'seq'],
  rejections: ['ledger.rejections', 'n'] } as const;

/** What the audit reads of the archive. `present` false: no schema yet, so nothing archived. */
class ArchiveReader {
  constructor(private readonly client: pg.Client, readonly present: boolean) {}

  private async rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    if (!this.present) return [];
    return (await this.client.query(sql, params)).rows as T[];
  }

  async ledgers(): Promise<string[]> {
    return (await this.rows<{ ledger: string }>('SELECT ledger FROM ledger.positions ' +
      'UNION SELECT DISTINCT ledger FROM ledger.transfers ORDER BY 1', []))
      .map((r) => r.ledger);
  }

  async position(ledger: string): Promise<number> {
    const [row] = await this.rows<{ seq: string }>('SELECT seq::text FROM ledger.positions ' +
      'WHERE ledger = $1', [ledger]);
    return row === undefined ? 0 : Number(row.seq);
  }

  async journal(ledger: string, lo: number, hi: number): Promise<Map<number, JournalRow>> {
    const rows = await this.rows<JournalRow>(`SELECT t.seq::text AS seq, t.id, t.kind,
      t.from_account AS f, t.to_account AS t, t.amount::text AS amount, t.currency,
      t.metadata::text AS metadata, ${MS('t.created_at')} AS at, t.created_by AS by,
      t.from_balance_after::text AS fb, t.to_balance_after::text AS tb, t.target,
      ${MS('t.expires_at')} AS expires, t.requested::text AS requested, t.record, t.hash
      FROM ledger.transfers t WHERE t.ledger = $1 AND t.seq BETWEEN $2 AND $3`,
    [ledger, String(lo), String(hi)]);
    return new Map(rows.map((r) => [Number(r.seq), { ...r, at: ms(r.at),
      expires: ms(r.expires) }]));
  }

  async rejections(ledger: string, lo: number, hi: number): Promise<Map<number, RejectionRow>> {
    const rows = await this.rows<RejectionRow>(`SELECT n::text AS n, id, reason, kind,
      from_account AS f, to_account AS t, amount::text AS amount, currency,
      accounts_currency AS ac, metadata::text AS metadata, ${MS('created_at')} AS at,
      created_by AS by, target, record, hash
      FROM ledger.rejections r WHERE ledger = $1 AND n BETWEEN $2 AND $3 ORDER BY r.n`,
    [ledger, String(lo), String(hi)]);
    return new Map(rows.map((r) => [Number(r.n), { ...r, at: ms(r.at) }]));
  }

  /** The records (as stored) of the journal rows from lo to hi. */
  async records(ledger: string, lo: number, hi: number): Promise<Map<number, string>> {
    const rows = await this.rows<{ seq: string; record: string }>('SELECT seq::text, record ' +
      'FROM ledger.transfers WHERE ledger = $1 AND seq BETWEEN $2 AND $3',
    [ledger, String(lo), String(hi)]);
    return new Map(rows.map((r) => [Number(r.seq), r.record]));
  }

  async hashAt(ledger: string, stream: ChainStream, ref: number): Promise<string | undefined> {
    const [table, column] = STREAM_TABLE[stream];
    const [row] = await this.rows<{ hash: Buffer }>(`SELECT hash FROM ${table} ` +
      `WHERE ledger = $1 AND ${column} = $2`, [ledger, String(ref)]);
    return row?.hash.toString('hex');
  }

  /** One snapshot of a stream's rows: how many, the range, and the archive's position. */
  async summary(ledger: string, stream: ChainStream): Promise<Summary> {
    const [table, column] = STREAM_TABLE[stream];
    const [p, h] = stream === 'journal' ? ['seq', 'journal_hash'] : ['rejection',
      'rejections_hash'];
    const [row] = await this.rows<{ count: string; max: string; min: string;
      position: string | null; position_hash: Buffer | null; row_hash: Buffer | null }>(
      `SELECT s.count::text, s.max::text, s.min::text, p.${p}::text AS position,
        p.${h} AS position_hash,
        (SELECT hash FROM ${table} x WHERE x.ledger = $1 AND x.${column} = p.${p}) AS row_hash
      FROM (SELECT count(*) AS count, coalesce(max(${column}), 0) AS max,
        coalesce(min(${column}), 1) AS min FROM ${table} WHERE ledger = $1) s
      LEFT JOIN ledger.positions p ON p.ledger = $1`, [ledger]);
    return { count: BigInt(row?.count ?? 0), max: BigInt(row?.max ?? 0),
      min: BigInt(row?.min ?? 1),
      position: row?.position == null ? undefined : BigInt(row.position),
      positionHash: row?.position_hash?.toString('hex'),
      rowHash: row?.row_hash?.toString('hex') };
  }

  /** The runs of numbers missing below a stream's newest row: [first, last]. */
  async gaps(ledger: string, stream: ChainStream): Promise<[string, string][]> {
    const [table, c] = STREAM_TABLE[stream];
    // (bigint columns come back as text; ordered as numbers here)
    const rows = await this.rows<{ lo: string; hi: string }>(`SELECT x.${c} + 1 AS lo,
        (SELECT min(y.${c}) FROM ${table} y WHERE y.ledger = $1 AND y.${c} > x.${c}) - 1 AS hi
      FROM ${table} x WHERE x.ledger = $1
        AND x.${c} < (SELECT max(${c}) FROM ${table} WHERE ledger = $1)
        AND NOT EXISTS (SELECT 1 FROM ${table} y WHERE y.ledger = $1 AND y.${c} = x.${c} + 1)
      UNION ALL SELECT 1::bigint, min(${c}) - 1 FROM ${table} WHERE ledger = $1
        HAVING min(${c}) > 1
      ORDER BY lo LIMIT ${LIST_MAX}`, [ledger]);
    return rows.map((r) => [r.lo, r.hi]);
  }

  /** Rows numbered below 1 (a stream's numbers start at 1). */
  async belowOne(ledger: string, stream: ChainStream): Promise<string[]> {
    const [table, c] = STREAM_TABLE[stream];
    return (await this.rows<{ n: string }>(`SELECT x.${c}::text AS n FROM ${table} x ` +
      `WHERE ledger = $1 AND x.${c} < 1 ORDER BY x.${c} LIMIT ${LIST_MAX}`, [ledger]))
      .map((r) => r.n);
  }

  /**
   * ledger.accounts, then every entry of the ledger in seq order with its transfer's row, in
   * pages from a cursor, all in one snapshot (REPEATABLE READ).
   */
  async entries(ledger: string, accounts: (totals: Map<string, AccountRow>) => void,
    page: (rows: EntryRow[]) => void): Promise<void> {
    if (!this.present) {
      accounts(new Map());
      return;
    }
    const name = this.client.escapeLiteral(ledger);
    await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let done = false;
    try {
      const { rows } = await this.client.query<AccountRow & { account: string }>(
        'SELECT account, debits::text, credits::text, last_seq::text AS last ' +
        'FROM ledger.accounts WHERE ledger = $1', [ledger]);
      accounts(new Map(rows.map((r) => [r.account, r])));
      // One plan whatever the tables' statistics (a fresh archive has none): the entries
      // sorted by seq once and merged with the transfers in their primary key's order, all
      // sequential reads. Left to itself, the planner may look a row up per entry, or sort
      // every entry again for each page.
      for (const setting of ['enable_nestloop', 'enable_hashjoin']) {
        await this.client.query(`SET LOCAL ${setting} = off`);
      }
      await this.client.query(`SET LOCAL work_mem = '${SORT_MEMORY}'`);
      await this.client.query(`DECLARE audit_entries NO SCROLL CURSOR FOR
        SELECT e.account, e.seq::text AS seq, e.transfer_id AS id, e.kind,
          e.amount::text AS amount, e.counterparty AS other, e.debits_after::text AS debits,
          e.credits_after::text AS credits, e.balance_after::text AS balance,
          ${MS('e.created_at')} AS at, t.id AS t_id, t.kind AS t_kind,
          t.from_account AS t_from, t.to_account AS t_to, t.amount::text AS t_amount,
          t.from_balance_after::text AS t_fb, t.to_balance_after::text AS t_tb,
          ${MS('t.created_at')} AS t_at
        FROM ledger.entries e
        LEFT JOIN ledger.transfers t ON t.ledger = e.ledger AND t.seq = e.seq
        WHERE e.ledger = ${name} ORDER BY e.seq, e.account`);
      for (;;) {
        const fetched = await this.client.query<EntryRow>(
          `FETCH ${ENTRIES_PAGE} FROM audit_entries`);
        if (fetched.rows.length > 0) {
          page(fetched.rows.map((r) => ({ ...r, at: ms(r.at), t_at: ms(r.t_at) })));
        }
        if (fetched.rows.length < ENTRIES_PAGE) break;
      }
      done = true;
    } finally {
      await this.client.query(done ? 'COMMIT' : 'ROLLBACK').catch(() => undefined);
    }
  }

  /** The accounts of journal rows (for rows missing an entry). */
  async accountsOf(ledger: string, seqs: readonly number[]): Promise<Map<number,
    [string, string]>> {
    const rows = await this.rows<{ seq: string; f: string; t: string }>('SELECT seq::text, ' +
      'from_account AS f, to_account AS t FROM ledger.transfers WHERE ledger = $1 ' +
      'AND seq = ANY($2::bigint[])', [ledger, seqs.map(String)]);
    return new Map(rows.map((r) => [Number(r.seq), [r.f, r.t]]));
  }

  /** The archived ids among `ids`, each with its reference (a seq, or -n). */
  async refsOf(ledger: string, ids: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.rows<{ id: string; ref: string }>(`SELECT id, seq::text AS ref
      FROM ledger.transfers WHERE ledger = $1 AND id = ANY($2::text[])
      UNION ALL SELECT id, (-n)::text FROM ledger.rejections
      WHERE ledger = $1 AND id = ANY($2::text[])`, [ledger, ids]);
    return new Map(rows.map((r) => [r.id, Number(r.ref)]));
  }
}

/** One account as the records have it. */
interface Acc {
  /** Sums of its records after the archive's position at the cut (all of them, unarchived). */
  dr: bigint;
  cr: bigint;
  /** Its newest chained record so far (0: none), and the balance that record stored. */
  lastSeq: number;
  lastBalance: bigint;
  currency: string | undefined;
}

interface Decoded {
  id: string;
  t: StoredTransfer;
  pf: string;
  pt: string;
}

/** An id's reference in `ids` once an index entry has named it. */
const INDEXED = 2 ** 50;
const refOf = (v: number) => (v >= INDEXED ? v - INDEXED : v <= -INDEXED ? v + INDEXED : v);
const refText = (ref: number) => (ref < 0 ? `rejection ${-ref}` : `seq ${ref}`);

/** Redis's note of the archive (lua/archive-7.lua). */
interface Note {
  seq: number;
  hash: string | null;
  rejection: number;
  rejectionsHash: string | null;
}

class LedgerAudit {
  private readonly name: string;
  private head = 0;
  private rejectionsHead = 0;
  private note: Note = { seq: 0, hash: null, rejection: 0, rejectionsHash: null };
  /** The archive's position at the cut: entries up to it, records after it. */
  private p0 = 0;
  private readonly numbers = new Map<string, string>();
  private readonly accounts = new Map<string, Acc>();
  /** Each account's archived entries' sums up to p0. */
  private readonly archived = new Map<string, { dr: bigint; cr: bigint }>();
  /** Every decided id -> its seq, or -n for a rejection (+/- INDEXED once indexed). */
  private readonly ids = new Map<string, number>();
  private inRedis = new Bits(0);
  private inPg = new Bits(0);
  /** Archived rows that move money (two entries each), and the entries met on either side. */
  private chainedInPg = new Bits(0);
  private entryFrom = new Bits(0);
  private entryTo = new Bits(0);
  private rejectionInRedis = new Bits(0);
  private rejectionInPg = new Bits(0);
  private readonly chains = { journal: { at: 0, hash: CHAIN_START },
    rejections: { at: 0, hash: CHAIN_START } };
  /** The archive's hashes at Redis's noted positions, as the windows met them. */
  private readonly anchors: { journal?: string; rejections?: string } = {};
  /** Freed from Redis past its note at the cut: fine only if the note has moved since. */
  private readonly pastNote = { journal: [] as number[], rejections: [] as number[] };
  /** Records freed from Redis that, without the archive, nothing can show. */
  private unreadable = 0;
  records = 0;
  rejections = 0;

  constructor(private readonly redis: Redis, private readonly keys: LedgerKeys,
    private readonly pg: ArchiveReader | undefined, private readonly emit: Emit) {
    this.name = keys.ledger;
  }

  private say(text: string): void {
    this.emit(`ledger ${this.name}: ${text}`);
  }

  /** Runs every check; returns what could not be checked ('' when everything could). */
  async run(): Promise<string> {
    const k = this.keys;
    this.head = await this.streamHead(k.journal());
    this.rejectionsHead = await this.streamHead(k.rejections());
    this.note = await this.readNote();
    if (this.pg !== undefined) {
      this.p0 = Math.min(await this.pg.position(this.name), this.head);
    }
    this.inRedis = new Bits(this.head);
    this.inPg = new Bits(this.head);
    this.chainedInPg = new Bits(this.head);
    this.entryFrom = new Bits(this.head);
    this.entryTo = new Bits(this.head);
    this.rejectionInRedis = new Bits(this.rejectionsHead);
    this.rejectionInPg = new Bits(this.rejectionsHead);
    await this.readNumbers();
    await this.journal();
    await this.rejectionsStream();
    const note = await this.readNote();
    this.freedPastNote(note);
    this.checkAnchors();
    if (this.unreadable > 0) {
      // Balances and the index cannot be recomputed without the freed records.
      return `ledger ${this.name}: ${this.unreadable} records archived and freed from Redis ` +
        'could not be read: the audit needs LEDGER_ARCHIVE_URL to check them';
    }
    if (this.pg !== undefined) await this.archive();
    await this.balances();
    await this.index();
    return this.unreadable === 0 ? '' : `ledger ${this.name}: ${this.unreadable} archived ` +
      'index entries could not be checked: the audit needs LEDGER_ARCHIVE_URL';
  }

  /** The newest number a stream ever had (its entries may be freed, the newest included). */
  private async streamHead(key: string): Promise<number> {
    let info: unknown[];
    try {
      info = await this.redis.xinfo('STREAM', key) as unknown[];
    } catch (error) {
      if (/no such key/i.test((error as Error).message)) return 0;
      throw error;
    }
    const at = info.indexOf('last-generated-id');
    const id = String(info[at + 1] ?? '0-0');
    if (!/^0-[0-9]+$/.test(id)) this.say(`stream ${key}: newest id ${id} is not 0-<n>`);
    return Number(id.slice(2)) || 0;
  }

  private async readNote(): Promise<Note> {
    const [seq, hash, rejection, rejectionsHash] = await this.redis.hmget(this.keys.positions(),
      'archive', 'archive:hj', 'archive:r', 'archive:hr');
    return { seq: Number(seq ?? 0), hash: hash ?? null, rejection: Number(rejection ?? 0),
      rejectionsHash: rejectionsHash ?? null };
  }

  private async readNumbers(): Promise<void> {
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.keys.accountIds(), cursor, 'COUNT', 1000);
      for (let i = 0; i < flat.length; i += 2) {
        this.numbers.set(flat[i] as string, flat[i + 1] as string);
      }
      cursor = next;
    } while (cursor !== '0');
  }

  /** Account numbers created after the numbers were read. */
  private async resolveNumbers(lists: Iterable<readonly string[] | undefined>): Promise<void> {
    const missing = new Set<string>();
    for (const fields of lists) {
      if (fields === undefined) continue;
      for (const name of ['f', 't']) {
        const n = valueOf(fields, name);
        if (n !== undefined && !this.numbers.has(n)) missing.add(n);
      }
    }
    if (missing.size === 0) return;
    const list = [...missing];
    const found = await this.redis.hmget(this.keys.accountIds(), ...list);
    list.forEach((n, i) => {
      const id = found[i];
      if (id != null) this.numbers.set(n, id);
    });
  }

  private async xrange(key: string, lo: number, hi: number): Promise<Map<number, string[]>> {
    const entries = await this.redis.xrange(key, `0-${lo}`, `0-${hi}`);
    return new Map(entries.map(([id, fields]) => [Number(id.slice(2)), fields]));
  }

  /** A stored record's JSON from the archive as a field list (undefined: unreadable). */
  private parse(where: string, record: string): string[] | undefined {
    try {
      const fields: unknown = JSON.parse(record);
      if (Array.isArray(fields) && fields.every((f) => typeof f === 'string')) {
        return fields as string[];
      }
    } catch {
      // below
    }
    this.say(`${where}: PostgreSQL's record ${record} is not a list of strings`);
    return undefined;
  }

  /** Check 1: the record Redis holds and the archive's are the same bytes. */
  private sameRecord(where: string, redis: readonly string[], record: string,
    archived: readonly string[] | undefined): boolean {
    const text = JSON.stringify(redis);
    if (text === record) return true;
    if (archived !== undefined) {
      for (let i = 0; i < Math.max(redis.length, archived.length); i += 2) {
        if (redis[i] === archived[i] && redis[i + 1] === archived[i + 1]) continue;
        if (redis[i] === archived[i] && redis[i] !== undefined) {
          this.say(`${where}: field ${redis[i]} is ${JSON.stringify(archived[i + 1])} in ` +
            `PostgreSQL's record, ${JSON.stringify(redis[i + 1])} in Redis's`);
          return false;
        }
        break;
      }
    }
    this.say(`${where}: PostgreSQL's record ${record} is not Redis's ${text}`);
    return false;
  }

  /** Check 2: an archived row's hash follows from the row before it. */
  private async link(stream: ChainStream, ref: number, record: string, stored: Buffer):
    Promise<void> {
    const chain = this.chains[stream];
    let previous: string | undefined = chain.at === ref - 1 ? chain.hash : undefined;
    // The row before was not archived when its window was read (it is now, or it is a gap,
    // which the summary reports).
    previous ??= await this.pg?.hashAt(this.name, stream, ref - 1);
    const hash = stored.toString('hex');
    if (previous !== undefined) {
      const expected = chainHash(previous, this.name, stream, String(ref), record);
      if (hash !== expected) {
        this.say(`${refText(stream === 'journal' ? ref : -ref)}: hash ${hash} in ` +
          `${STREAM_TABLE[stream][0]}, ${expected} from the row before and its record`);
      }
    }
    chain.at = ref;
    chain.hash = hash;
    const noted = stream === 'journal' ? this.note.seq : this.note.rejection;
    if (ref === noted) this.anchors[stream] = hash;
  }

  private decode(seq: number, fields: readonly string[], whose: string): Decoded | undefined {
    const where = `seq ${seq}`;
    if (fields[0] !== 'i' || fields[1] === undefined) {
      this.say(`${where}: ${whose} record ${JSON.stringify(fields)} does not start with its id`);
      return undefined;
    }
    const f = valueOf(fields, 'f') ?? '';
    const t = valueOf(fields, 't') ?? '';
    const fromId = this.numbers.get(f);
    const toId = this.numbers.get(t);
    if (fromId === undefined || toId === undefined) {
      this.say(`${where}: ${whose} record names account numbers ${f} and ${t}; the number ` +
        `index has ${show(fromId)} and ${show(toId)}`);
      return undefined;
    }
    try {
      return { id: fields[1], t: storedTransfer(String(seq), [...fields], fromId, toId),
        pf: valueOf(fields, 'pf') ?? '', pt: valueOf(fields, 'pt') ?? '' };
    } catch (error) {
      this.say(`${where}: ${whose} record ${JSON.stringify(fields)} is unreadable: ` +
        `${(error as Error).message}`);
      return undefined;
    }
  }

  /** Check 5, first half: each record's id, once. */
  private decided(id: string, ref: number): void {
    const known = this.ids.get(id);
    if (known === undefined) this.ids.set(id, ref);
    else this.say(`id ${id}: decided twice, at ${refText(known)} and ${refText(ref)}`);
  }

  /**
   * Windows of a stream from 1 to `head`, each read from Redis, then from PostgreSQL: a record
   * Redis frees after its read is in PostgreSQL by the second. The next window is read while
   * this one is checked.
   */
  private async *windows<R>(key: string, head: number,
    archived: ((lo: number, hi: number) => Promise<Map<number, R>>) | undefined):
    AsyncGenerator<{ lo: number; hi: number; held: Map<number, string[]>; rows: Map<number, R> }> {
    const read = async (lo: number) => {
      const hi = Math.min(lo + WINDOW - 1, head);
      const held = await this.xrange(key, lo, hi);
      return { lo, hi, held, rows: await archived?.(lo, hi) ?? new Map<number, R>() };
    };
    let next = head >= 1 ? read(1) : undefined;
    while (next !== undefined) {
      const window = await next;
      next = window.hi < head ? read(window.hi + 1) : undefined;
      // (a failed read ahead is thrown by the await above, next time round)
      next?.catch(() => undefined);
      yield window;
    }
  }

  private async journal(): Promise<void> {
    const pg = this.pg;
    for await (const { lo, hi, held, rows } of this.windows(this.keys.journal(), this.head,
      pg === undefined ? undefined : (a, b) => pg.journal(this.name, a, b))) {
      const archived = new Map<number, string[] | undefined>();
      for (const [s, row] of rows) archived.set(s, this.parse(`seq ${s}`, row.record));
      await this.resolveNumbers([...held.values(), ...archived.values()]);
      for (let s = lo; s <= hi; s++) {
        await this.journalRecord(s, held.get(s), rows.get(s), archived.get(s));
      }
    }
  }

  private async journalRecord(s: number, held: string[] | undefined, row: JournalRow | undefined,
    archived: string[] | undefined): Promise<void> {
    const where = `seq ${s}`;
    if (held !== undefined) this.inRedis.set(s);
    if (row === undefined && held === undefined) {
      if (this.pg !== undefined) this.say(`${where}: in neither Redis's journal nor PostgreSQL`);
      else if (s <= this.note.seq) this.unreadable++;
      else this.pastNote.journal.push(s);
      return;
    }
    this.records++;
    let fromArchive: Decoded | undefined;
    let identical = false;
    if (row !== undefined) {
      this.inPg.set(s);
      if (held === undefined && s > this.note.seq) this.pastNote.journal.push(s);
      if (held !== undefined) identical = this.sameRecord(where, held, row.record, archived);
      await this.link('journal', s, row.record, row.hash);
      fromArchive = archived === undefined ? undefined
        : this.decode(s, archived, "PostgreSQL's");
      if (fromArchive !== undefined) this.archivedRow(s, row, fromArchive);
    }
    // Redis's record decoded too unless it is the archive's, byte for byte.
    const d = held === undefined || (identical && fromArchive !== undefined) ? fromArchive
      : this.decode(s, held, "Redis's");
    if (d === undefined) return;
    this.decided(d.id, s);
    // After a record nothing can read, its accounts' balances cannot be followed.
    if (this.unreadable === 0) this.apply(s, d);
  }

  /** Check 1 on an archived journal row: its columns are its record's. */
  private archivedRow(s: number, row: JournalRow, d: Decoded): void {
    const { t } = d;
    const columns: [string, string | null, string | null][] = [
      ['id', row.id, d.id], ['kind', row.kind, t.kind], ['from_account', row.f, t.from],
      ['to_account', row.t, t.to], ['amount', row.amount, t.amount],
      ['currency', row.currency, t.accountsCurrency], ['created_at', row.at, t.createdAt],
      ['created_by', row.by, t.createdBy],
      ['from_balance_after', row.fb, t.fromBalanceAfter ?? null],
      ['to_balance_after', row.tb, t.toBalanceAfter ?? null],
      ['target', row.target, nullIfEmpty(t.target)],
      ['expires_at', row.expires, nullIfEmpty(t.expiresAt)],
      ['requested', row.requested, nullIfEmpty(t.requested)],
    ];
    this.columns(`seq ${s}`, 'ledger.transfers', columns, row.metadata, t.metadata);
    if (CHAINED.has(t.kind)) this.chainedInPg.set(s);
  }

  private columns(where: string, table: string,
    columns: readonly [string, string | null, string | null][], metadata: string,
    want: string): void {
    for (const [column, stored, expected] of columns) {
      if (!same(stored, expected)) {
        this.say(`${where}: ${table}.${column} is ${show(stored)}, its record says ` +
          `${show(expected)}`);
      }
    }
    // (jsonb's text of {} is the record's; other metadata differ in spacing at least)
    if (metadata !== want && canonicalJson(metadata) !== canonicalJson(want)) {
      this.say(`${where}: ${table}.metadata is ${metadata}, its record says ${want}`);
    }
  }

  private account(id: string): Acc {
    let acc = this.accounts.get(id);
    if (acc === undefined) {
      acc = { dr: 0n, cr: 0n, lastSeq: 0, lastBalance: 0n, currency: undefined };
      this.accounts.set(id, acc);
    }
    return acc;
  }

  /**
   * Check 3 on the records themselves: each one's balances after, and its links to the
   * accounts' previous entries, follow from the record before on each account's chain.
   * Compared with that record's stored balance (not a running sum), a bad record is one line,
   * not one per record after it; the sums are compared with the accounts at the end.
   */
  private apply(s: number, d: Decoded): void {
    const { t } = d;
    const amount = int(t.amount);
    if (amount === undefined || amount <= 0n) {
      this.say(`seq ${s}: amount ${t.amount} is not a positive integer`);
      return;
    }
    const chained = CHAINED.has(t.kind);
    for (const side of ['from', 'to'] as const) {
      const id = side === 'from' ? t.from : t.to;
      const acc = this.account(id);
      if (acc.currency === undefined) acc.currency = t.accountsCurrency;
      else if (acc.currency !== t.accountsCurrency) {
        this.say(`seq ${s}: in ${t.accountsCurrency}, but account ${id}'s earlier records ` +
          `are in ${acc.currency}`);
      }
      const link = side === 'from' ? 'pf' : 'pt';
      const previous = side === 'from' ? d.pf : d.pt;
      const field = side === 'from' ? 'fb' : 'tb';
      const text = (side === 'from' ? t.fromBalanceAfter : t.toBalanceAfter) ?? '';
      const stored = int(text);
      if (!chained) {
        if (previous !== '') this.say(`seq ${s}: a ${t.kind} has ${link} ${previous}`);
        if (stored !== acc.lastBalance) {
          this.say(`seq ${s}: ${field} (account ${id}'s balance) is ${text}, its entries ` +
            `leave it at ${acc.lastBalance}`);
        }
        continue;
      }
      if (previous !== String(acc.lastSeq)) {
        this.say(`seq ${s}: ${link} (account ${id}'s previous entry) is ${previous}, its ` +
          `previous entry is at seq ${acc.lastSeq}`);
      }
      const balance = acc.lastBalance + (side === 'from' ? -amount : amount);
      if (stored !== balance) {
        this.say(`seq ${s}: ${field} (account ${id}'s balance after) is ${text}, the entry ` +
          `before leaves ${acc.lastBalance} and this one ` +
          `${side === 'from' ? 'debits' : 'credits'} ${amount}: ${balance}`);
      }
      acc.lastSeq = s;
      acc.lastBalance = stored ?? balance;
      if (s > this.p0) {
        if (side === 'from') acc.dr += amount;
        else acc.cr += amount;
      }
    }
  }

  private async rejectionsStream(): Promise<void> {
    const pg = this.pg;
    for await (const { lo, hi, held, rows } of this.windows(this.keys.rejections(),
      this.rejectionsHead, pg === undefined ? undefined : (a, b) => pg.rejections(this.name, a,
        b))) {
      for (let n = lo; n <= hi; n++) await this.rejection(n, held.get(n), rows.get(n));
    }
  }

  private async rejection(n: number, held: string[] | undefined, row: RejectionRow | undefined):
    Promise<void> {
    const where = `rejection ${n}`;
    if (held !== undefined) this.rejectionInRedis.set(n);
    if (row === undefined && held === undefined) {
      if (this.pg !== undefined) this.say(`${where}: in neither Redis nor PostgreSQL`);
      else if (n <= this.note.rejection) this.unreadable++;
      else this.pastNote.rejections.push(n);
      return;
    }
    this.rejections++;
    let archived: string[] | undefined;
    if (row !== undefined) {
      this.rejectionInPg.set(n);
      if (held === undefined && n > this.note.rejection) this.pastNote.rejections.push(n);
      archived = this.parse(where, row.record);
      if (held !== undefined) this.sameRecord(where, held, row.record, archived);
      await this.link('rejections', n, row.record, row.hash);
      const t = archived === undefined ? undefined : this.decodeRejection(n, archived);
      if (t !== undefined) {
        this.columns(where, 'ledger.rejections', [
          ['id', row.id, archived?.[1] ?? null], ['reason', row.reason, t.status],
          ['kind', row.kind, t.kind], ['from_account', row.f, t.from],
          ['to_account', row.t, t.to], ['amount', row.amount, nullIfEmpty(t.amount)],
          ['currency', row.currency, nullIfEmpty(t.currency)],
          ['accounts_currency', row.ac, t.accountsCurrency], ['created_at', row.at, t.createdAt],
          ['created_by', row.by, t.createdBy], ['target', row.target, nullIfEmpty(t.target)],
        ], row.metadata, t.metadata);
      }
    }
    const fields = held ?? archived;
    if (fields === undefined || this.decodeRejection(n, fields) === undefined) return;
    this.decided(fields[1] as string, -n);
  }

  private decodeRejection(n: number, fields: readonly string[]): StoredTransfer | undefined {
    try {
      if (fields[0] !== 'i' || fields[1] === undefined) throw new Error('no id first');
      return storedTransfer(`-${n}`, [...fields], undefined, undefined);
    } catch (error) {
      this.say(`rejection ${n}: record ${JSON.stringify(fields)} is unreadable: ` +
        `${(error as Error).message}`);
      return undefined;
    }
  }

  /** Records missing from Redis past its note at the cut: the note must have passed them. */
  private freedPastNote(note: Note): void {
    for (const s of this.pastNote.journal) {
      if (s > note.seq) {
        this.say(`seq ${s}: missing from Redis's journal, which notes the archive only up to ` +
          `seq ${note.seq}`);
      }
    }
    for (const n of this.pastNote.rejections) {
      if (n > note.rejection) {
        this.say(`rejection ${n}: missing from Redis, which notes the archive only up to ` +
          `rejection ${note.rejection}`);
      }
    }
  }

  /** Check 2: the hashes at Redis's note are the ones it noted (an archive re-hashed differs). */
  private checkAnchors(): void {
    if (this.pg === undefined) return;
    const pairs: [ChainStream, number, string | null][] = [
      ['journal', this.note.seq, this.note.hash],
      ['rejections', this.note.rejection, this.note.rejectionsHash]];
    for (const [stream, at, noted] of pairs) {
      if (at === 0) continue;
      const where = refText(stream === 'journal' ? at : -at);
      const archived = this.anchors[stream];
      if (archived === undefined) {
        this.say(`${where}: Redis notes the ${stream} archived up to it, PostgreSQL has no row`);
      } else if (archived !== noted) {
        this.say(`${where}: the ${stream} chain's hash there (Redis's note of the archive) is ` +
          `${archived} in PostgreSQL, Redis noted ${show(noted)}`);
      }
    }
  }

  /** Checks 1-3 on the archive as a whole: no gaps, positions, entries, ledger.accounts. */
  private async archive(): Promise<void> {
    const pg = this.pg as ArchiveReader;
    for (const stream of ['journal', 'rejections'] as const) {
      const table = STREAM_TABLE[stream][0];
      const s = await pg.summary(this.name, stream);
      // Read after the archive: Redis's newest is then at least what the archive could hold.
      const head = await this.streamHead(stream === 'journal' ? this.keys.journal()
        : this.keys.rejections());
      const unit = stream === 'journal' ? 'seq' : 'rejection';
      if (s.count !== s.max || s.min < 1n) {
        for (const n of await pg.belowOne(this.name, stream)) {
          this.say(`${unit} ${n}: a row of ${table} numbered below 1`);
        }
        for (const [lo, hi] of await pg.gaps(this.name, stream)) {
          this.say(`${unit} ${lo === hi ? lo : `${lo}-${hi}`}: missing from ${table}, which ` +
            `holds rows up to ${s.max}`);
        }
      }
      if (s.max > BigInt(head)) {
        this.say(`${unit} ${s.max}: in ${table}, past Redis's newest (${head})`);
      }
      if (s.position === undefined) {
        if (s.max > 0n) this.say(`${unit} ${s.max}: ${table} has rows, ledger.positions none`);
        continue;
      }
      if (s.position !== s.max) {
        this.say(`${unit} ${s.position}: ledger.positions' ${unit}, but ${table} holds rows up ` +
          `to ${s.max}`);
      }
      const want = s.position === 0n ? CHAIN_START : s.rowHash;
      if (s.positionHash !== want) {
        this.say(`${unit} ${s.position}: ledger.positions' ${stream} hash ${s.positionHash}, ` +
          `the row there has ${show(want)}`);
      }
      const noted = stream === 'journal' ? this.note.seq : this.note.rejection;
      if (BigInt(noted) > s.max) {
        this.say(`${unit} ${noted}: Redis notes the ${stream} archived up to it, ${table} ` +
          `holds rows up to ${s.max}`);
      }
    }
    await this.entries(pg);
    await this.missingEntries(pg);
  }

  /**
   * Check 3 on ledger.entries, in seq order: each entry is one of the two of its transfer's
   * row (whose columns the windows compared with its record), its running totals follow from
   * its account's entry before (a local check: a missing entry is one line, not one per entry
   * after it), each account's sums are ledger.accounts', and its sums up to p0 are what its
   * Redis balances start from.
   */
  private async entries(pg: ArchiveReader): Promise<void> {
    let totals = new Map<string, AccountRow>();
    const running = new Map<string, { debits: bigint; credits: bigint; dr: bigint; cr: bigint;
      dr0: bigint; cr0: bigint; last: string }>();
    await pg.entries(this.name, (rows) => {
      totals = rows;
    }, (page) => {
      for (const row of page) {
        this.entryOfRow(row);
        let st = running.get(row.account);
        if (st === undefined) {
          st = { debits: 0n, credits: 0n, dr: 0n, cr: 0n, dr0: 0n, cr0: 0n, last: '0' };
          running.set(row.account, st);
        }
        const where = `account ${row.account}: the entry at seq ${row.seq}`;
        const amount = int(row.amount) ?? 0n;
        const debit = amount < 0n ? -amount : 0n;
        const credit = amount > 0n ? amount : 0n;
        const debits = int(row.debits);
        const credits = int(row.credits);
        if (debits !== st.debits + debit) {
          this.say(`${where}: debits_after is ${row.debits}, the entry before leaves ` +
            `${st.debits} and this one debits ${debit}: ${st.debits + debit}`);
        }
        if (credits !== st.credits + credit) {
          this.say(`${where}: credits_after is ${row.credits}, the entry before leaves ` +
            `${st.credits} and this one credits ${credit}: ${st.credits + credit}`);
        }
        const balance = (credits ?? 0n) - (debits ?? 0n);
        if (int(row.balance) !== balance) {
          this.say(`${where}: balance_after is ${row.balance}, credits_after - debits_after ` +
            `is ${balance}`);
        }
        st.debits = debits ?? st.debits + debit;
        st.credits = credits ?? st.credits + credit;
        st.dr += debit;
        st.cr += credit;
        if (Number(row.seq) <= this.p0) {
          st.dr0 += debit;
          st.cr0 += credit;
        }
        st.last = row.seq;
      }
    });
    for (const [account, st] of running) {
      this.archived.set(account, { dr: st.dr0, cr: st.cr0 });
      const row = totals.get(account);
      totals.delete(account);
      if (row === undefined) {
        this.say(`account ${account}: entries up to seq ${st.last} in ledger.entries, no row ` +
          'in ledger.accounts');
        continue;
      }
      const pairs: [string, string, string][] = [['debits', row.debits, String(st.dr)],
        ['credits', row.credits, String(st.cr)], ['last_seq', row.last, st.last]];
      for (const [column, stored, sum] of pairs) {
        if (!same(stored, sum)) {
          this.say(`account ${account}: ledger.accounts.${column} is ${stored}, its entries ` +
            `in ledger.entries make ${sum}`);
        }
      }
    }
    for (const [id, row] of totals) {
      this.say(`account ${id}: ledger.accounts has debits ${row.debits} and credits ` +
        `${row.credits}, ledger.entries has no entry of it`);
    }
  }

  /** An entry is one of the two of its transfer's row, and says what that row says. */
  private entryOfRow(e: EntryRow): void {
    const where = `seq ${e.seq}: the entry of account ${e.account}`;
    const side = e.t_from === e.account ? 'from' : e.t_to === e.account ? 'to' : undefined;
    if (e.t_id === null || side === undefined || !CHAINED.has(e.t_kind ?? '')) {
      this.say(`${where} is not one of its transfer's two (ledger.transfers has ` +
        `${e.t_id === null ? 'no such row' : `a ${e.t_kind} from ${e.t_from} to ${e.t_to}`})`);
      return;
    }
    const s = Number(e.seq);
    (side === 'from' ? this.entryFrom : this.entryTo).set(s);
    const expected: [string, string | null, string | null][] = [
      ['transfer_id', e.id, e.t_id], ['kind', e.kind, e.t_kind],
      ['amount', e.amount, side === 'from' ? `-${e.t_amount}` : e.t_amount],
      ['counterparty', e.other, side === 'from' ? e.t_to : e.t_from],
      ['balance_after', e.balance, side === 'from' ? e.t_fb : e.t_tb],
      ['created_at', e.at, e.t_at],
    ];
    for (const [column, stored, want] of expected) {
      if (!same(stored, want)) {
        this.say(`${where}: ledger.entries.${column} is ${show(stored)}, its transfer's row ` +
          `says ${show(want)}`);
      }
    }
  }

  /** Each archived row that moves money has both its entries. */
  private async missingEntries(pg: ArchiveReader): Promise<void> {
    const missing: number[] = [];
    for (let s = 1; s <= this.head && missing.length < LIST_MAX; s++) {
      if (this.chainedInPg.has(s) && !(this.entryFrom.has(s) && this.entryTo.has(s))) {
        missing.push(s);
      }
    }
    if (missing.length === 0) return;
    const accounts = await pg.accountsOf(this.name, missing);
    for (const s of missing) {
      const [from, to] = accounts.get(s) ?? ['?', '?'];
      if (!this.entryFrom.has(s)) {
        this.say(`seq ${s}: no entry of account ${from} (its debit) in ledger.entries`);
      }
      if (!this.entryTo.has(s)) {
        this.say(`seq ${s}: no entry of account ${to} (its credit) in ledger.entries`);
      }
    }
  }

  /**
   * Checks 3 and 4 against Redis's accounts: debits and credits are the archived entries' up
   * to p0 plus the records after it. An account moved since the cut (its lseq past the head)
   * is compared at its lseq, with the records up to there.
   */
  private async balances(): Promise<void> {
    this.numbers.clear();
    await this.readNumbers();
    const byId = new Map<string, string>();
    for (const [n, id] of this.numbers) {
      const other = byId.get(id);
      if (other !== undefined) this.say(`account ${id}: numbers ${other} and ${n} both name it`);
      else byId.set(id, n);
    }
    const sums = new Map<string, bigint>();
    const late = new Map<string, { lseq: number; dr: bigint; cr: bigint; stored: [bigint,
      bigint] }>();
    const ids = [...byId.keys()];
    for (let i = 0; i < ids.length; i += REDIS_BATCH) {
      const batch = ids.slice(i, i + REDIS_BATCH);
      const pipeline = this.redis.pipeline();
      for (const id of batch) pipeline.hmget(this.keys.account(id), 'cur', 'dr', 'cr', 'lseq', 'n');
      const replies = (await pipeline.exec() ?? []).map(([error, reply]) => {
        if (error) throw error;
        return reply as (string | null)[];
      });
      // Read after the accounts: a live service's write moves an account's lseq and the
      // journal in one script, so the head read now is at least every lseq just read.
      const newest = await this.streamHead(this.keys.journal());
      batch.forEach((id, j) => {
        const [cur, drText, crText, lseqText, n] = replies[j] as (string | null)[];
        const where = `account ${id}`;
        if (cur == null && drText == null && crText == null) {
          this.say(`${where}: number ${byId.get(id)} names it, it has no account hash`);
          return;
        }
        if (n !== byId.get(id)) {
          this.say(`${where}: its hash's number is ${show(n)}, the number index's ` +
            `${byId.get(id)}`);
        }
        const dr = int(drText);
        const cr = int(crText);
        const lseq = Number(lseqText ?? '0');
        if (dr === undefined || cr === undefined) {
          this.say(`${where}: debits ${show(drText)} and credits ${show(crText)} in Redis are ` +
            'not integers');
          return;
        }
        const acc = this.accounts.get(id);
        const base = this.archived.get(id) ?? { dr: 0n, cr: 0n };
        const want = { dr: base.dr + (acc?.dr ?? 0n), cr: base.cr + (acc?.cr ?? 0n) };
        if (acc?.currency !== undefined && acc.currency !== cur) {
          this.say(`${where}: currency ${show(cur)} in Redis, its records are in ${acc.currency}`);
        }
        let balance = cr - dr;
        if (!(lseq <= newest)) {
          this.say(`${where}: lseq (its newest entry) is ${show(lseqText)} in Redis, past the ` +
            `journal's newest seq ${newest}`);
          return;
        }
        if (lseq > this.head) {
          late.set(id, { lseq, dr: want.dr, cr: want.cr, stored: [dr, cr] });
          balance = want.cr - want.dr;
        } else {
          this.compare(id, [dr, cr], want, `seq ${this.head}`);
          if (lseq !== (acc?.lastSeq ?? 0)) {
            this.say(`${where}: lseq (its newest entry) is ${show(lseqText)} in Redis, its ` +
              `records' newest is seq ${acc?.lastSeq ?? 0}`);
          }
        }
        const currency = cur ?? '';
        sums.set(currency, (sums.get(currency) ?? 0n) + balance);
      });
    }
    for (const id of new Set([...this.accounts.keys(), ...this.archived.keys()])) {
      if (!byId.has(id)) this.say(`account ${id}: has entries, Redis has no such account`);
    }
    if (late.size > 0) await this.lateAccounts(late);
    for (const [currency, sum] of sums) {
      if (sum !== 0n) this.say(`currency ${currency}: its accounts' balances sum to ${sum}, not 0`);
    }
  }

  private compare(id: string, stored: [bigint, bigint], want: { dr: bigint; cr: bigint },
    upTo: string): void {
    const [dr, cr] = stored;
    const from = this.pg === undefined ? 'its records'
      : `its archived entries up to seq ${this.p0} and its records after`;
    if (dr !== want.dr) {
      this.say(`account ${id}: debits ${dr} in Redis, ${want.dr} from ${from} (to ${upTo})`);
    }
    if (cr !== want.cr) {
      this.say(`account ${id}: credits ${cr} in Redis, ${want.cr} from ${from} (to ${upTo})`);
    }
    if (cr - dr !== want.cr - want.dr) {
      this.say(`account ${id}: balance ${cr - dr} in Redis, ${want.cr - want.dr} from ${from}` +
        ` (to ${upTo})`);
    }
  }

  /** Accounts moved after the cut: the records from the head to each one's lseq added. */
  private async lateAccounts(late: Map<string, { lseq: number; dr: bigint; cr: bigint;
    stored: [bigint, bigint] }>): Promise<void> {
    const top = Math.max(...[...late.values()].map((l) => l.lseq));
    for (let lo = this.head + 1; lo <= top; lo += WINDOW) {
      const hi = Math.min(lo + WINDOW - 1, top);
      const held = await this.xrange(this.keys.journal(), lo, hi);
      const archived = held.size === hi - lo + 1 ? new Map<number, string>()
        : await this.pg?.records(this.name, lo, hi) ?? new Map<number, string>();
      const lists = new Map<number, string[] | undefined>();
      for (let s = lo; s <= hi; s++) {
        const text = archived.get(s);
        lists.set(s, held.get(s) ?? (text === undefined ? undefined
          : this.parse(`seq ${s}`, text)));
      }
      await this.resolveNumbers(lists.values());
      for (const [s, fields] of lists) {
        if (fields === undefined) {
          this.say(`seq ${s}: in neither Redis's journal nor PostgreSQL`);
          continue;
        }
        const d = this.decode(s, fields, 'the');
        if (d === undefined || !CHAINED.has(d.t.kind)) continue;
        const amount = int(d.t.amount) ?? 0n;
        const from = late.get(d.t.from);
        const to = late.get(d.t.to);
        if (from !== undefined && s <= from.lseq) from.dr += amount;
        if (to !== undefined && s <= to.lseq) to.cr += amount;
      }
    }
    for (const [id, l] of late) this.compare(id, l.stored, l, `seq ${l.lseq}`);
  }

  /** Check 5: every index entry leads to its record, every record's id is indexed once. */
  private async index(): Promise<void> {
    // `<prefix>:{<ledger>}:x:`, from keys.ts (the one builder of key names), glob-escaped.
    const sample = this.keys.transferBucket('');
    const escaped = sample.slice(0, sample.lastIndexOf(':') + 1)
      .replace(/[*?[\]\\]/g, '\\$&');
    const buckets = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${escaped}*`, 'COUNT',
        1000);
      for (const key of batch) buckets.add(key);
      cursor = next;
    } while (cursor !== '0');
    const verify: string[] = [];
    const keys = [...buckets].sort();
    for (let i = 0; i < keys.length; i += REDIS_BATCH) {
      const batch = keys.slice(i, i + REDIS_BATCH);
      // Buffers: a field is bytes; compact ones are ASCII (src/ledger/keys.ts compactId), and
      // anything else in there is reported as it is.
      const pipeline = this.redis.pipeline();
      for (const key of batch) pipeline.callBuffer('HGETALL', key);
      const replies = await pipeline.exec() ?? [];
      batch.forEach((key, j) => {
        const [error, result] = replies[j] ?? [new Error('no reply'), undefined];
        const reply = error ?? result as Buffer[];
        const text = key.slice(key.lastIndexOf(':') + 1);
        const bucket = /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : NaN;
        if (!(bucket < TRANSFER_ID_BUCKETS)) {
          this.say(`id index: key ${key} is not a bucket (0 to ${TRANSFER_ID_BUCKETS - 1})`);
          return;
        }
        if (reply instanceof Error) {
          this.say(`id index: bucket ${bucket} cannot be read: ${reply.message}`);
          return;
        }
        for (let f = 0; f < reply.length; f += 2) {
          this.indexEntry(bucket, reply[f] as Buffer, (reply[f + 1] as Buffer).toString(),
            verify);
        }
      });
    }
    if (verify.length > 0) await this.verifyArchived(verify);
    for (const [id, v] of this.ids) {
      if (Math.abs(v) < INDEXED) this.say(`id ${id} (${refText(v)}): not in the id index`);
    }
  }

  private indexEntry(bucket: number, field: Buffer, value: string, verify: string[]): void {
    const text = field.toString('utf8');
    const uuid = uuidOfCompact(text);
    const compact = uuid !== undefined;
    const id = uuid ?? text;
    const where = `id ${id}`;
    if (transferBucketOf(id) !== bucket) {
      this.say(`${where}: in id bucket ${bucket}, its bucket is ${transferBucketOf(id)}`);
    }
    const known = this.ids.get(id);
    if (value === '') {
      if (!compact && compactId(id) !== undefined) {
        this.say(`${where}: archived in the index under its full form, not its compact one`);
      }
      if (known === undefined) {
        verify.push(id); // decided after the cut, or no record at all: the archive says
        return;
      }
      if (!this.mark(id, known)) return;
      const ref = refOf(known);
      const archived = ref < 0 ? this.rejectionInPg.has(-ref) : this.inPg.has(ref);
      if (this.pg === undefined) {
        this.unreadable++; // (its record is freed: the windows counted it already)
      } else if (!archived) {
        verify.push(id); // archived since its window was read
      }
      return;
    }
    if (compact) {
      this.say(`${where}: in its compact (archived) form with the reference ${value}`);
      return;
    }
    const ref = /^-?[1-9][0-9]*$/.test(value) ? Number(value) : NaN;
    if (Number.isNaN(ref)) {
      this.say(`${where}: the index's reference ${JSON.stringify(value)} is not a seq or -n`);
      return;
    }
    if (known === undefined) {
      const afterCut = ref < 0 ? -ref > this.rejectionsHead : ref > this.head;
      if (!afterCut) this.say(`${where}: the index names ${refText(ref)}, no record has this id`);
      return;
    }
    if (!this.mark(id, known)) return;
    if (refOf(known) !== ref) {
      this.say(`${where}: the index names ${refText(ref)}, its record is ${refText(refOf(known))}`);
    } else if (ref < 0 ? !this.rejectionInRedis.has(-ref) : !this.inRedis.has(ref)) {
      this.say(`${where}: the index names ${refText(ref)} in Redis, which has freed it`);
    }
  }

  /** Marks an id indexed; false (and a line) when an entry named it already. */
  private mark(id: string, known: number): boolean {
    if (Math.abs(known) >= INDEXED) {
      this.say(`id ${id} (${refText(refOf(known))}): in the id index twice`);
      return false;
    }
    this.ids.set(id, known >= 0 ? known + INDEXED : known - INDEXED);
    return true;
  }

  /** Archived index entries the windows did not see in PostgreSQL: asked of it now. */
  private async verifyArchived(ids: string[]): Promise<void> {
    const found = new Map<string, number>();
    for (let i = 0; i < ids.length; i += WINDOW) {
      const batch = ids.slice(i, i + WINDOW);
      const refs = await this.pg?.refsOf(this.name, batch) ?? new Map<string, number>();
      for (const [id, ref] of refs) found.set(id, ref);
    }
    for (const id of ids) {
      const ref = found.get(id);
      const known = this.ids.get(id);
      if (ref === undefined) {
        this.say(`id ${id}: archived in the index, in neither ledger.transfers nor ` +
          'ledger.rejections');
      } else if (known !== undefined && refOf(known) !== ref) {
        this.say(`id ${id}: archived at ${refText(ref)}, its record in Redis is ` +
          `${refText(refOf(known))}`);
      }
    }
  }
}

/** Every ledger: the index of ledgers, the default one, and any the archive holds. */
async function ledgerNames(redis: Redis, options: AuditOptions, archive: ArchiveReader |
  undefined): Promise<string[]> {
  if (options.ledgers !== undefined) return [...options.ledgers];
  const names = new Set(await redis.zrange(ledgerIndexKey(options.prefix), 0, -1));
  names.add(options.defaultLedger);
  for (const name of await archive?.ledgers() ?? []) names.add(name);
  return [...names].sort();
}

/** Audits every ledger (or `options.ledgers`). Throws when Redis or PostgreSQL fails. */
export async function audit(options: AuditOptions): Promise<AuditResult> {
  const result: AuditResult = { ledgers: [], records: 0, rejections: 0, divergences: [],
    unchecked: [] };
  const emit = (line: string) => {
    result.divergences.push(line);
    options.onDivergence?.(line);
  };
  let client: pg.Client | undefined;
  let archive: ArchiveReader | undefined;
  if (options.archiveUrl !== undefined) {
    client = new pg.Client({ connectionString: options.archiveUrl,
      connectionTimeoutMillis: 5_000, application_name: 'atomic-ledger-audit' });
    client.on('error', () => undefined);
    await client.connect();
    const { rows } = await client.query<{ present: boolean }>(
      "SELECT to_regclass('ledger.transfers') IS NOT NULL AS present");
    archive = new ArchiveReader(client, rows[0]?.present === true);
  }
  try {
    const names = await ledgerNames(options.redis, options, archive);
    for (const name of names) {
      let keys: LedgerKeys;
      try {
        keys = ledgerKeys(options.prefix, name);
      } catch {
        emit(`ledger ${JSON.stringify(name)}: not a valid ledger name`);
        continue;
      }
      result.ledgers.push(name);
      const one = new LedgerAudit(options.redis, keys, archive, emit);
      const unchecked = await one.run();
      if (unchecked !== '') result.unchecked.push(unchecked);
      result.records += one.records;
      result.rejections += one.rejections;
    }
  } finally {
    await client?.end();
  }
  return result;
}

export const AUDIT_NEEDS = 'audit needs REDIS_URL: the redis:// or rediss:// URL of the ' +
  'Redis the service uses (with REDIS_SENTINELS or REDIS_CLUSTER_NODES, the primary\'s, ' +
  'instead of those). It audits every ledger under LEDGER_KEY_PREFIX (default ledger) and ' +
  'LEDGER_NAME (default main), as the service has them; with LEDGER_ARCHIVE_URL (postgres://) ' +
  'also the PostgreSQL archive, which it needs once records are archived and freed from Redis.';

/**
 * `npm run audit`: one line per divergence on standard output. Exit code 0 when every check
 * holds, 1 on any divergence, 2 when it could not audit (configuration, a failure, or records
 * it could not read).
 */
export async function runAudit(env: NodeJS.ProcessEnv, out: Emit = console.log,
  err: Emit = console.error): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    err(`audit: ${(error as Error).message}`);
    return 2;
  }
  if (config.redisUrl === undefined) {
    err(AUDIT_NEEDS);
    return 2;
  }
  const redis = createRedis(config.redisUrl, { tlsCaFile: config.redisTlsCaFile });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const result = await audit({ redis, prefix: config.keyPrefix,
      defaultLedger: config.ledgerName, archiveUrl: config.archiveUrl, onDivergence: out });
    for (const line of result.unchecked) err(line);
    const what = `${result.ledgers.length} ledgers, ${result.records} records, ` +
      `${result.rejections} rejections`;
    if (result.divergences.length > 0) {
      err(`audit: ${result.divergences.length} divergences (${what})`);
      return 1;
    }
    if (result.unchecked.length > 0) return 2;
    out(`audit: every check holds (${what}${config.archiveUrl === undefined
      ? ', Redis only' : ', Redis and the archive'})`);
    return 0;
  } catch (error) {
    err(`audit failed: ${(error as Error).message}`);
    return 2;
  } finally {
    redis.disconnect();
  }
}
