/**
 * A journal follower: hands a ledger's committed records, in seq order, to something outside
 * Redis (a sink: the change-data publisher; later the archive), and saves how far it got only
 * once the sink has them. A crash between the two hands some records on again; nothing is ever
 * skipped. So a sink must accept a record twice (the publisher's consumers deduplicate by
 * message id).
 *
 * One follower of a name per ledger at a time, under that ledger's lock `<name>`
 * (src/redis/lock.ts, the mechanism the hold sweeper uses): the lock saves duplicate work and
 * keeps the order. lua/follow-5.lua fences both the page and the position by the lock's token,
 * so a holder paused past its lease can neither read as the holder nor move the position.
 */
import { limits } from '../config/limits.js';
import { Lease } from '../redis/lease.js';
import { RedisLock } from '../redis/lock.js';
import type { Ledger } from './ledger.js';
import type { FollowPage, Transfer } from './types.js';

export interface FollowerSink {
  /** Hands the records on; resolves once the other side has them (throws: not handed on). */
  deliver(ledger: string, records: readonly Transfer[]): Promise<void>;
}

/** What one follower pass saw, for metrics. */
export interface FollowerProgress {
  ledger: string;
  /** Records committed but not yet handed on, when last looked. */
  lagRecords: number;
  /** Age of the oldest of them (s; 0 when none). */
  lagSeconds: number;
}

export interface FollowerOptions {
  ledger: Ledger;
  /** The follower's name: its lock and its saved position are named after it (a-z). */
  name: string;
  sink: FollowerSink;
  lockTtlMs: number;
  /**
   * Records per page: what the sink takes at once, read in chunks of at most
   * JOURNAL_READ_CHUNK_MAX (one script call each). A page is one wait for the other side.
   */
  pageSize: number;
  /** After each page read: how far behind this ledger's follower is. Must not throw. */
  onProgress?: (progress: FollowerProgress) => void;
  /** After each page the sink took. Must not throw. */
  onDelivered?: (ledger: string, records: number) => void;
}

export class JournalFollower {
  readonly lock: RedisLock;
  private readonly lease: Lease;
  private stopped = false;

  constructor(private readonly options: FollowerOptions) {
    const { ledger, name, lockTtlMs } = options;
    this.lock = new RedisLock(ledger.connection, ledger.script('lock'), ledger.keys.lock(name),
      lockTtlMs);
    this.lease = new Lease(this.lock);
  }

  /** Whether the last pass held the lock (it publishes this ledger now). */
  get holding(): boolean {
    return this.lease.holding;
  }

  /** The position this follower saved last while it held the lock ('': not known). */
  private saved = '';

  /**
   * One pass: if this instance holds (or takes) the lock, hands on every record committed
   * since the saved position, page by page. Returns the records handed on. A sink's failure
   * is thrown after the lag was reported; the next pass starts again from the saved position.
   * Idle passes are cheap (src/redis/lease.ts): when the journal's newest seq is the position
   * this holder saved, a pass stops there (one XREVRANGE).
   */
  async runOnce(): Promise<number> {
    const { ledger, name, sink, pageSize } = this.options;
    const state = await this.lease.before();
    // Someone else may have moved the position while this instance did not hold the lock.
    if (state !== 'kept') this.saved = '';
    if (state === 'none') return 0;
    if (this.saved !== '' && await ledger.journalHead() === this.saved) {
      this.options.onProgress?.({ ledger: ledger.keys.ledger, lagRecords: 0, lagSeconds: 0 });
      return 0;
    }
    let handed = 0;
    while (!this.stopped) {
      const page = await this.page(pageSize);
      if (page === undefined) { // another instance holds the lock now
        this.lease.lost();
        this.saved = '';
        break;
      }
      const first = page.records[0];
      this.options.onProgress?.({ ledger: ledger.keys.ledger,
        lagRecords: Number(page.head) - Number(page.position),
        lagSeconds: first === undefined ? 0
          : Math.max(0, (ledger.clock() - Date.parse(first.createdAt)) / 1000) });
      const last = page.records.at(-1);
      if (last?.seq === undefined) {
        this.saved = page.position;
        break;
      }
      this.saved = '';
      await sink.deliver(ledger.keys.ledger, page.records);
      if (!(await ledger.saveFollowPosition(this.lock, name, last.seq))) {
        this.lease.lost();
        break;
      }
      this.saved = last.seq;
      handed += page.records.length;
      this.options.onDelivered?.(ledger.keys.ledger, page.records.length);
      // A long backlog: renew the lease as we go, and stop if another instance took it.
      if (!(await this.lease.during())) {
        this.saved = '';
        break;
      }
    }
    return handed;
  }

  /** Up to `size` records after the saved position, in chunks (undefined: lock lost). */
  private async page(size: number): Promise<FollowPage | undefined> {
    const { ledger, name } = this.options;
    const chunk = Math.min(size, limits.JOURNAL_READ_CHUNK_MAX);
    const page = await ledger.follow(this.lock, name, chunk);
    let asked = chunk;
    let got = page?.records.length ?? 0;
    // A chunk short of what was asked is the journal's end.
    while (page !== undefined && got === asked && page.records.length < size) {
      const last = page.records.at(-1)?.seq as string;
      asked = Math.min(chunk, size - page.records.length);
      const next = await ledger.follow(this.lock, name, asked, last);
      if (next === undefined) return undefined;
      got = next.records.length;
      page.records.push(...next.records);
      page.head = next.head;
    }
    return page;
  }

  /** Stops after the page in hand and releases the lock if held. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.lease.release();
  }
}
