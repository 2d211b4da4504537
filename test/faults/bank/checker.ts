/**
 * The invariant checker, run after a scenario once every ambiguous request is resolved. It reads
 * the ledger only through the HTTP API and compares it with what the clients were told.
 */
import { type Attempt, type History, type Op, type TransferBody } from './history.js';
import type { BankSpec } from './workload.js';
import { AUTH_HEADER } from '../../helpers/auth.js';

/** Reads are retried this often (a read is always safe to retry). */
const READ_ATTEMPTS_MAX = 50;
const READ_RETRY_MS = 100;
const READ_TIMEOUT_MS = 5000;
const CHECK_CONCURRENCY = 10;
/** Entries per page: the contract's largest `limit`. */
const PAGE_LIMIT = 1000;
/** A scenario with more violations than this is broken enough; list the first ones only. */
const VIOLATIONS_LISTED_MAX = 40;

interface Entry {
  transferId: string;
  seq: string;
  amount: string;
  balanceAfter: string;
}

interface EntriesPage {
  entries: Entry[];
  nextCursor: string | null;
}

interface Account {
  id: string;
  balance: string;
  overdraftLimit: string;
}

export interface CheckResult {
  /** Acknowledged (201) transfers missing, not committed, or not in both accounts' entries. */
  lost: number;
  /** Transfers applied more than once to an account, or sharing a seq with another. */
  doubleApplied: number;
  violations: string[];
  /** Every violation, counted by kind (the list above is capped). */
  counts: Record<string, number>;
}

interface Read<T> {
  status: number;
  text: string;
  json?: T;
}

async function getJson<T>(base: string, path: string): Promise<Read<T>> {
  let last = '';
  for (let i = 0; i < READ_ATTEMPTS_MAX; i++) {
    try {
      const res = await fetch(`${base}${path}`,
        { headers: AUTH_HEADER, signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
      const text = await res.text();
      if (res.status < 500) return { status: res.status, text, json: JSON.parse(text) as T };
      last = `${res.status} ${text}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((ok) => setTimeout(ok, READ_RETRY_MS));
  }
  throw new Error(`GET ${path} kept failing: ${last}`);
}

async function allEntries(base: string, id: string): Promise<Entry[]> {
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

async function inParallel<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: CHECK_CONCURRENCY }, worker));
}

class Findings {
  readonly list: string[] = [];
  readonly counts: Record<string, number> = {};
  add(kind: string, detail: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    if (this.list.length < VIOLATIONS_LISTED_MAX) this.list.push(`${kind}: ${detail}`);
  }
}

/** Per account: its balance and entries, with the account-local invariants checked. */
async function readAccounts(base: string, spec: BankSpec, f: Findings) {
  const ids = [spec.cash, ...spec.accounts.map((a) => a.id)];
  const accounts = new Map<string, { account: Account; entries: Entry[] }>();
  await inParallel(ids, async (id) => {
    const r = await getJson<Account>(base, `/accounts/${id}`);
    if (r.status !== 200 || !r.json) {
      return f.add('account missing', `${id}: ${r.status} ${r.text}`);
    }
    accounts.set(id, { account: r.json, entries: await allEntries(base, id) });
  });
  let total = 0n;
  for (const [id, { account, entries }] of accounts) {
    const balance = BigInt(account.balance);
    total += balance;
    if (account.overdraftLimit !== 'unlimited' && balance < -BigInt(account.overdraftLimit)) {
      f.add('below overdraft floor', `${id}: balance ${balance}, limit ${account.overdraftLimit}`);
    }
    checkEntryChain(id, balance, entries, f);
  }
  if (total !== 0n) f.add('money not conserved', `sum of all balances is ${total}, not 0`);
  return accounts;
}

/** Entries sum to the balance, each balanceAfter follows from the one before, newest = balance. */
function checkEntryChain(id: string, balance: bigint, entries: Entry[], f: Findings): void {
  const oldestFirst = [...entries].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
  let running = 0n;
  for (const e of oldestFirst) {
    running += BigInt(e.amount);
    if (BigInt(e.balanceAfter) !== running) {
      f.add('entry chain broken', `${id} seq ${e.seq} (${e.transferId}): balanceAfter ` +
        `${e.balanceAfter}, entries before it sum to ${running}`);
      running = BigInt(e.balanceAfter); // report each break once
    }
  }
  const sum = entries.reduce((s, e) => s + BigInt(e.amount), 0n);
  if (sum !== balance) {
    f.add('entries do not sum to balance', `${id}: entries ${sum}, balance ${balance}`);
  }
  const newest = entries[0];
  if (newest !== undefined && BigInt(newest.balanceAfter) !== balance) {
    f.add('last balanceAfter is not the balance', `${id}: ${newest.balanceAfter} vs ${balance}`);
  }
}

interface Posting { account: string; amount: bigint; seq: string }

function postingsByTransfer(accounts: Map<string, { entries: Entry[] }>): Map<string, Posting[]> {
  const byId = new Map<string, Posting[]>();
  for (const [account, { entries }] of accounts) {
    for (const e of entries) {
      const list = byId.get(e.transferId) ?? [];
      list.push({ account, amount: BigInt(e.amount), seq: e.seq });
      byId.set(e.transferId, list);
    }
  }
  return byId;
}

export async function checkInvariants(base: string, spec: BankSpec,
  history: History): Promise<CheckResult> {
  const f = new Findings();
  for (const op of history.ops) checkOpOutcome(op, f);
  const accounts = await readAccounts(base, spec, f);
  const postings = postingsByTransfer(accounts);
  const committed = history.transfersWith('committed');
  const rejected = history.transfersWith('rejected');
  let lost = 0;
  let doubleApplied = 0;
  await inParallel(committed, async (op) => {
    const verdict = await checkAcknowledged(base, op, postings.get(transferId(op)) ?? [], f);
    if (verdict === 'lost') lost += 1;
    if (verdict === 'double') doubleApplied += 1;
  });
  await inParallel(rejected,
    (op) => checkRejected(base, op, postings.get(transferId(op)) ?? [], f));
  const known = new Set([...committed, ...rejected].map(transferId));
  for (const [id, list] of postings) {
    if (!known.has(id)) {
      f.add('applied but never acknowledged', `${id}: ${JSON.stringify(list, big)}`);
    }
  }
  doubleApplied += checkSeqs(postings, f);
  checkExactBalances(spec, committed, accounts, f);
  return { lost, doubleApplied, violations: f.list, counts: f.counts };
}

const big = (_key: string, value: unknown) => (typeof value === 'bigint' ? `${value}` : value);
const transferId = (op: Op) => (op.body as TransferBody).id;

function checkOpOutcome(op: Op, f: Findings): void {
  const id = (op.body as { id?: string }).id ?? '?';
  if (op.outcome === 'unresolved') {
    const last = op.attempts[op.attempts.length - 1];
    f.add('ambiguous request unresolved', `${op.kind} ${id} after ${op.attempts.length} ` +
      `attempts, last: ${last?.answer} ${last?.text.slice(0, 200)}`);
  } else if (op.outcome === 'replay differs' || op.outcome === 'conflict differs'
    || op.outcome === 'unexpected') {
    f.add(op.outcome, `${op.kind} ${id}: ${op.note ?? ''}`.slice(0, 600));
  }
}

/** An acknowledged transfer: the same body at GET, and exactly one posting in each account. */
async function checkAcknowledged(base: string, op: Op, postings: Posting[], f: Findings) {
  const body = op.body as TransferBody;
  const ack = op.decided as Attempt;
  const stored = await getJson<{ status?: string; amount?: string }>(base, `/transfers/${body.id}`);
  if (stored.status !== 200 || stored.json?.status !== 'committed'
    || stored.json.amount !== body.amount) {
    f.add('acknowledged transfer lost',
      `${body.id} (201 ${ack.text}): GET ${stored.status} ${stored.text}`);
    return 'lost';
  }
  if (stored.text !== ack.text) {
    f.add('acknowledged body differs from the stored transfer', `${body.id}: 201 ${ack.text} / ` +
      `GET ${stored.text}`);
  }
  const from = postings.filter((p) => p.account === body.from && p.amount === -BigInt(body.amount));
  const to = postings.filter((p) => p.account === body.to && p.amount === BigInt(body.amount));
  if (from.length > 1 || to.length > 1 || postings.length > 2) {
    f.add('transfer applied more than once', `${body.id}: ${JSON.stringify(postings, big)}`);
    return 'double';
  }
  if (from.length !== 1 || to.length !== 1 || from[0]?.seq !== to[0]?.seq) {
    f.add('acknowledged transfer not in both accounts\' entries',
      `${body.id}: ${JSON.stringify(postings, big)}`);
    return 'lost';
  }
  return 'ok';
}

async function checkRejected(base: string, op: Op, postings: Posting[],
  f: Findings): Promise<void> {
  const body = op.body as TransferBody;
  const code = (op.decided as Attempt).code;
  const stored = await getJson<{ status?: string; reason?: string }>(base, `/transfers/${body.id}`);
  if (stored.status !== 200 || stored.json?.status !== 'rejected' || stored.json.reason !== code) {
    f.add('rejection not recorded as told',
      `${body.id} (422 ${code}): GET ${stored.status} ${stored.text}`);
  }
  if (postings.length > 0) {
    f.add('rejected transfer applied', `${body.id}: ${JSON.stringify(postings, big)}`);
  }
}

/** Every committed transfer has one seq, shared by its two postings and by no other transfer. */
function checkSeqs(postings: Map<string, Posting[]>, f: Findings): number {
  const owner = new Map<string, string>();
  let duplicates = 0;
  for (const [id, list] of postings) {
    for (const seq of new Set(list.map((p) => p.seq))) {
      const other = owner.get(seq);
      if (other !== undefined && other !== id) {
        f.add('seq committed twice', `seq ${seq}: ${other} and ${id}`);
        duplicates += 1;
      }
      owner.set(seq, id);
    }
  }
  return duplicates;
}

/** With every request resolved, each balance is exactly the sum of the acknowledged transfers. */
function checkExactBalances(spec: BankSpec, committed: Op[],
  accounts: Map<string, { account: Account }>, f: Findings): void {
  const expected = new Map<string, bigint>();
  for (const op of committed) {
    const b = op.body as TransferBody;
    expected.set(b.from, (expected.get(b.from) ?? 0n) - BigInt(b.amount));
    expected.set(b.to, (expected.get(b.to) ?? 0n) + BigInt(b.amount));
  }
  for (const id of [spec.cash, ...spec.accounts.map((a) => a.id)]) {
    const actual = accounts.get(id)?.account.balance;
    const want = expected.get(id) ?? 0n;
    if (actual !== undefined && BigInt(actual) !== want) {
      f.add('balance differs from the acknowledged transfers',
        `${id}: ${actual}, expected ${want}`);
    }
  }
}
