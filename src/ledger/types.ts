/**
 * The ledger's public types: what callers give it and what it answers. Money is a canonical
 * decimal string everywhere (never a JS number).
 */
import type { ReadObserver } from '../redis/replicas.js';
import type { ReplicaAckObserver } from '../redis/replica-acks.js';
import type { ScriptObserver } from './scripts.js';
import type { RejectionReason } from './status.js';

export type Metadata = Record<string, string>;

export interface AccountInput {
  id?: string;
  currency: string;
  /** Canonical decimal or 'unlimited'. */
  overdraftLimit: string;
  metadata: Metadata;
  /** The API key's name (never a secret). */
  createdBy: string;
}

export interface Account {
  id: string;
  currency: string;
  balance: string;
  debits: string;
  credits: string;
  /** Sums of the open holds debiting and crediting it. */
  debitsPending: string;
  creditsPending: string;
  /** balance − debitsPending: what a new transfer or hold may take before the overdraft. */
  available: string;
  overdraftLimit: string;
  metadata: Metadata;
  createdAt: string;
  createdBy?: string;
  /** When it was closed, or null while open. */
  closedAt: string | null;
}

/** What a record is (RECORD_KINDS in records.ts stores it). */
export type RecordKind = 'transfer' | 'hold' | 'post' | 'void' | 'reversal';

/** A hold's life: pending until one of the others, once. */
export type PendingStatus = 'pending' | 'posted' | 'voided' | 'expired';

/** The fields that name a transfer's movement: enough to describe a rejection. */
export interface TransferFields {
  id: string;
  from: string;
  to: string;
  /** Canonical decimal 1 .. 2^128−1. */
  amount: string;
  currency?: string;
}

export interface TransferInput extends TransferFields {
  metadata: Metadata;
  /** The API key's name (never a secret). */
  createdBy: string;
  /** A hold: reserves the amount and moves nothing until posted. */
  pending?: boolean;
  /** A hold's timeout, 1 .. HOLD_TIMEOUT_SECONDS_MAX seconds (not money); none if absent. */
  timeoutSeconds?: number;
}

/** A post (`amount`: default all of the hold) or void of the hold `holdId`. */
export interface SettleInput {
  id: string;
  holdId: string;
  /** Canonical decimal; only for a post. */
  amount?: string;
  metadata: Metadata;
  createdBy: string;
}

/** A reversal of (part of) the transfer or post `transferId`. */
export interface ReversalInput {
  id: string;
  transferId: string;
  /** Canonical decimal; default: all that is still reversible. */
  amount?: string;
  metadata: Metadata;
  createdBy: string;
}

export interface Transfer extends TransferFields {
  /** Absent only on a rejection where neither the client nor an account named one. */
  currency?: string;
  status: 'committed' | 'rejected';
  reason?: RejectionReason;
  seq?: string;
  fromBalanceAfter?: string;
  toBalanceAfter?: string;
  metadata: Metadata;
  createdAt: string;
  createdBy?: string;
  kind: RecordKind;
  /** A committed hold's state now (a replay answers as first decided: pending). */
  pendingStatus?: PendingStatus;
  /** A posted hold's posted amount. */
  postedAmount?: string;
  /** A committed hold's expiry, or null without a timeout. */
  expiresAt?: string | null;
  /** The hold a post or void settles. */
  pendingId?: string;
  /** The transfer or post a reversal reverses. */
  reverses?: string;
  /** A committed transfer's or post's total reversed so far. */
  reversedAmount?: string;
}

export interface Entry {
  transferId: string;
  /** Only records that change posted balances are entries. */
  kind: 'transfer' | 'post' | 'reversal';
  seq: string;
  amount: string;
  balanceAfter: string;
  counterparty: string;
  createdAt: string;
}

export type CreateAccountOutcome =
  | { kind: 'created'; account: Account }
  | { kind: 'replayed'; account: Account }
  | { kind: 'conflict'; fields: string[] };

export type TransferOutcome =
  /** Decided now (committed or rejected) or, when `replayed`, decided before. */
  | { kind: 'decided'; transfer: Transfer; replayed: boolean }
  | { kind: 'conflict'; fields: string[] };

export interface BatchInput {
  transfers: TransferInput[];
  /** All or nothing (one script) rather than each transfer on its own (chunked scripts). */
  atomic: boolean;
}

/** An atomic batch that wrote nothing, and the transfer (0-based `index`) that spoiled it. */
export type BatchRefusal =
  /** Transfer `index` would be rejected for `reason`. */
  | { kind: 'atomicRejected'; index: number; reason: RejectionReason }
  /**
   * Transfer `index` has a decided id, among new ones (`fields` empty) or with other fields than
   * decided (`fields` names them).
   */
  | { kind: 'atomicExists'; index: number; fields: string[] };

export type BatchOutcome =
  /** Every transfer's outcome, in order (for an atomic batch: all committed, or all replayed). */
  | { kind: 'decided'; results: TransferOutcome[] }
  | BatchRefusal;

export interface EntriesPage {
  entries: Entry[];
  /** Seq of the newest entry of the next page (older than this one), null at the end. */
  nextSeq: string | null;
}

/** The ledger's write operations, as its observer names them. */
export type WriteOperation = 'account' | 'transfer' | 'batch' | 'settle' | 'reversal' | 'close'
  | 'expire' | 'ledger';

/** Committed records in seq order (`GET /journal`), each with its `seq`. */
export interface JournalPage {
  records: Transfer[];
  /** The journal's newest seq when it was read ('0': empty). */
  head: string;
}

/** A journal follower's page (src/ledger/follower.ts): its saved position, the records after. */
/** A committed record as Redis stores it: XRANGE's field/value list, and its accounts' ids. */
export interface ArchiveRecord {
  seq: string;
  fields: string[];
  fromId: string;
  toId: string;
}

/** A rejected record as Redis stores it. */
export interface ArchiveRejection {
  n: string;
  fields: string[];
}

/** A chunk the archiver read (lua/archive-7.lua), and the positions Redis has noted. */
export interface ArchiveChunk {
  records: ArchiveRecord[];
  /** The journal's newest seq, and the rejections' newest number ('0': none). */
  head: string;
  rejections: ArchiveRejection[];
  rejectionsHead: string;
  savedSeq: string;
  savedRejection: string;
}

/**
 * Ids the archiver already holds, so a free need not read the records back: `ids[i]` is the id
 * of number `first + i` of its stream (a journal seq or a rejection number), with no gap.
 */
export interface KnownIds {
  first: bigint;
  ids: string[];
  /** `holds[i]`: that record is a hold (the journal's; a free pins an open one). */
  holds: boolean[];
}

/** A decided record read back from the archive, as Redis stored it (records.ts decodes it). */
export interface ArchivedRecord {
  /** Its seq, or '-<n>' for a rejection. */
  ref: string;
  fields: string[];
  /** A committed record's accounts' ids ('' for a rejection, which names them itself). */
  fromId: string;
  toId: string;
}

/** What the ledger reads from the PostgreSQL archive (src/archive/store.ts implements it). */
export interface ArchiveReader {
  /** The decided record `id` of `ledger`; undefined when the archive does not hold it. */
  record(ledger: string, id: string): Promise<ArchivedRecord | undefined>;
  /** Up to `limit` entries of an account, newest first, from seq `from` (included) down. */
  entries(ledger: string, account: string, from: string, limit: number): Promise<EntriesPage>;
  /** Up to `limit` committed records after seq `after` and up to `upto`, in seq order. */
  journal(ledger: string, after: string, upto: string, limit: number): Promise<ArchiveRecord[]>;
  /** An account's totals after its last archived entry at or before `seq` (zeros: none). */
  totalsAt(ledger: string, account: string, seq: string): Promise<Totals>;
  /** The newest archived seq whose record was committed at or before `atMs` ('0': none). */
  seqAt(ledger: string, atMs: number): Promise<string>;
}

/** An account's posted totals (decimal strings). */
export interface Totals {
  debits: string;
  credits: string;
}

/** GET /accounts/{id}/balance: the totals as they stood after the record at `seq`. */
export interface BalanceAt {
  balance: string;
  debits: string;
  credits: string;
  seq: string;
}

export interface FollowPage extends JournalPage {
  position: string;
}

export type CloseAccountOutcome =
  | { kind: 'closed'; account: Account; replayed: boolean }
  | { kind: 'notFound' };

/** One call of the expiry sweep: the holds it released (oldest first) and those it skipped. */
export interface ExpiryOutcome {
  released: Array<{ seq: string; expiresAt: string; amount: string; currency: string }>;
  skipped: number;
}

/**
 * What the ledger reports as it works, given at construction (the metrics implement it; the
 * ledger knows nothing of the metrics library). Every member must not throw: a metrics failure
 * must never change an outcome.
 */
export interface LedgerObserver extends ScriptObserver, ReadObserver, ReplicaAckObserver {
  /** An account creation decided (created, replayed or conflicting). */
  accountDecided?(outcome: CreateAccountOutcome): void;
  /** A transfer decided, alone or in a batch (each of a batch's transfers once). */
  transferDecided?(outcome: TransferOutcome): void;
  /** An atomic batch refused whole: nothing written. */
  batchRefused?(refusal: BatchRefusal): void;
  /** Holds released by the expiry sweep (not those a post or void found expired). */
  holdsExpired?(outcome: ExpiryOutcome, nowMs: number): void;
  /** A write whose outcome the ledger could not learn (Redis failed) or that hit a bug. */
  writeFailed?(operation: WriteOperation, error: unknown): void;
  /** Redis Cluster refused a script in a way that proves it did not run; it is sent again. */
  clusterRetried?(reason: string): void;
}
