/**
 * The bank workload over real HTTP: accounts funded from an `unlimited` cash account, then
 * concurrent clients making random transfers, holds, posts, voids and reversals among them, with
 * retries of decided ids (must replay identically) and decided ids reused with other fields
 * (must be 409); mix.ts draws them. Every ambiguous answer (5xx, timeout, connection error) is
 * retried with the same id until decided.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type AnswerClass, type Attempt, History, isAmbiguous, type Op, type TransferBody,
} from './history.js';
import { type Draft, learn, nextOp, targetPath } from './mix.js';
import { AUTH_HEADER } from '../../helpers/auth.js';

/** Each request's own budget; above the service's 2 s Redis timeout, so a stuck Redis is a 503. */
export const CLIENT_TIMEOUT_MS = 3000;
/** Issue item 5: at least 10 concurrent clients and 10 funded accounts. */
export const CLIENTS = 10;
const CUSTOMER_ACCOUNTS = 12;
/** Every third account may go this far below zero; the others never below zero. */
const OVERDRAFT_LIMIT = 500n;
const FUNDING = 1000n;
/** Pause between a client's operations: fewer ops per second keeps scenarios short to check. */
const THINK_MS = 15;
/** Retry back-off for an ambiguous answer: doubling from the first, capped. */
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 400;
/** A client retries one op at most this long before leaving it to the final resolution. */
const OP_INLINE_BUDGET_MS = 30_000;
/** Upper bound on attempts for one op in one drive, whatever the clock says. */
const ATTEMPTS_PER_DRIVE_MAX = 200;
/** Upper bound on ops per client per scenario, whatever the clock says. */
const OPS_PER_CLIENT_MAX = 5000;
const RESOLVE_CONCURRENCY = 10;

export interface BankSpec {
  cash: string;
  accounts: Array<{ id: string; overdraft: bigint }>;
}

export function bankSpec(): BankSpec {
  const accounts = Array.from({ length: CUSTOMER_ACCOUNTS }, (_, i) => ({
    id: `acc${i}`, overdraft: i % 3 === 0 ? OVERDRAFT_LIMIT : 0n }));
  return { cash: 'cash', accounts };
}

function classify(status: number, code: string | undefined): AnswerClass {
  if (status === 200 || status === 201 || status === 409 || status === 422) {
    return String(status) as AnswerClass;
  }
  if (status === 503 && (code === 'UNAVAILABLE' || code === 'PERSISTENCE_FAILED')) {
    return `503 ${code}`;
  }
  return status >= 500 ? '5xx other' : 'unexpected';
}

/** One HTTP POST with its own timeout; never throws. */
export async function post(base: string, path: string, body: unknown): Promise<Attempt> {
  const start = Date.now();
  try {
    const res = await fetch(`${base}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...AUTH_HEADER },
      body: JSON.stringify(body), signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
    });
    const text = await res.text();
    let code: string | undefined;
    if (res.headers.get('content-type')?.startsWith('application/problem+json')) {
      code = (JSON.parse(text) as { code?: string }).code;
    }
    return { start, end: Date.now(), answer: classify(res.status, code), status: res.status,
      code, text, replayed: res.headers.get('idempotent-replayed') === 'true' };
  } catch (error) {
    const name = (error as Error).name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    const answer = timedOut ? 'timeout' : 'connection error';
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { start, end: Date.now(), answer, status: 0, text: `${String(error)} ${cause ?? ''}`,
      replayed: false };
  }
}

/** Decides what a non-ambiguous answer means for this op. */
function settle(op: Op, a: Attempt): void {
  op.end = a.end;
  op.decided = a;
  if (op.kind === 'replay') {
    const d = op.of?.decided as Attempt;
    const same = a.status === d.status && a.text === d.text && a.replayed;
    op.outcome = same ? 'replay identical' : 'replay differs';
    if (!same) {
      op.note = `first ${d.status} ${d.text} / replay ${a.status} replayed=${a.replayed} ${a.text}`;
    }
  } else if (op.kind === 'conflict') {
    // mix.ts changes a void's metadata, every other write's amount: the 409 must name it.
    const field = op.of?.kind === 'void' ? 'metadata' : 'amount';
    const ok = a.status === 409 && a.code === 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS'
      && a.text.includes(`with different ${field}"`);
    op.outcome = ok ? 'conflict 409' : 'conflict differs';
    if (!ok) op.note = `expected 409 naming ${field}, got ${a.status} ${a.text}`;
  } else if (op.path === '/accounts') {
    op.outcome = a.status === 200 || a.status === 201 ? 'committed' : 'unexpected';
  } else if (a.status === 201 || a.status === 422) {
    // A write decided: committed, or its rejection recorded under its id.
    op.outcome = a.status === 201 ? 'committed' : 'rejected';
  } else {
    op.outcome = 'unexpected';
    op.note = `${a.status} ${a.text}`;
  }
}

/** Sends the op until it is decided, or until `keepTrying` says stop (it stays unresolved). */
export async function drive(base: string, op: Op, keepTrying: () => boolean): Promise<void> {
  for (let n = 0; n < ATTEMPTS_PER_DRIVE_MAX; n++) {
    const a = await post(base, op.path, op.body);
    op.attempts.push(a);
    if (!isAmbiguous(a.answer)) return settle(op, a);
    if (!keepTrying()) return;
    const backoff = Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(n, 10), BACKOFF_MAX_MS);
    await sleep(backoff / 2 + Math.random() * (backoff / 2));
  }
}

function newOp(history: History, draft: Draft): Op {
  return history.add({ ...draft, attempts: [], outcome: 'unresolved', start: Date.now() });
}

/** Sends one op of a test's own until decided or `budgetMs`, recorded in `history`. */
export async function runOp(base: string, history: History, draft: Draft,
  budgetMs = OP_INLINE_BUDGET_MS): Promise<Op> {
  const op = newOp(history, draft);
  const deadline = op.start + budgetMs;
  await drive(base, op, () => Date.now() < deadline);
  learn(history, op);
  return op;
}

/** Creates the accounts and funds each customer from cash; every request decided. */
export async function setupBank(base: string, spec: BankSpec, history: History): Promise<void> {
  const deadline = Date.now() + OP_INLINE_BUDGET_MS;
  const keepTrying = () => Date.now() < deadline;
  const accounts = [{ id: spec.cash, currency: 'USD', overdraftLimit: 'unlimited' },
    ...spec.accounts.map((a) => ({ id: a.id, currency: 'USD', overdraftLimit: `${a.overdraft}` }))];
  await Promise.all(accounts.map((body) =>
    drive(base, newOp(history, { kind: 'setup', path: '/accounts', body }), keepTrying)));
  await Promise.all(spec.accounts.map((a) => {
    const body: TransferBody = { id: `fund-${a.id}`, from: spec.cash, to: a.id,
      amount: `${FUNDING}`, metadata: {} };
    return drive(base, newOp(history, { kind: 'setup', path: '/transfers', body }), keepTrying);
  }));
  const failed = history.ops.filter((op) => op.outcome !== 'committed');
  if (failed.length > 0) {
    const what = failed.map((op) => `${op.path} ${op.outcome}`).join(', ');
    throw new Error(`bank set-up failed: ${what}`);
  }
  history.decided.push(...history.ops.filter((op) => op.path === '/transfers'));
}

export class BankLoad {
  private stopped = false;
  private readonly clients: Promise<void>[];

  private readonly accounts: readonly string[];

  private constructor(private readonly base: string, spec: BankSpec,
    private readonly history: History, private readonly random: () => number, tag: string) {
    this.accounts = spec.accounts.map((a) => a.id);
    this.clients = Array.from({ length: CLIENTS }, (_, i) => this.client(i, tag));
  }

  static start(base: string, spec: BankSpec, history: History, random: () => number,
    tag: string): BankLoad {
    return new BankLoad(base, spec, history, random, tag);
  }

  /** Stops new operations; an op still ambiguous is left for `resolveAll`. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.clients);
  }

  private async client(index: number, tag: string): Promise<void> {
    for (let n = 0; n < OPS_PER_CLIENT_MAX && !this.stopped; n++) {
      const op = newOp(this.history, nextOp({ history: this.history, random: this.random,
        accounts: this.accounts }, index, n, tag));
      const deadline = op.start + OP_INLINE_BUDGET_MS;
      await drive(this.base, op, () => !this.stopped && Date.now() < deadline);
      learn(this.history, op);
      await sleep(THINK_MS);
    }
  }
}

/** Retries every op still ambiguous, with its same id and body, until decided or `budgetMs`. */
export async function resolveAll(base: string, history: History, budgetMs: number): Promise<void> {
  const deadline = Date.now() + budgetMs;
  const queue = history.ops.filter((op) => op.outcome === 'unresolved');
  const worker = async () => {
    for (let op = queue.shift(); op !== undefined; op = queue.shift()) {
      await drive(base, op, () => Date.now() < deadline);
      learn(history, op);
    }
  };
  await Promise.all(Array.from({ length: RESOLVE_CONCURRENCY }, worker));
}

/**
 * Voids every hold the clients believe open that has a timeout, all decided before it returns:
 * then the service's sweeper has nothing to release, so it writes nothing but its lock's lease
 * (one command, never a MULTI block) to the AOF until a new hold expires.
 */
export async function voidTimedHolds(base: string, history: History, tag: string): Promise<void> {
  const timed = [...history.openHolds.values()]
    .filter((op) => (op.body as TransferBody).timeoutSeconds !== undefined);
  await Promise.all(timed.map((hold, i) => {
    const target = (hold.body as TransferBody).id;
    return runOp(base, history, { kind: 'void', path: targetPath('void', target),
      body: { id: `${tag}-quiet-${i}`, metadata: {} }, target });
  }));
}

/**
 * Sends a transfer whose reply the client is then made never to have seen (its write is about
 * to be torn by a simulated crash): it is recorded as ambiguous, to be retried like any other.
 */
export async function recordLostReply(base: string, history: History,
  body: TransferBody): Promise<Op> {
  const sent = await post(base, '/transfers', body);
  if (sent.status !== 201) throw new Error(`the victim transfer did not commit: ${sent.text}`);
  const op = newOp(history, { kind: 'transfer', path: '/transfers', body });
  op.start = sent.start;
  op.attempts.push({ ...sent, answer: 'connection error', status: 0, code: undefined,
    text: `simulated: reply lost in the crash (it was ${sent.status} ${sent.text})` });
  return op;
}
