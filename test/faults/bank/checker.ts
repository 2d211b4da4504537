/**
 * The invariant checker, run after a scenario once every ambiguous request is resolved. It reads
 * the ledger only through the HTTP API and compares it with what the clients were told: every
 * acknowledged write (transfer, hold, post, void, reversal) present exactly once, every
 * rejection recorded as told, posted money conserved and each balance exactly what the
 * acknowledged writes make it; holds and reversals are checked in holds-check.ts.
 */
import { type Attempt, type History, type Op, type TransferBody, writeKind } from './history.js';
import {
  checkPendingSums, checkReversals, checkSettlements, type HoldFigures,
} from './holds-check.js';
import { answerOf } from './mix.js';
import {
  type Account, allEntries, type Entry, Findings, getJson, inParallel, opId, type Stored,
} from './reads.js';
import type { BankSpec } from './workload.js';

/**
 * How long the accounts' pending sums may take to match the open holds: a liveness bound for
 * reads that lag (a replica), holds expiring meanwhile and the sweeper's next round (after a
 * service kill -9 it waits out its predecessor's lock, HOLDS_SWEEP_LOCK_TTL_MS); only a failing
 * check waits it out.
 */
const PENDING_SETTLE_MS = 10_000;

export interface CheckResult {
  /** Acknowledged (201) writes missing, not committed, or not in both accounts' entries. */
  lost: number;
  /** Writes applied more than once to an account, or sharing a seq with another. */
  doubleApplied: number;
  violations: string[];
  /** Every violation, counted by kind (the list above is capped). */
  counts: Record<string, number>;
  holds: HoldFigures;
  /** How long the check took, ms. */
  checkMs: number;
}

export interface CheckOptions {
  /** Default PENDING_SETTLE_MS. */
  pendingSettleMs?: number;
  /**
   * The service runs its hold sweeper: it must release expired holds by itself. Default false:
   * the check releases them with voids of its own (holds-check.ts, checkPendingSums).
   */
  sweeper?: boolean;
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
  const totals = new Map<string, bigint>();
  for (const [id, { account, entries }] of accounts) {
    const balance = BigInt(account.balance);
    totals.set(account.currency, (totals.get(account.currency) ?? 0n) + balance);
    checkFloor(account, f);
    checkEntryChain(id, balance, entries, f);
  }
  for (const [currency, total] of totals) {
    if (total !== 0n) {
      f.add('money not conserved', `sum of all ${currency} balances is ${total}, not 0`);
    }
  }
  return accounts;
}

/** Neither the balance nor what is available (open holds counted) goes below the overdraft. */
export function checkFloor(account: Account, f: Findings): void {
  const { id, overdraftLimit } = account;
  const available = BigInt(account.balance) - BigInt(account.debitsPending);
  if (BigInt(account.available) !== available) {
    f.add('available is not balance - debitsPending', JSON.stringify(account));
  }
  if (overdraftLimit === 'unlimited') return;
  if (available < -BigInt(overdraftLimit) || BigInt(account.balance) < -BigInt(overdraftLimit)) {
    f.add('below overdraft floor', `${id}: balance ${account.balance}, available ${available}, ` +
      `limit ${overdraftLimit}`);
  }
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

interface Posting { account: string; amount: bigint; seq: string; kind: string }

function postingsByTransfer(accounts: Map<string, { entries: Entry[] }>): Map<string, Posting[]> {
  const byId = new Map<string, Posting[]>();
  for (const [account, { entries }] of accounts) {
    for (const e of entries) {
      const list = byId.get(e.transferId) ?? [];
      list.push({ account, amount: BigInt(e.amount), seq: e.seq, kind: e.kind });
      byId.set(e.transferId, list);
    }
  }
  return byId;
}

export async function checkInvariants(base: string, spec: BankSpec, history: History,
  options: CheckOptions = {}): Promise<CheckResult> {
  const started = Date.now();
  const f = new Findings();
  for (const op of history.ops) checkOpOutcome(op, f);
  const accounts = await readAccounts(base, spec, f);
  const postings = postingsByTransfer(accounts);
  const committed = history.writesWith('committed');
  const rejected = history.writesWith('rejected');
  const stored = new Map<string, Stored>();
  let lost = 0;
  let doubleApplied = 0;
  await inParallel(committed, async (op) => {
    const verdict = await checkAcknowledged(base, op, postings.get(opId(op)) ?? [], f, stored);
    if (verdict === 'lost') lost += 1;
    if (verdict === 'double') doubleApplied += 1;
  });
  await inParallel(rejected,
    (op) => checkRejected(base, op, postings.get(opId(op)) ?? [], f, stored));
  const known = new Set([...committed, ...rejected].map(opId));
  for (const [id, list] of postings) {
    if (!known.has(id)) {
      f.add('applied but never acknowledged', `${id}: ${JSON.stringify(list, big)}`);
    }
  }
  doubleApplied += checkSeqs(committed, f);
  checkExactBalances(spec, committed, accounts, f);
  const holds: HoldFigures = { states: {}, reversals: 0, reversedAmount: 0n,
    expiredVoidedByCheck: 0, pendingWaitMs: 0 };
  checkSettlements(history, stored, f);
  checkReversals(history, stored, f, holds);
  await checkPendingSums(base, [...accounts.keys()], history, stored, f, { sweeper:
    options.sweeper ?? false, settleMs: options.pendingSettleMs ?? PENDING_SETTLE_MS }, holds);
  return { lost, doubleApplied, violations: f.list, counts: f.counts, holds,
    checkMs: Date.now() - started };
}

const big = (_key: string, value: unknown) => (typeof value === 'bigint' ? `${value}` : value);

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

/**
 * What changes in a record after it is decided: a hold's state, a transfer's or post's
 * reversed total. The answer shows them as first decided; GET as they are now.
 */
const LATER_STATE = ['pendingStatus', 'postedAmount', 'reversedAmount'];
const AS_DECIDED: Record<string, Record<string, string>> = {
  hold: { pendingStatus: 'pending' }, transfer: { reversedAmount: '0' },
  post: { reversedAmount: '0' },
};

function withoutLaterState(text: string): string {
  const record = JSON.parse(text) as Record<string, unknown>;
  for (const field of LATER_STATE) delete record[field];
  return JSON.stringify(record);
}

/**
 * An acknowledged write: the same record at GET (its later state aside), and for a transfer,
 * post or reversal exactly one posting in each of its accounts; a hold or void in no entries.
 */
async function checkAcknowledged(base: string, op: Op, postings: Posting[], f: Findings,
  stored: Map<string, Stored>) {
  const id = opId(op);
  const kind = writeKind(op);
  const ack = answerOf(op) as Stored;
  const got = await getJson<Stored>(base, `/transfers/${encodeURIComponent(id)}`);
  if (got.json !== undefined) stored.set(id, got.json);
  const asked = kind === 'transfer' || kind === 'hold' ? (op.body as TransferBody).amount
    : ack.amount;
  if (got.status !== 200 || got.json?.status !== 'committed' || got.json.kind !== kind
    || got.json.amount !== ack.amount || ack.amount !== asked) {
    f.add('acknowledged write lost',
      `${kind} ${id} (201 ${op.decided?.text}): GET ${got.status} ${got.text}`);
    return 'lost';
  }
  for (const [field, value] of Object.entries(AS_DECIDED[kind] ?? {})) {
    if ((ack as Record<string, unknown>)[field] !== value) {
      f.add('acknowledged answer not as first decided', `${kind} ${id}: ${op.decided?.text}`);
    }
  }
  if (withoutLaterState(got.text) !== withoutLaterState(op.decided?.text ?? '{}')) {
    f.add('acknowledged body differs from the stored record', `${id}: 201 ` +
      `${op.decided?.text} / GET ${got.text}`);
  }
  if (kind === 'hold' || kind === 'void') {
    if (postings.length > 0) {
      f.add('hold or void moved posted money', `${id}: ${JSON.stringify(postings, big)}`);
    }
    return 'ok';
  }
  const amount = BigInt(ack.amount as string);
  const from = postings.filter((p) => p.account === ack.from && p.amount === -amount
    && p.kind === kind);
  const to = postings.filter((p) => p.account === ack.to && p.amount === amount
    && p.kind === kind);
  if (from.length > 1 || to.length > 1 || postings.length > 2) {
    f.add('write applied more than once', `${kind} ${id}: ${JSON.stringify(postings, big)}`);
    return 'double';
  }
  if (from.length !== 1 || to.length !== 1 || from[0]?.seq !== ack.seq
    || to[0]?.seq !== ack.seq) {
    f.add('acknowledged write not in both accounts\' entries',
      `${kind} ${id} seq ${ack.seq}: ${JSON.stringify(postings, big)}`);
    return 'lost';
  }
  return 'ok';
}

async function checkRejected(base: string, op: Op, postings: Posting[], f: Findings,
  stored: Map<string, Stored>): Promise<void> {
  const id = opId(op);
  const code = (op.decided as Attempt).code;
  const got = await getJson<Stored>(base, `/transfers/${encodeURIComponent(id)}`);
  if (got.json !== undefined) stored.set(id, got.json);
  if (got.status !== 200 || got.json?.status !== 'rejected' || got.json.reason !== code
    || got.json.kind !== writeKind(op)) {
    f.add('rejection not recorded as told',
      `${op.kind} ${id} (422 ${code}): GET ${got.status} ${got.text}`);
  }
  if (postings.length > 0) {
    f.add('rejected write applied', `${id}: ${JSON.stringify(postings, big)}`);
  }
}

/** Every committed write (holds and voids too) has its own seq, shared with no other. */
function checkSeqs(committed: Op[], f: Findings): number {
  const owner = new Map<string, string>();
  let duplicates = 0;
  for (const op of committed) {
    const id = opId(op);
    const seq = String(answerOf(op).seq);
    const other = owner.get(seq);
    if (other !== undefined && other !== id) {
      f.add('seq committed twice', `seq ${seq}: ${other} and ${id}`);
      duplicates += 1;
    }
    owner.set(seq, id);
  }
  return duplicates;
}

/**
 * With every request resolved, each balance is exactly what the acknowledged transfers, posts
 * and reversals make it (holds and voids move no posted money).
 */
function checkExactBalances(spec: BankSpec, committed: Op[],
  accounts: Map<string, { account: Account }>, f: Findings): void {
  const expected = new Map<string, bigint>();
  for (const op of committed) {
    const kind = writeKind(op);
    if (kind === 'hold' || kind === 'void') continue;
    const { from, to, amount } = answerOf(op) as { from: string; to: string; amount: string };
    expected.set(from, (expected.get(from) ?? 0n) - BigInt(amount));
    expected.set(to, (expected.get(to) ?? 0n) + BigInt(amount));
  }
  for (const id of [spec.cash, ...spec.accounts.map((a) => a.id)]) {
    const actual = accounts.get(id)?.account.balance;
    const want = expected.get(id) ?? 0n;
    if (actual !== undefined && BigInt(actual) !== want) {
      f.add('balance differs from the acknowledged writes',
        `${id}: ${actual}, expected ${want}`);
    }
  }
}
