/**
 * Which ledgers exist, and a handle (a Ledger) for each one in use. No Fastify here.
 *
 * A ledger's existence is its record in its own meta hash (lua/create-ledger-1.lua), in the
 * slot of its own data: finding a ledger reads only that slot, once per instance (ledgers are
 * never deleted, so a handle, once found, stays valid), and no request touches a key that all
 * ledgers share. The shared index (`<prefix>:ledgers`, keys.ts) serves only `GET /ledgers` and
 * the hold sweeper's list; `POST /ledgers` writes the record first and the index second, so a
 * crash between the two leaves a ledger that works but is not listed until the create is
 * retried (a retry, with the same fields, adds it).
 */
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import { LEDGER_NAME_PATTERN, ledgerIndexKey } from './keys.js';
import type { CreateLedgerOutcome, Ledger, LedgerRecord } from './ledger.js';
import type { Metadata } from './types.js';

/** How often the list of all ledgers is read again for background work (the sweeper). */
const NAMES_REFRESH_MS = 1000;

export interface LedgerPage {
  ledgers: LedgerRecord[];
  /** The last name of this page when more may follow (pass it as `after`), else null. */
  next: string | null;
}

export class LedgerDirectory {
  /** Handles in use, least recently used first (a Map keeps insertion order). */
  private readonly handles = new Map<string, Ledger>();
  private readonly indexKey: string;
  private names: { at: number; list: string[] } | undefined;
  private defaultRecorded: Promise<void> | undefined;

  /**
   * `main`: the default ledger (LEDGER_NAME), which always exists; every other handle is its
   * sibling (same connections, scripts and settings). `redis` reads and writes the index.
   */
  constructor(readonly main: Ledger, private readonly redis: Redis) {
    this.indexKey = ledgerIndexKey(main.keys.prefix);
  }

  get defaultName(): string {
    return this.main.keys.ledger;
  }

  /** The ledger called `name`, or undefined when it does not exist (or cannot: a bad name). */
  async find(name: string): Promise<Ledger | undefined> {
    if (name === this.defaultName) return this.main;
    const held = this.handles.get(name);
    if (held !== undefined) {
      this.handles.delete(name);
      this.handles.set(name, held);
      return held;
    }
    if (!LEDGER_NAME_PATTERN.test(name)) return undefined;
    const ledger = this.main.sibling(name);
    // On the primary: a replica may not have a ledger created a moment ago.
    if (await ledger.record({ from: 'primary' }) === undefined) return undefined;
    this.hold(name, ledger);
    return ledger;
  }

  private hold(name: string, ledger: Ledger): void {
    this.handles.set(name, ledger);
    if (this.handles.size > limits.LEDGERS_CACHED_MAX) {
      const oldest = this.handles.keys().next().value;
      if (oldest !== undefined) this.handles.delete(oldest);
    }
  }

  /** Creates a ledger, once; the same name again is a replay or a conflict (other fields). */
  async create(name: string, metadata: Metadata): Promise<CreateLedgerOutcome> {
    if (name !== this.defaultName && !LEDGER_NAME_PATTERN.test(name)) {
      throw new Error(`invalid ledger name ${JSON.stringify(name)}`);
    }
    const ledger = name === this.defaultName ? this.main
      : this.handles.get(name) ?? this.main.sibling(name);
    const outcome = await ledger.createRecord(metadata);
    if (outcome.kind === 'conflict' || ledger === this.main) return outcome;
    await this.redis.zadd(this.indexKey, 0, name);
    this.hold(name, ledger);
    return outcome;
  }

  /**
   * The default ledger's record, written once per instance (idempotent). It is not in the
   * index: every instance has it as `main` already, and an instance's default ledger is listed
   * by that instance (tests run many instances with a default ledger each on one Redis).
   */
  recordDefault(): Promise<void> {
    this.defaultRecorded ??= this.create(this.defaultName, {}).then(() => undefined,
      (error: unknown) => {
        this.defaultRecorded = undefined; // try again next time
        throw error;
      });
    return this.defaultRecorded;
  }

  /** A ledger's record; undefined when it does not exist. */
  async describe(name: string): Promise<LedgerRecord | undefined> {
    if (name === this.defaultName) {
      const record = await this.main.record({ from: 'primary' });
      if (record !== undefined) return record;
      // The default ledger always exists: record it now, again if its record was lost since
      // this instance wrote it (a restore, a failover without acks).
      this.defaultRecorded = undefined;
      await this.recordDefault();
      return this.main.record({ from: 'primary' });
    }
    const ledger = await this.find(name);
    return ledger === undefined ? undefined : ledger.record({ from: 'primary' });
  }

  /**
   * Ledgers in name order after `after`, at most `limit`; `only`: just these names (a key
   * restricted to them), whether or not they exist.
   */
  async list(after: string | undefined, limit: number,
    only?: ReadonlySet<string>): Promise<LedgerPage> {
    // Name order as the index has it (bytes: these are ASCII names).
    const order = (names: string[]) => names.filter((n) => after === undefined || n > after)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let records: LedgerRecord[];
    if (only === undefined) {
      const names = await this.redis.zrangebylex(this.indexKey,
        after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, limit + 1);
      if (!names.includes(this.defaultName)) names.push(this.defaultName);
      const page = order(names).slice(0, limit + 1);
      // Every indexed name has its record (written before the index entry).
      records = (await Promise.all(page.map((name) => this.describe(name))))
        .filter((r): r is LedgerRecord => r !== undefined);
    } else {
      // A key's own few names: those that exist, so that a page is never short of them.
      records = (await Promise.all(order([...only]).map((name) => this.describe(name))))
        .filter((r): r is LedgerRecord => r !== undefined).slice(0, limit + 1);
    }
    const more = records.length > limit;
    const ledgers = records.slice(0, limit);
    return { ledgers, next: more ? (ledgers[ledgers.length - 1] as LedgerRecord).name : null };
  }

  /**
   * Every ledger, for background work (the hold sweeper, the holds gauges): the index, read at
   * most every NAMES_REFRESH_MS, plus the handles this instance holds (a ledger it created a
   * moment ago is among them).
   */
  async all(): Promise<Ledger[]> {
    const now = Date.now();
    if (this.names === undefined || now - this.names.at >= NAMES_REFRESH_MS) {
      // An index that cannot be read (its node down, an ACL without it) must not stop the work
      // on the ledgers known here: the last list stands until the next read succeeds.
      this.names = { at: now, list: await this.readIndex().catch(() => this.names?.list ?? []) };
    }
    const out = new Map<string, Ledger>([[this.defaultName, this.main], ...this.handles]);
    for (const name of this.names.list) {
      if (!out.has(name) && LEDGER_NAME_PATTERN.test(name)) {
        const ledger = this.main.sibling(name);
        this.hold(name, ledger);
        out.set(name, ledger);
      }
    }
    return [...out.values()];
  }

  private async readIndex(): Promise<string[]> {
    const list: string[] = [];
    let after = '-';
    for (;;) {
      const part = await this.redis.zrangebylex(this.indexKey, after, '+', 'LIMIT', 0,
        limits.LEDGERS_PAGE_LIMIT_MAX);
      list.push(...part);
      if (part.length < limits.LEDGERS_PAGE_LIMIT_MAX) return list;
      after = `(${part[part.length - 1] as string}`;
    }
  }

  /** Open holds per currency over every ledger (the holds gauges: no `ledger` label). */
  async openHolds(): Promise<Map<string, { count: number; amount: string }>> {
    const each = await Promise.all((await this.all()).map((l) => l.openHolds()));
    const sum = new Map<string, { count: number; amount: string }>();
    for (const holds of each) {
      for (const [currency, { count, amount }] of holds) {
        const entry = sum.get(currency) ?? { count: 0, amount: '0' };
        sum.set(currency, { count: entry.count + count,
          amount: (BigInt(entry.amount) + BigInt(amount)).toString() });
      }
    }
    return sum;
  }

  /** The oldest expired, unreleased hold's expiry over every ledger (ms), or null. */
  async oldestExpiredHold(): Promise<number | null> {
    const each = await Promise.all((await this.all()).map((l) => l.oldestExpiredHold()));
    const found = each.filter((t): t is number => t !== null);
    return found.length === 0 ? null : Math.min(...found);
  }
}
