/**
 * Model-based random test of POST /transfers/batch over HTTP. Random sequences of batches
 * (atomic or not) of transfers and holds, single transfers, re-sent batches and expiry sweeps
 * run against the real app and against the independent bigint model of test/helpers/model.ts;
 * every reply is compared with what the model says, and every few commands (and at the end)
 * every account, its full entries list and every transfer id of the pool are read back and
 * compared too.
 *
 * The world is small on purpose: four accounts (USD unlimited, USD overdraft 0, USD with a small
 * overdraft, EUR), a "ghost" that never exists, and transfer ids drawn from a pool of 16, so that
 * replays, conflicts, decided ids among new ones and overflows near 2^128−1 all happen.
 *
 * How an atomic batch is decided (README "Batches", lua/transfer-batch-6.lua) is modelled on a
 * clone of the model: the clone becomes the model only when the batch commits. Every reply that
 * must write nothing (a 400, a refused atomic batch, a batch of only decided ids) is checked
 * against a full dump of the ledger taken before it.
 *
 * FUZZ_SEED=<n> replays a run (the seed is printed at the end and in a failure's message), and
 * FUZZ_PATH=<path> (from the failure's message) goes straight to its shrunk counterexample.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { App } from '../../src/app.js';
import { dumpLedger, type Fixture, fixture, json } from '../helpers/ledger.js';
import { expectReleased } from '../helpers/model-drivers.js';
import {
  type AccountSpec, accountView, type ConflictField, entryView, LedgerModel, type Metadata,
  MODEL_AMOUNT_MAX as MAX, type ModelTransferResult, type Reason, type TransferRequest,
  transferRequestOf, transferView,
} from '../helpers/model.js';

/** Sized so that the file runs in well under 30 s on a loaded 2-core machine. */
const RUNS = 200;
const COMMANDS_MIN = 6;
const COMMANDS_MAX = 14;
const AUDIT_EVERY = 4;
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PATH = process.env.FUZZ_PATH;

const ACCOUNTS: AccountSpec[] = [
  { id: 'cash', currency: 'USD', overdraft: 'unlimited', metadata: {} },
  { id: 'alice', currency: 'USD', overdraft: 0n, metadata: {} },
  { id: 'bob', currency: 'USD', overdraft: 50n, metadata: { tier: 'b' } },
  { id: 'euro', currency: 'EUR', overdraft: 0n, metadata: {} },
];
const GHOST = 'ghost'; // never created: ACCOUNT_NOT_FOUND
const WHO = [...ACCOUNTS.map((a) => a.id), GHOST];
// No id may contain a field name as a word: a 409's detail is searched for the fields it names.
const IDS = Array.from({ length: 16 }, (_, i) => `p${i}`);
const METADATA: Metadata[] = [{}, { order: 'o-1' }, { order: 'o-1', note: 'café € "q"' }];
const FIELDS: ConflictField[] = ['from', 'to', 'amount', 'currency', 'metadata', 'pending',
  'timeoutSeconds'];
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const CLOCK_START_MS = Date.UTC(2026, 0, 5, 9, 0, 0);
const ENTRIES_PAGE = 3; // small, so that audits follow several cursors

function at<T>(list: readonly T[], i: number): T {
  const value = list[i % list.length];
  if (value === undefined) throw new Error(`no element ${i} in a list of ${list.length}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Generators. Items are drawn as recipes and resolved against the model when the command runs,
// since which ids are decided (and with which fields) is only known then.

/** Mostly small (overdrafts bite), sometimes within 3 of 2^128−1 (so a second one overflows). */
const arbAmount = fc.oneof(
  { arbitrary: fc.bigInt(1n, 60n), weight: 10 },
  { arbitrary: fc.bigInt(1n, 10n ** 6n), weight: 2 },
  { arbitrary: fc.bigInt(0n, 3n).map((d) => MAX - d), weight: 2 },
  { arbitrary: fc.bigInt(1n, MAX), weight: 1 },
);
/** Index into WHO: mostly cash pays, the ghost and euro now and then. */
const arbFrom = fc.constantFrom(0, 0, 0, 0, 1, 1, 2, 2, 3, 4);
const arbTo = fc.constantFrom(0, 1, 1, 1, 2, 2, 2, 3, 4);

const arbItem = fc.record({
  /** fresh: the fields below; echo: an id decided before, same fields or one of them changed. */
  echo: fc.oneof({ arbitrary: fc.constant(false), weight: 4 },
    { arbitrary: fc.constant(true), weight: 1 }),
  /** Mostly the first id not yet decided; else any id of the pool (a replay or a conflict). */
  id: fc.oneof({ arbitrary: fc.constant(-1), weight: 3 },
    { arbitrary: fc.nat(IDS.length - 1), weight: 1 }),
  from: arbFrom,
  to: arbTo,
  amount: arbAmount,
  currency: fc.constantFrom('omit', 'omit', 'omit', 'omit', 'right', 'wrong', 'GBP'),
  /** A hold rather than a transfer, with a timeout in seconds or none (a second per command). */
  pending: fc.constantFrom(false, false, false, true),
  timeout: fc.constantFrom(undefined, 1, 2, 5),
  meta: fc.constantFrom(0, 0, 0, 1, 2),
  pick: fc.nat(1000),
  change: fc.constantFrom('none', 'none', 'none', 'toggle', ...FIELDS),
  /**
   * & 1: the amount as a JSON number when it fits; & 2: metadata {} sent, not omitted; & 4:
   * a transfer says "pending": false.
   */
  style: fc.nat(7),
});
type Item = typeof arbItem extends fc.Arbitrary<infer T> ? T : never;

const arbBatch = fc.record({
  t: fc.constant('batch' as const),
  atomic: fc.boolean(),
  /** Only USD accounts that exist, currency omitted or right: atomic batches that can commit. */
  tame: fc.boolean(),
  // Short batches often: a long atomic batch of random transfers almost always fails.
  items: fc.oneof(
    { arbitrary: fc.array(arbItem, { minLength: 1, maxLength: 3 }), weight: 2 },
    { arbitrary: fc.array(arbItem, { minLength: 1, maxLength: 12, size: 'max' }), weight: 1 },
  ),
  /** 0 valid; 1 an id repeated; 2 a transfer from an account to itself (both: 400). */
  malformed: fc.oneof({ arbitrary: fc.constant(0), weight: 14 },
    { arbitrary: fc.constantFrom(1, 2), weight: 1 }),
  where: fc.nat(1000),
});
const arbSingle = fc.record({ t: fc.constant('single' as const), item: arbItem });
const arbResend = fc.record({ t: fc.constant('resend' as const), pick: fc.nat(1000) });
/** The expiry sweep, as the service's sweeper runs it (off in this app: the test calls it). */
const arbSweep = fc.record({ t: fc.constant('sweep' as const) });
type Command = (typeof arbBatch | typeof arbSingle | typeof arbResend | typeof arbSweep) extends
  fc.Arbitrary<infer T> ? T : never;

const arbCommands = fc.array(fc.oneof(
  { arbitrary: arbBatch as fc.Arbitrary<Command>, weight: 6 },
  { arbitrary: arbSingle, weight: 2 },
  { arbitrary: arbResend, weight: 2 },
  { arbitrary: arbSweep, weight: 1 },
), { minLength: COMMANDS_MIN, maxLength: COMMANDS_MAX });

// ---------------------------------------------------------------------------------------------
// The model of a batch

type BatchExpectation =
  /** 400 for the whole batch, at transfer `index`; nothing written. */
  | { kind: 'invalid'; code: 'VALIDATION_ERROR' | 'SAME_ACCOUNT'; index: number }
  /** An atomic batch refused as a whole; nothing written. */
  | { kind: 'refused'; status: 409 | 422; code: string; index: number; fields: ConflictField[] }
  /** 200; `model` is the model after it (for an atomic batch, the committed clone). */
  | { kind: 'decided'; results: ModelTransferResult[]; model: LedgerModel };

/** The first transfer that makes the batch a 400, in the order the route checks them. */
function invalidAt(requests: TransferRequest[]): BatchExpectation | undefined {
  const seen = new Set<string>();
  for (const [index, r] of requests.entries()) {
    if (seen.has(r.id)) return { kind: 'invalid', code: 'VALIDATION_ERROR', index };
    seen.add(r.id);
    if (r.from === r.to) return { kind: 'invalid', code: 'SAME_ACCOUNT', index };
  }
  return undefined;
}

/** The refusal of an atomic batch by an id decided before: same fields or not. */
function existsAt(index: number, result: ModelTransferResult): BatchExpectation {
  if (result.kind === 'conflict') {
    return { kind: 'refused', status: 409, code: 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS', index,
      fields: result.fields };
  }
  return { kind: 'refused', status: 409, code: 'TRANSFER_EXISTS', index, fields: [] };
}

function expectBatch(model: LedgerModel, requests: TransferRequest[], atomic: boolean,
  nowMs: number): BatchExpectation {
  const invalid = invalidAt(requests);
  if (invalid) return invalid;
  if (!atomic) {
    // Each on its own, in order, as POST /transfers would decide it.
    return { kind: 'decided', results: requests.map((r) => model.transfer(r, nowMs)), model };
  }
  // All new and all committing, or all decided before; else the first transfer that spoils it.
  const clone = model.clone();
  const results: ModelTransferResult[] = [];
  let fresh = 0;
  for (const [index, r] of requests.entries()) {
    const decidedBefore = model.transfers.has(r.id);
    if (!decidedBefore && index > 0 && fresh === 0) {
      // A new id after only decided ones: the batch is refused at its first transfer.
      return existsAt(0, results[0] as ModelTransferResult);
    }
    const result = clone.transfer(r, nowMs);
    if (decidedBefore && fresh > 0) return existsAt(index, result);
    if (!decidedBefore) {
      if (result.kind !== 'decided') throw new Error('model: a new id in conflict');
      const t = result.transfer;
      if (t.status === 'rejected') {
        return { kind: 'refused', status: 422, code: t.reason as Reason, index, fields: [] };
      }
      fresh += 1;
    }
    results.push(result);
  }
  if (fresh === 0) {
    const conflict = results.findIndex((r) => r.kind === 'conflict');
    if (conflict >= 0) return existsAt(conflict, results[conflict] as ModelTransferResult);
  }
  return { kind: 'decided', results, model: clone };
}

// ---------------------------------------------------------------------------------------------
// Requests

const TAME_FROM = ['cash', 'cash', 'alice', 'bob'];
const USD = ACCOUNTS.filter((a) => a.currency === 'USD').map((a) => a.id);

function resolveItem(item: Item, model: LedgerModel, taken: Set<string>,
  tame = false): TransferRequest {
  const decided = model.decidedIds.filter((id) => !taken.has(id));
  if (item.echo && decided.length > 0) {
    const t = model.transfers.get(at(decided, item.pick));
    if (!t) throw new Error('model: a decided id without a transfer');
    const o = transferRequestOf(t);
    const r: TransferRequest = { ...o, metadata: { ...o.metadata } };
    const k = t.accountsCurrency;
    if (item.change === 'from') r.from = WHO.find((w) => w !== o.from && w !== o.to) as string;
    if (item.change === 'to') r.to = WHO.find((w) => w !== o.from && w !== o.to) as string;
    if (item.change === 'amount') r.amount = o.amount < MAX ? o.amount + 1n : o.amount - 1n;
    if (item.change === 'currency') r.currency = (o.currency ?? k) === 'USD' ? 'EUR' : 'USD';
    if (item.change === 'metadata') r.metadata = { ...o.metadata, changed: 'yes' };
    if (item.change === 'pending') r.pending = !o.pending;
    if (!r.pending) delete r.timeoutSeconds; // a timeout is for holds only
    else if (item.change === 'timeoutSeconds') {
      r.timeoutSeconds = o.timeoutSeconds === undefined ? 5 : o.timeoutSeconds + 1;
    }
    if (item.change === 'toggle') {
      // An omitted currency and the accounts' currency are the same request: still a replay.
      if (o.currency === undefined && k !== undefined) r.currency = k;
      if (o.currency !== undefined && o.currency === k) r.currency = undefined;
    }
    return r;
  }
  // Ids distinct within a batch (a repeat is a 400 of its own, generated on purpose). Once the
  // pool is all decided, "the first free id" falls back to p0: a replay or a conflict.
  const free = (id: string) => !taken.has(id) && !model.transfers.has(id);
  let n = item.id >= 0 ? item.id : Math.max(0, IDS.findIndex(free));
  while (taken.has(at(IDS, n))) n += 1;
  let from = at(WHO, item.from);
  let to = item.to === item.from ? at(WHO, item.to + 1) : at(WHO, item.to);
  let { amount, currency: how } = item;
  if (tame) {
    from = at(TAME_FROM, item.from);
    to = at(USD.filter((id) => id !== from), item.to);
    if (how !== 'right') how = 'omit';
    if (amount > 10n ** 6n) amount = amount % 60n + 1n; // overflows are the others' job
  }
  // 'right': the debit account's currency (the credit account's when the debit one is a ghost).
  const currencyOf = (id: string) => ACCOUNTS.find((a) => a.id === id)?.currency;
  const own = currencyOf(from) ?? currencyOf(to) ?? 'USD';
  const currency = how === 'omit' ? undefined : how === 'GBP' ? 'GBP'
    : how === 'right' ? own : own === 'USD' ? 'EUR' : 'USD';
  return { id: at(IDS, n), from, to, amount, currency,
    metadata: { ...at(METADATA, item.meta) },
    ...(item.pending ? { pending: true } : {}),
    ...(item.pending && item.timeout !== undefined ? { timeoutSeconds: item.timeout } : {}) };
}

function transferBody(r: TransferRequest, style: number): Record<string, unknown> {
  const body: Record<string, unknown> = { id: r.id, from: r.from, to: r.to,
    amount: (style & 1) && r.amount <= SAFE_MAX ? Number(r.amount) : r.amount.toString() };
  if (r.currency !== undefined) body.currency = r.currency;
  // "pending": false is a plain transfer, the same request as none.
  if (r.pending || (style & 4)) body.pending = r.pending === true;
  if (r.timeoutSeconds !== undefined) body.timeoutSeconds = r.timeoutSeconds;
  // Omitted metadata means {}.
  if (Object.keys(r.metadata).length > 0 || (style & 2)) body.metadata = r.metadata;
  return body;
}

/** A batch as sent, kept so that a later command can send the very same bytes again. */
interface SentBatch { atomic: boolean; requests: TransferRequest[]; payload: string }

// ---------------------------------------------------------------------------------------------
// Checking replies

type Reply = Awaited<ReturnType<App['inject']>>;
type Coverage = Map<string, number>;
const seen = (coverage: Coverage, key: string) => coverage.set(key, (coverage.get(key) ?? 0) + 1);
const sorted = (list: readonly string[]) => [...list].sort();

const PROBLEM_KEYS = ['code', 'detail', 'status', 'title', 'type'];

/** A problem body (RFC 9457) with exactly these extra members. */
function expectProblemBody(body: Record<string, unknown>, status: number, code: string,
  extra: string[] = []): void {
  expect(sorted(Object.keys(body))).toEqual(sorted([...PROBLEM_KEYS, ...extra]));
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String),
    detail: expect.any(String) });
}

function expectProblemReply(res: Reply, status: number, code: string, extra: string[] = []) {
  expect({ status: res.statusCode, type: res.headers['content-type'] }, res.body)
    .toEqual({ status, type: expect.stringMatching(/^application\/problem\+json/) });
  const body = res.json();
  expectProblemBody(body, status, code, extra);
  return body;
}

/** A 409's detail names exactly the fields that differ. */
function expectNamedFields(detail: string, fields: readonly ConflictField[]): void {
  const named = FIELDS.filter((f) => new RegExp(`\\b${f}\\b`).test(detail));
  expect({ detail, named }).toEqual({ detail, named: FIELDS.filter((f) => fields.includes(f)) });
}

/** Counts the outcome, for the check that the generators reach them all. */
function outcomeKey(r: ModelTransferResult): string {
  if (r.kind === 'conflict') return 'conflict';
  const t = r.transfer;
  return `${r.replayed ? 'replayed ' : ''}${t.kind === 'hold' ? 'hold ' : ''}${
    t.status === 'committed' ? 201 : t.reason}`;
}

class Run {
  model = new LedgerModel();
  private readonly sent: SentBatch[] = [];
  /** The first answer per transfer id (transfer or problem): replays must equal it. */
  private readonly originals = new Map<string, unknown>();

  constructor(private readonly app: App, private readonly f: Fixture,
    private readonly clock: { ms: number }, private readonly coverage: Coverage) {}

  private post(url: string, payload: string) {
    return this.app.inject({ method: 'POST', url, headers: json, payload });
  }

  private get(url: string) {
    return this.app.inject({ method: 'GET', url });
  }

  async setUp(): Promise<void> {
    for (const spec of ACCOUNTS) {
      const created = this.model.createAccount(spec, this.clock.ms);
      if (created.kind !== 'created') throw new Error(`model: account ${spec.id} not created`);
      const res = await this.post('/accounts', JSON.stringify({ id: spec.id,
        currency: spec.currency, overdraftLimit: spec.overdraft.toString(),
        metadata: spec.metadata }));
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toEqual(accountView(created.account));
    }
  }

  async execute(commands: Command[]): Promise<void> {
    for (const [n, command] of commands.entries()) {
      this.clock.ms += 1000;
      if (command.t === 'batch') await this.newBatch(command);
      else if (command.t === 'single') await this.single(command.item);
      else if (command.t === 'sweep') await this.sweep();
      else if (this.sent.length > 0) {
        seen(this.coverage, 'batch re-sent');
        await this.batch(at(this.sent, command.pick));
      }
      if ((n + 1) % AUDIT_EVERY === 0) await this.audit();
    }
    await this.audit();
  }

  /** Replays must answer what the first decision answered, byte for byte in JSON. */
  private checkOriginal(id: string, replayed: boolean, answer: unknown): void {
    if (replayed) expect(answer, `replay of ${id}`).toEqual(this.originals.get(id));
    else this.originals.set(id, answer);
  }

  private async newBatch(command: Command & { t: 'batch' }): Promise<void> {
    const taken = new Set<string>();
    const requests = command.items.map((item) => {
      const r = resolveItem(item, this.model, taken, command.tame);
      taken.add(r.id);
      return r;
    });
    if (command.malformed === 1 && requests.length > 1) {
      const j = 1 + (command.where % (requests.length - 1));
      const k = command.where % j;
      const repeated = (requests[k] as TransferRequest).id;
      requests[j] = { ...(requests[j] as TransferRequest), id: repeated };
    } else if (command.malformed > 0) {
      const j = command.where % requests.length;
      const r = requests[j] as TransferRequest;
      requests[j] = { ...r, to: r.from };
    }
    const transfers = requests.map((r, i) => transferBody(r, at(command.items, i).style));
    const payload = JSON.stringify({ atomic: command.atomic, transfers });
    const sent = { atomic: command.atomic, requests, payload };
    this.sent.push(sent);
    await this.batch(sent);
  }

  private async batch(sent: SentBatch): Promise<void> {
    const { atomic, requests } = sent;
    const expected = expectBatch(this.model, requests, atomic, this.clock.ms);
    const writesNothing = expected.kind !== 'decided' || expected.results.every((r) =>
      r.kind === 'conflict' || r.replayed);
    const before = writesNothing ? await dumpLedger(this.f.redis, this.f.keys) : undefined;
    const res = await this.post('/transfers/batch', sent.payload);
    const mode = atomic ? 'atomic' : 'each';
    if (expected.kind === 'invalid') {
      seen(this.coverage, `400 ${expected.code}`);
      const body = expectProblemReply(res, 400, expected.code);
      expect(body.detail).toMatch(new RegExp(`^transfers/${expected.index}\\b`));
    } else if (expected.kind === 'refused') {
      seen(this.coverage, `atomic ${expected.status} ${expected.code}${
        expected.index > 0 ? ' later' : ''}`);
      const body = expectProblemReply(res, expected.status, expected.code,
        ['index', 'transferId']);
      expect({ index: body.index, transferId: body.transferId }).toEqual({
        index: expected.index, transferId: (requests[expected.index] as TransferRequest).id });
      if (expected.code === 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS') {
        expectNamedFields(body.detail, expected.fields);
      }
    } else {
      expect({ status: res.statusCode, type: res.headers['content-type'] }, res.body)
        .toEqual({ status: 200, type: expect.stringMatching(/^application\/json/) });
      const body = res.json();
      expect(Object.keys(body)).toEqual(['results']);
      expect(body.results).toHaveLength(requests.length);
      for (const [i, r] of expected.results.entries()) {
        seen(this.coverage, `${mode} ${outcomeKey(r)}`);
        this.checkResult(body.results[i], (requests[i] as TransferRequest).id, r);
      }
      if (writesNothing) seen(this.coverage, `${mode} all decided before`);
      else if (atomic && requests.length >= 3) seen(this.coverage, 'atomic committed 3 or more');
      this.model = expected.model;
    }
    if (before !== undefined) {
      expect(await dumpLedger(this.f.redis, this.f.keys), 'nothing written').toBe(before);
    }
  }

  private checkResult(got: Record<string, unknown>, id: string, r: ModelTransferResult): void {
    if (r.kind === 'conflict') {
      for (const field of r.fields) seen(this.coverage, `conflict ${field}`);
      expect(sorted(Object.keys(got))).toEqual(['id', 'problem', 'replayed', 'status']);
      expect(got).toMatchObject({ id, status: 409, replayed: false });
      const problem = got.problem as { detail: string };
      expectProblemBody(problem, 409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
      expectNamedFields(problem.detail, r.fields);
      return;
    }
    const t = r.transfer;
    if (t.status === 'committed') {
      expect(got).toEqual({ id, status: 201, replayed: r.replayed, transfer: t.answer });
      this.checkOriginal(id, r.replayed, got.transfer);
    } else {
      expect(sorted(Object.keys(got))).toEqual(['id', 'problem', 'replayed', 'status']);
      expect(got).toMatchObject({ id, status: 422, replayed: r.replayed });
      expectProblemBody(got.problem as Record<string, unknown>, 422, t.reason as string);
      this.checkOriginal(id, r.replayed, got.problem);
    }
  }

  /** Releases the holds past their expiry (a second passes per command). */
  private async sweep(): Promise<void> {
    const released = this.model.expireHolds(this.clock.ms);
    seen(this.coverage, released.length > 0 ? 'sweep released' : 'sweep none');
    expectReleased(await this.f.ledger.expireHolds(), released);
  }

  private async single(item: Item): Promise<void> {
    const r = resolveItem(item, this.model, new Set());
    const res = await this.post('/transfers', JSON.stringify(transferBody(r, item.style)));
    const expected = this.model.transfer(r, this.clock.ms);
    seen(this.coverage, `single ${outcomeKey(expected)}`);
    if (expected.kind === 'conflict') {
      const body = expectProblemReply(res, 409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
      expectNamedFields(body.detail, expected.fields);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      return;
    }
    const t = expected.transfer;
    expect(res.headers['idempotent-replayed']).toBe(expected.replayed ? 'true' : undefined);
    if (t.status === 'committed') {
      expect({ status: res.statusCode, body: res.json() })
        .toEqual({ status: 201, body: t.answer });
    } else {
      expectProblemReply(res, 422, t.reason as string);
    }
    // What a batch answered for this id, POST /transfers answers too (and the reverse).
    this.checkOriginal(r.id, expected.replayed, res.json());
  }

  /** Every account, its whole entries list, and every id of the pool, against the model. */
  private async audit(): Promise<void> {
    for (const id of WHO) {
      const account = this.model.accounts.get(id);
      const res = await this.get(`/accounts/${id}`);
      if (!account) {
        expectProblemReply(res, 404, 'ACCOUNT_NOT_FOUND');
        continue;
      }
      expect({ id, status: res.statusCode, body: res.json() })
        .toEqual({ id, status: 200, body: accountView(account) });
      const entries: unknown[] = [];
      let cursor = '';
      for (let pages = 0; ; pages++) {
        expect(pages, `paging ${id} ends`).toBeLessThanOrEqual(account.entries.length);
        const page = await this.get(`/accounts/${id}/entries?limit=${ENTRIES_PAGE}${cursor}`);
        expect(page.statusCode, page.body).toBe(200);
        const body = page.json();
        entries.push(...body.entries);
        if (body.nextCursor === null) break;
        cursor = `&cursor=${encodeURIComponent(body.nextCursor)}`;
      }
      // Newest first.
      expect(entries, `entries of ${id}`).toEqual([...account.entries].reverse().map(entryView));
    }
    for (const id of IDS) {
      const t = this.model.transfers.get(id);
      const res = await this.get(`/transfers/${id}`);
      if (!t) expectProblemReply(res, 404, 'TRANSFER_NOT_FOUND');
      else {
        expect({ id, body: res.json() }).toEqual({ id, body: transferView(t, this.clock.ms) });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

let f: Fixture;
const clock = { ms: CLOCK_START_MS };

beforeAll(async () => { f = await fixture({ now: () => clock.ms }); });
afterAll(async () => { await f?.close(); });

/** Deletes every key of the fixture's ledger: a fresh ledger without building a new app. */
async function emptyLedger(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await f.redis.scan(cursor, 'MATCH', f.keys.all(), 'COUNT', 1000);
    if (keys.length > 0) await f.redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Outcomes the runs together must reach: a generator that misses one cannot find its bugs. */
const REQUIRED = [
  'each 201', 'each replayed 201', 'each conflict', 'each ACCOUNT_NOT_FOUND',
  'each CURRENCY_MISMATCH', 'each INSUFFICIENT_FUNDS', 'each BALANCE_OVERFLOW',
  'each replayed INSUFFICIENT_FUNDS', 'each all decided before',
  'atomic 201', 'atomic committed 3 or more', 'atomic replayed 201', 'atomic all decided before',
  'atomic 409 TRANSFER_EXISTS', 'atomic 409 TRANSFER_EXISTS later',
  'atomic 409 TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
  'atomic 409 TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS later',
  'atomic 422 ACCOUNT_NOT_FOUND', 'atomic 422 CURRENCY_MISMATCH',
  'atomic 422 INSUFFICIENT_FUNDS', 'atomic 422 INSUFFICIENT_FUNDS later',
  'atomic 422 BALANCE_OVERFLOW',
  '400 VALIDATION_ERROR', '400 SAME_ACCOUNT', 'batch re-sent',
  'single 201', 'single replayed 201', 'single conflict', 'single INSUFFICIENT_FUNDS',
  'each hold 201', 'each replayed hold 201', 'each hold INSUFFICIENT_FUNDS', 'atomic hold 201',
  'atomic replayed hold 201', 'single hold 201', 'conflict pending', 'conflict timeoutSeconds',
  'sweep released', 'sweep none',
];

/**
 * Shrinking a failure re-runs whole sequences: fast-check stops the assert at this limit and
 * reports the smallest case found by then, with its seed, well within the test's timeout.
 */
const SHRINK_BUDGET_MS = 40_000;

test(`POST /transfers/batch against the model: ${RUNS} runs of ${COMMANDS_MIN}–${
  COMMANDS_MAX} commands`, async () => {
  const coverage: Coverage = new Map();
  const started = Date.now();
  await fc.assert(fc.asyncProperty(arbCommands, async (commands) => {
    await emptyLedger();
    clock.ms = CLOCK_START_MS;
    const run = new Run(f.app, f, clock, coverage);
    await run.setUp();
    await run.execute(commands);
  }), { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: SHRINK_BUDGET_MS,
    ...(PATH === undefined ? {} : { path: PATH }) });
  const counts = [...coverage].sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `  ${k}: ${n}`).join('\n');
  console.info(`batch-model (FUZZ_SEED=${SEED}): ${RUNS} runs in ${Date.now() - started} ms` +
    `\n${counts}`);
  expect(REQUIRED.filter((k) => !coverage.has(k)), `unreached outcomes (FUZZ_SEED=${SEED})`)
    .toEqual([]);
}, 120_000);
