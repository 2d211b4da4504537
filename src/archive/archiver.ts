/**
 * The archiver (LEDGER_ARCHIVE_URL): copies every decided record of every ledger, in order
 * (the journal by seq, the rejections by number), into PostgreSQL (src/archive/store.ts), then
 * notes in Redis how far PostgreSQL has committed them (lua/archive-7.lua). Each instance runs
 * one; a lock per ledger (`lock:archive`, the sweeper's and the followers' mechanism: src/redis/
 * lease.ts) lets one of them archive a ledger at a time, and PostgreSQL's own position decides
 * what is copied, so two archivers at once (a holder paused past its lease) still copy each
 * record once.
 */
import { limits } from '../config/limits.js';
import type { LedgerDirectory } from '../ledger/directory.js';
import { EveryLedger } from '../ledger/every-ledger.js';
import type { Ledger } from '../ledger/ledger.js';
import { isHold } from '../ledger/records.js';
import type { ArchiveChunk, KnownIds } from '../ledger/types.js';
import { Lease } from '../redis/lease.js';
import { RedisLock } from '../redis/lock.js';
import { migrate, MigrationMismatchError } from './migrate.js';
import {
  ArchiveGapError, ArchiveMismatchError, type ArchivePositions, ArchiveStore,
} from './store.js';

/** The lock's name (`<prefix>:{<ledger>}:lock:archive`) and the position's in `:p`. */
export const ARCHIVE_NAME = 'archive';

/** Pinned open holds (kept in Redis) are looked at again at most this often. */
const PINNED_CHECK_INTERVAL_MS = 1_000;

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** A promise run alongside others: its failure is seen where it is awaited, and only there. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** ledger_archive_errors_total's reasons. */
export const ARCHIVE_ERROR_REASONS = ['postgres', 'redis', 'mismatch'] as const;
export type ArchiveErrorReason = typeof ARCHIVE_ERROR_REASONS[number];

/** What the metrics see (src/metrics/). Each must not throw. */
export interface ArchiveObserver {
  archived?(records: number, rejections: number): void;
  /** Records freed from Redis (PostgreSQL has them). */
  freed?(records: number): void;
  /** A pass copied nothing: the service is busy and the lag under what it waits for. */
  yielded?(): void;
  /** A pass failed: `postgres` (unreachable or refused), `redis`, or `mismatch`. */
  error?(reason: ArchiveErrorReason): void;
  /**
   * After each page read, over the ledgers this instance archives: records not yet archived,
   * the oldest one's age, and all decided records (Redis's memory per record divides by it).
   */
  lag?(records: number, seconds: number, decided: number): void;
}

interface Progress {
  records: number;
  seconds: number;
  /** Decided records of the ledger (committed and rejected), archived or not. */
  decided: number;
}

/** The stored `createdAt` (ms) of a record's field list, or undefined. */
function createdAtOf(fields: readonly string[] | undefined): number | undefined {
  if (fields === undefined) return undefined;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'w') return Number(fields[i + 1]);
  }
  return undefined;
}

/**
 * Archiving yields to a busy service: `busy()` says whether the service is busy now (its event
 * loop's utilisation, src/archive/thread.ts), and while it is, the archiver waits until the
 * oldest record not yet copied is `lagS` seconds old. Past that it copies again, as much as
 * keeps the lag there; once the load eases it catches up. So a burst of transfers does not
 * share the CPU with archiving, and a sustained load still has its records archived (at a lag
 * of `lagS`, well under the alert's).
 */
export interface ArchiveYield {
  busy: () => boolean;
  lagS: number;
}

/** The age in seconds, at `now` (ms), of the oldest of these records (0: none). */
function ageOf(now: number, ...records: Array<readonly string[] | undefined>): number {
  const oldest = Math.min(...records.map((fields) => createdAtOf(fields) ?? Infinity));
  return oldest === Infinity ? 0 : Math.max(0, (now - oldest) / 1000);
}

/** One ledger's archiver. */
export class LedgerArchiver {
  private readonly lease: Lease;
  private stopped = false;
  /** PostgreSQL's position as this holder last committed it (undefined: read it again). */
  private position: ArchivePositions | undefined;

  constructor(private readonly ledger: Ledger, private readonly store: ArchiveStore,
    private readonly onProgress: (p: Progress) => void,
    private readonly observer: ArchiveObserver = {},
    private readonly keepRecords: number = limits.ARCHIVE_KEEP_RECORDS_DEFAULT,
    private readonly yieldTo?: ArchiveYield) {
    this.lease = new Lease(new RedisLock(ledger.connection, ledger.script('lock'),
      ledger.keys.lock(ARCHIVE_NAME), limits.ARCHIVE_LOCK_TTL_MS));
  }

  get holding(): boolean {
    return this.lease.holding;
  }

  /** The service is busy and this much lag (s) is still under what it may wait for. */
  private yields(ageS: number): boolean {
    const y = this.yieldTo;
    return y !== undefined && y.lagS > 0 && ageS < y.lagS && y.busy();
  }

  /**
   * Whether to copy from `at` now, or wait (ArchiveYield). Asked only of a busy service: then
   * the oldest record's age is read (one record of each stream) and reported as the lag.
   * `none`: nothing to copy; `lost`: the lock is lost.
   */
  private async waits(at: ArchivePositions): Promise<'copy' | 'wait' | 'none' | 'lost'> {
    const y = this.yieldTo;
    if (y === undefined || y.lagS === 0 || !y.busy()) return 'copy';
    const probe = await this.ledger.archiveRead(this.lease.lock, 1, at.seq, at.rejection);
    if (probe === undefined) return 'lost';
    this.report(probe, at.seq, at.rejection);
    if (probe.records.length === 0 && probe.rejections.length === 0) return 'none';
    return this.yields(ageOf(this.ledger.clock(), probe.records[0]?.fields,
      probe.rejections[0]?.fields)) ? 'wait' : 'copy';
  }

  /**
   * One pass: copies every record decided since the archive's position (a busy service's
   * archiver stops at what is younger than its ArchiveYield lag). Returns how many.
   * Pages overlap: while PostgreSQL commits one, the next is read from Redis and the one before
   * is freed, so the pass goes at the pace of its slowest part, not of all three added up.
   * PostgreSQL still takes the pages one at a time, in order (each continues the chain and the
   * totals of the one before).
   */
  async runOnce(): Promise<number> {
    const state = await this.lease.before();
    if (state !== 'kept') this.forget();
    if (state === 'none') return 0;
    let copied = 0;
    let reading: Promise<ArchiveChunk | undefined> | undefined;
    let freeing: Promise<boolean> = Promise.resolve(true);
    try {
      while (!this.stopped) {
        if (this.position === undefined) {
          try {
            this.position = await postgres(() => this.store.positions(this.name));
          } catch (error) {
            // PostgreSQL down: the lag still shows, from what Redis has noted as archived.
            await this.reportFromRedis();
            throw error;
          }
        }
        const at = this.position;
        if (reading === undefined) {
          const decision = await this.waits(at);
          if (decision === 'lost') this.lease.lost();
          if (decision === 'wait') this.observer.yielded?.();
          if (decision !== 'copy') break;
        }
        const chunk = await (reading ?? this.page(at));
        reading = undefined;
        if (chunk === undefined) {
          this.lease.lost();
          break;
        }
        this.report(chunk, at.seq, at.rejection);
        const full = chunk.records.length + chunk.rejections.length
          >= limits.ARCHIVE_PAGE_RECORDS_MAX;
        let next = at;
        if (chunk.records.length > 0 || chunk.rejections.length > 0) {
          // The page after this one, read while PostgreSQL takes this one; not while the
          // service is busy and the lag after this page is under what it waits for.
          if (full && !this.yields(ageOf(this.ledger.clock(), chunk.records.at(-1)?.fields,
            chunk.rejections.at(-1)?.fields))) {
            reading = quiet(this.page({ ...at,
              seq: chunk.records.at(-1)?.seq ?? at.seq,
              rejection: chunk.rejections.at(-1)?.n ?? at.rejection }));
          }
          // If this fails, PostgreSQL may still have committed (the answer was lost): the
          // position kept here is then behind, which is safe (the next append skips what the
          // archive holds), and the lag keeps showing from it.
          const { copied: [records = 0, rejections = 0], ...after } = await postgres(() =>
            this.store.append(this.name, chunk.records, chunk.rejections));
          next = after;
          this.position = next;
          this.remember(chunk);
          // The lag as this page leaves it: a pass now ends at a short page, and the gauges
          // would otherwise show the lag before the copy until the next pass.
          if (!full) this.report({ ...chunk, records: [], rejections: [] }, next.seq,
            next.rejection);
          // What PostgreSQL took now: records it had already (a page read again after a failed
          // answer) are skipped by it, and not counted again.
          copied += records + rejections;
          this.observer.archived?.(records, rejections);
        }
        if (!(await freeing)) break;
        // PostgreSQL cannot hold more than Redis ever decided: Redis lost records the archive
        // has (restored from an older copy, a failover that lost writes), or this archive is
        // another Redis's. Nothing is noted or freed; an operator looks (npm run audit).
        if (BigInt(next.seq) > BigInt(chunk.head)
          || BigInt(next.rejection) > BigInt(chunk.rejectionsHead)) {
          throw new ArchiveMismatchError(`archive of ${this.name}: PostgreSQL holds seq ` +
            `${next.seq} and rejection ${next.rejection}, past Redis's newest (${chunk.head}, ` +
            `${chunk.rejectionsHead}): Redis lost records the archive has, or the archive is ` +
            'another Redis\'s');
        }
        // Redis notes PostgreSQL's position, also when it is behind it (a crash between the
        // commit and this call): what the archive holds decides what Redis may free.
        if (BigInt(next.seq) > BigInt(chunk.savedSeq)
          || BigInt(next.rejection) > BigInt(chunk.savedRejection)) {
          if (!(await this.ledger.archiveSave(this.lease.lock, next.seq, next.rejection,
            next.journalHash, next.rejectionsHash))) {
            this.lease.lost();
            break;
          }
        }
        // Freed while PostgreSQL takes the next page; waited for before the next save.
        freeing = quiet(this.free(chunk, next));
        // A page short of full reached the head: the next pass (ARCHIVE_INTERVAL_MS later)
        // takes what came meanwhile as one page, rather than this one chasing the head with
        // pages of a few records, each a PostgreSQL transaction with its own flush.
        if (next === at || !full || !(await this.lease.during())) break;
      }
      await freeing;
    } catch (error) {
      this.forget();
      throw error;
    } finally {
      // A page read ahead and not used (lock lost, or an error): its failure is not this
      // pass's; it is dropped.
      void reading?.catch(() => undefined);
      void freeing.catch(() => undefined);
    }
    return copied;
  }

  private get name(): string {
    return this.ledger.keys.ledger;
  }

  /**
   * The ids of the records copied and not freed yet, per stream (KnownIds: contiguous from
   * `first`), so that a free need not read them back from Redis. Bounded: past
   * ARCHIVE_KNOWN_IDS_MAX the oldest are dropped, and a free reads those from the stream.
   */
  private known: { journal?: KnownIds; rejections?: KnownIds } = {};

  private forget(): void {
    this.position = undefined;
    this.known = {};
  }

  private remember(chunk: ArchiveChunk): void {
    const add = (run: KnownIds | undefined, number: string, fields: readonly string[],
      hold: boolean) => {
      const at = BigInt(number);
      const id = fields[1] as string;
      if (run === undefined || at > run.first + BigInt(run.ids.length)) {
        return { first: at, ids: [id], holds: [hold] };
      }
      if (at === run.first + BigInt(run.ids.length)) {
        run.ids.push(id);
        run.holds.push(hold);
      }
      return run;
    };
    for (const r of chunk.records) {
      this.known.journal = add(this.known.journal, r.seq, r.fields, isHold(r.fields));
    }
    for (const r of chunk.rejections) {
      this.known.rejections = add(this.known.rejections, r.n, r.fields, false);
    }
    for (const run of [this.known.journal, this.known.rejections]) {
      const over = (run?.ids.length ?? 0) - limits.ARCHIVE_KNOWN_IDS_MAX;
      if (run !== undefined && over > 0) {
        run.ids.splice(0, over);
        run.holds.splice(0, over);
        run.first += BigInt(over);
      }
    }
  }

  /** Drops the ids of records freed up to these positions. */
  private freedUpTo(seq: bigint, rejection: bigint): void {
    const drop = (run: KnownIds | undefined, upto: bigint) => {
      if (run === undefined || upto < run.first) return;
      const n = Number(upto - run.first + 1n);
      run.ids.splice(0, n);
      run.holds.splice(0, n);
      run.first += BigInt(n);
    };
    drop(this.known.journal, seq);
    drop(this.known.rejections, rejection);
  }

  /** When pinned open holds were last looked at (ms). */
  private pinnedCheckedAt = 0;

  /**
   * Frees from Redis what PostgreSQL has: all but the newest `keepRecords` of each stream,
   * and nothing a journal follower (the change-data publisher) has not handed on yet. False:
   * the lock is lost.
   */
  private async free(chunk: ArchiveChunk, at: ArchivePositions): Promise<boolean> {
    const positions = await this.ledger.connection.hgetall(this.ledger.keys.positions());
    // The newest record of each stream always stays: XREVRANGE names the stream's head.
    const keep = BigInt(Math.max(1, this.keepRecords));
    let upto = BigInt(at.seq);
    for (const [name, value] of Object.entries(positions)) {
      if (name !== ARCHIVE_NAME && !name.includes(':')) upto = min(upto, BigInt(value));
    }
    upto = min(upto, BigInt(chunk.head) - keep);
    const uptoN = min(BigInt(at.rejection), BigInt(chunk.rejectionsHead) - keep);
    let pinnedToo = Date.now() - this.pinnedCheckedAt > PINNED_CHECK_INTERVAL_MS
      && positions['archive:f'] !== undefined;
    if (pinnedToo) this.pinnedCheckedAt = Date.now();
    if (!pinnedToo && upto <= BigInt(positions['archive:f'] ?? '0')
      && uptoN <= BigInt(positions['archive:fr'] ?? '0')) return true;
    for (;;) {
      const done = await this.ledger.archiveFree(this.lease.lock, upto < 0n ? 0n : upto,
        uptoN < 0n ? 0n : uptoN, pinnedToo, this.known);
      if (done === undefined) {
        this.lease.lost();
        return false;
      }
      this.freedUpTo(done.seq, done.rejection);
      this.observer.freed?.(done.freed);
      pinnedToo = false;
      if (!done.more || this.stopped) return true;
    }
  }

  private report(chunk: ArchiveChunk, seq: string, rejection: string): void {
    this.onProgress({
      records: Number(chunk.head) - Number(seq) + Number(chunk.rejectionsHead) - Number(rejection),
      seconds: ageOf(this.ledger.clock(), chunk.records[0]?.fields, chunk.rejections[0]?.fields),
      decided: Number(chunk.head) + Number(chunk.rejectionsHead) });
  }

  private async reportFromRedis(): Promise<void> {
    const [seq, rejection] = await this.ledger.archivedInRedis();
    const chunk = await this.ledger.archiveRead(this.lease.lock, 1, seq, rejection);
    if (chunk !== undefined) this.report(chunk, seq, rejection);
  }

  /** Up to ARCHIVE_PAGE_RECORDS_MAX records of each stream after `at`, in chunks. */
  private async page(at: ArchivePositions): Promise<ArchiveChunk | undefined> {
    const chunkSize = limits.JOURNAL_READ_CHUNK_MAX;
    let seq = at.seq;
    let rejection = at.rejection;
    let page: ArchiveChunk | undefined;
    for (;;) {
      const chunk = await this.ledger.archiveRead(this.lease.lock, chunkSize, seq, rejection);
      if (chunk === undefined) return undefined;
      if (page === undefined) {
        page = chunk;
      } else {
        page.records.push(...chunk.records);
        page.rejections.push(...chunk.rejections);
        // The newest heads: records decided since the first chunk are in the later ones.
        page.head = chunk.head;
        page.rejectionsHead = chunk.rejectionsHead;
      }
      // A chunk short of what was asked is that stream's end.
      if ((chunk.records.length < chunkSize && chunk.rejections.length < chunkSize)
        || page.records.length + page.rejections.length >= limits.ARCHIVE_PAGE_RECORDS_MAX) {
        return page;
      }
      seq = page.records.at(-1)?.seq ?? seq;
      rejection = page.rejections.at(-1)?.n ?? rejection;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.lease.release();
  }
}

export interface ArchiverOptions {
  directory: LedgerDirectory;
  /** The archive; closed by whoever made it, after the archiver stopped. */
  store: ArchiveStore;
  /**
   * The newest records of each stream kept in Redis once archived (LEDGER_ARCHIVE_KEEP; at
   * least 1: the newest record names the stream's head).
   */
  keepRecords?: number;
  observer?: ArchiveObserver;
  /** A ledger's pass failed (PostgreSQL or Redis down): logged; the next pass tries again. */
  onError: (error: unknown) => void;
  intervalMs?: number;
  /** Wait while the service is busy (ArchiveYield); undefined: never wait. */
  yieldTo?: ArchiveYield;
}

/** Every ledger's archiver, on one timer (src/ledger/every-ledger.ts). */
export class Archiver {
  readonly store: ArchiveStore;
  private readonly every: EveryLedger<LedgerArchiver, number>;
  private readonly progress = new Map<string, Progress>();
  /** The schema is current (src/archive/migrate.ts): checked once, before the first copy. */
  private migrated: Promise<unknown> | undefined;

  constructor(options: ArchiverOptions) {
    const observer = options.observer ?? {};
    this.store = options.store;
    this.every = new EveryLedger({
      directory: options.directory,
      intervalMs: options.intervalMs ?? limits.ARCHIVE_INTERVAL_MS,
      onError: (error) => {
        observer.error?.(reasonOf(error));
        options.onError(error);
      },
      make: (ledger) => new LedgerArchiver(ledger, this.store, (p) => {
        this.progress.set(ledger.keys.ledger, p);
        observer.lag?.(this.lagRecords(), this.lagSeconds(), this.decided());
      }, observer, options.keepRecords, options.yieldTo),
      work: async (archiver, ledger) => {
        // PostgreSQL may be down when the service starts: transfers go on, and the schema is
        // brought up to date by the first pass that reaches it.
        this.migrated ??= postgres(() => migrate(this.store.pool)).catch((error: unknown) => {
          this.migrated = undefined;
          throw error;
        });
        await this.migrated;
        try {
          return await archiver.runOnce();
        } finally {
          if (!archiver.holding) this.progress.delete(ledger.keys.ledger);
        }
      },
      afterPass: () => observer.lag?.(this.lagRecords(), this.lagSeconds(), this.decided()),
    });
  }

  start(): void {
    this.every.start();
  }

  async stop(): Promise<void> {
    await this.every.stop();
  }

  /** One pass over every ledger (tests): the records copied. */
  async archiveOnce(): Promise<number> {
    return (await this.every.runOnce()).reduce((sum, n) => sum + n, 0);
  }

  lagRecords(): number {
    let sum = 0;
    for (const p of this.progress.values()) sum += p.records;
    return sum;
  }

  decided(): number {
    let sum = 0;
    for (const p of this.progress.values()) sum += p.decided;
    return sum;
  }

  lagSeconds(): number {
    let max = 0;
    for (const p of this.progress.values()) max = Math.max(max, p.seconds);
    return max;
  }
}

/** PostgreSQL failed (down, refused, timed out): told apart from Redis's failures. */
export class ArchivePostgresError extends Error {}

async function postgres<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ArchiveMismatchError || error instanceof ArchiveGapError
      || error instanceof MigrationMismatchError) {
      throw error;
    }
    throw new ArchivePostgresError(`archive: PostgreSQL: ${(error as Error).message}`,
      { cause: error });
  }
}

/** A failure's metric label (ledger_archive_errors_total{reason}). */
function reasonOf(error: unknown): ArchiveErrorReason {
  if (error instanceof ArchiveMismatchError || error instanceof ArchiveGapError
    || error instanceof MigrationMismatchError) {
    return 'mismatch';
  }
  return error instanceof ArchivePostgresError ? 'postgres' : 'redis';
}
