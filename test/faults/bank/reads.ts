/**
 * How the checker reads the ledger: over HTTP only (as a client would), every read retried until
 * it answers (a read is always safe to retry), and what it finds collected by kind.
 */
import type { Op } from './history.js';
import { AUTH_HEADER } from '../../helpers/auth.js';

/** Reads are retried this often (a read is always safe to retry). */
const READ_ATTEMPTS_MAX = 50;
const READ_RETRY_MS = 100;
/** A Retry-After longer than this is waited this long only (the test has a deadline). */
const READ_RETRY_AFTER_MAX_MS = 1000;
const READ_TIMEOUT_MS = 5000;
const CHECK_CONCURRENCY = 10;
/** Entries per page: the contract's largest `limit`. */
const PAGE_LIMIT = 1000;
/** A scenario with more violations than this is broken enough; list the first ones only. */
const VIOLATIONS_LISTED_MAX = 40;

export interface Entry {
  transferId: string;
  kind: string;
  seq: string;
  amount: string;
  balanceAfter: string;
}

interface EntriesPage {
  entries: Entry[];
  nextCursor: string | null;
}

export interface Account {
  id: string;
  currency: string;
  balance: string;
  debitsPending: string;
  creditsPending: string;
  available: string;
  overdraftLimit: string;
}

/** A record as GET /transfers/{id} shows it (the fields the checks read). */
export interface Stored {
  status?: string;
  kind?: string;
  reason?: string;
  seq?: string;
  from?: string;
  to?: string;
  amount?: string;
  pendingStatus?: string;
  postedAmount?: string;
  expiresAt?: string | null;
  reversedAmount?: string;
  pendingId?: string;
  reverses?: string;
}

export interface Read<T> {
  status: number;
  text: string;
  json?: T;
}

export async function getJson<T>(base: string, path: string): Promise<Read<T>> {
  let last = '';
  for (let i = 0; i < READ_ATTEMPTS_MAX; i++) {
    try {
      const res = await fetch(`${base}${path}`,
        { headers: AUTH_HEADER, signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
      const text = await res.text();
      // A 429 says "not now", as a 5xx may: a client waits as told and asks again. The checker
      // reads thousands of records at once and can pass the key's rate limit on a fast run.
      if (res.status < 500 && res.status !== 429) {
        return { status: res.status, text, json: JSON.parse(text) as T };
      }
      last = `${res.status} ${text}`;
      const after = Number(res.headers.get('retry-after') ?? 0) * 1000;
      await new Promise((ok) => setTimeout(ok, Math.min(Math.max(after, READ_RETRY_MS),
        READ_RETRY_AFTER_MAX_MS)));
      continue;
    } catch (error) {
      last = String(error);
    }
    await new Promise((ok) => setTimeout(ok, READ_RETRY_MS));
  }
  throw new Error(`GET ${path} kept failing: ${last}`);
}

export async function allEntries(base: string, id: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10_000; page++) {
    const query: string = `limit=${PAGE_LIMIT}${cursor === null ? '' : `&cursor=${cursor}`}`;
    const r: Read<EntriesPage> = await getJson<EntriesPage>(
      base, `/accounts/${id}/entries?${query}`);
    if (!r.json || r.status !== 200) throw new Error(`entries of ${id}: ${r.status} ${r.text}`);
    entries.push(...r.json.entries);
    cursor = r.json.nextCursor;
    if (cursor === null) return entries;
  }
  throw new Error(`entries of ${id}: too many pages`);
}

export async function inParallel<T>(items: readonly T[],
  work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: CHECK_CONCURRENCY }, worker));
}

export class Findings {
  readonly list: string[] = [];
  readonly counts: Record<string, number> = {};
  add(kind: string, detail: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    if (this.list.length < VIOLATIONS_LISTED_MAX) this.list.push(`${kind}: ${detail}`);
  }
}

export const opId = (op: Op) => (op.body as { id: string }).id;
