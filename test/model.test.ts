/**
 * Model-based random test: random sequences of account creations, transfers, holds, posts,
 * voids, reversals, closes, clock steps and expiry sweeps (replays, conflicts, overdrafts, huge
 * amounts, unknown accounts and targets, currency given/omitted/wrong, expiry boundaries) run
 * against the real ledger and an independent in-memory model (test/helpers/model.ts). Every reply
 * is compared with the model; after each run every account, every record id, every account's
 * full entries list (paged with small pages) and the per-currency sums are compared too.
 *
 * Time is the test's: the ledger's clock is `clock.ms`, which the run moves forward (to exactly a
 * hold's expiry, or a millisecond before it, now and then), so expiry is decided exactly.
 *
 * Once through the Ledger API (many runs, fast) and once through HTTP `inject` (fewer runs; it
 * also covers the status codes, problem bodies, replay header and cursors); the drivers are in
 * test/helpers/model-drivers.ts. And through HTTP once more with a PostgreSQL archive
 * (src/archive/) that copies and frees every record but the newest after each write: replays,
 * reads, entries pages, posts and reversals of archived records must answer exactly as the
 * model says, i.e. as they did before archiving.
 * A failure prints fast-check's seed and path; replay one with FC_SEED=<seed> FC_PATH=<path>.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ledgerKeys } from '../src/ledger/keys.js';
import { type Account, type Transfer, Ledger } from '../src/ledger/ledger.js';
import { type Fixture, fixture, uniqueLedgerName } from './helpers/ledger.js';
import {
  type AccountField, type AccountSpec, accountView, entryView, isTargeted, LedgerModel,
  type Metadata, MODEL_AMOUNT_MAX as MAX, type ModelTransfer, type ModelTransferResult,
  type Overdraft, type TargetedKind, type TargetedRequest, type TransferRequest, transferView,
} from './helpers/model.js';
import { type Driver, httpDriver, ledgerDriver } from './helpers/model-drivers.js';
import { startTestPostgres } from './helpers/postgres.js';

/** Sized so that the whole file runs in well under 30 s on a 2-core machine. */
const LEDGER_RUNS = 150;
const LEDGER_OPS_MAX = 80;
const HTTP_RUNS = 30;
const HTTP_OPS_MAX = 70;

const KNOWN = ['A0', 'A1', 'A2', 'A3', 'A4', 'A5'];
const UNKNOWN = ['X0', 'X1']; // never created
const ALL_IDS = [...KNOWN, ...UNKNOWN];
/** Record ids never used: posts, voids and reversals of nothing. */
const NO_RECORD = ['N0', 'N1'];
const CURRENCIES = ['USD', 'EUR'] as const;
const METADATA: Metadata[] = [
  {}, { order: 'o-1' }, { order: 'o-1', note: 'café € 😀 "q" \\' }, { a: '1', b: '2', c: '3' },
];
/** What a replay may change: a transfer's or hold's fields, a post's target, its kind. */
const REPLAY_CHANGES = ['from', 'to', 'amount', 'currency', 'metadata', 'pending',
  'timeoutSeconds', 'target', 'kind'] as const;
type ReplayChange = (typeof REPLAY_CHANGES)[number];
const ACCOUNT_FIELDS: AccountField[] = ['currency', 'overdraftLimit', 'metadata'];
const CLOCK_START_MS = Date.UTC(2026, 10, 27, 10, 0, 0);
/** Every op moves the clock this much: records get distinct times, holds get older. */
const OP_STEP_MS = 7;

function at<T>(list: readonly T[], i: number): T {
  const value = list[i % list.length];
  if (value === undefined) throw new Error(`no element ${i} in a list of ${list.length}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Generators

const arbOverdraft: fc.Arbitrary<Overdraft> = fc.oneof(
  { arbitrary: fc.constant('unlimited' as const), weight: 2 },
  { arbitrary: fc.constant(0n), weight: 3 },
  { arbitrary: fc.bigInt(1n, 1_000_000n), weight: 2 },
  { arbitrary: fc.constant(MAX), weight: 1 },
  { arbitrary: fc.bigInt(0n, MAX), weight: 1 },
);

const arbSpec = (id: string, forced: Partial<AccountSpec> = {}): fc.Arbitrary<AccountSpec> =>
  fc.record({ currency: fc.constantFrom(...CURRENCIES), overdraft: arbOverdraft, meta: fc.nat(3) })
    .map(({ currency, overdraft, meta }) =>
      ({ id, currency, overdraft, metadata: at(METADATA, meta), ...forced }));

/** Small to near 2^128−1, so that overdrafts and overflows both happen. */
const arbAmount = fc.oneof(
  { arbitrary: fc.bigInt(1n, 1000n), weight: 6 },
  { arbitrary: fc.bigInt(1n, 10n ** 16n), weight: 2 },
  { arbitrary: fc.bigInt(0n, 1000n).map((d) => MAX - d), weight: 3 },
  { arbitrary: fc.bigInt(-1000n, 1000n).map((d) => 2n ** 127n + d), weight: 2 },
  { arbitrary: fc.bigInt(1n, MAX), weight: 1 },
  { arbitrary: fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 64n, 10n ** 15n), weight: 1 },
);

/** Mostly 0 (with this weight), else an integer in 1..max. */
const mostlyZero = (weight: number, max: number) =>
  fc.oneof(
    { arbitrary: fc.constant(0), weight },
    { arbitrary: fc.integer({ min: 1, max }), weight: 1 },
  );
/** Index into ALL_IDS, mostly a known account. */
const arbWho = fc.oneof(
  { arbitrary: fc.nat(5), weight: 15 },
  { arbitrary: fc.integer({ min: 6, max: 7 }), weight: 1 },
);
const someOf = <T>(all: readonly T[]) =>
  fc.oneof(
    { arbitrary: fc.constant([] as T[]), weight: 3 },
    { arbitrary: fc.subarray([...all], { minLength: 1 }), weight: 2 },
  );
/** Sent twice at once: the contract says concurrent duplicates apply once. */
const arbTwice = mostlyZero(7, 1).map((n) => n > 0);

const arbTransferOp = fc.record({
  t: fc.constant('transfer' as const),
  from: arbWho,
  to: arbWho,
  amount: arbAmount,
  /**
   * 0: `amount` as drawn. Else an amount at a boundary, from the model's state just before:
   * 1 exactly what `from` may still pay, 2 one more; 3 exactly what takes the larger of `from`'s
   * debits and `to`'s credits (each with its open holds) to 2^128−1, 4 one more.
   */
  edge: mostlyZero(6, 4),
  /** 0: `to` as drawn; else `to` is redrawn among accounts of the debit account's currency. */
  pairing: fc.nat(3),
  currency: fc.constantFrom('omit', 'omit', 'from', 'from', 'to', 'GBP'),
  /** A hold (sometimes with a timeout in seconds) rather than a transfer. */
  pending: fc.boolean(),
  timeout: fc.constantFrom(undefined, undefined, 1, 2, 3, 30),
  meta: fc.nat(3),
  style: fc.nat(7),
  /**
   * HTTP only: 1 same account, 2 amount 0, 3 amount 2^128, 4 leading zero, 5 unknown field,
   * 6 a timeout without "pending", 7 a timeout of 0.
   */
  malformed: mostlyZero(15, 7),
  twice: arbTwice,
});
/**
 * The target of a post, void or reversal: mostly one it can settle or reverse (0..5; for a
 * reversal, 4 and 5: the one its payer can least afford), else any of its kind (6), any decided
 * record (7) or no record at all (8).
 */
const arbAim = fc.nat(8);
const arbSettleOp = fc.record({
  t: fc.constant('settle' as const),
  op: fc.constantFrom<TargetedKind>('post', 'post', 'post', 'void', 'void'),
  aim: arbAim,
  pick: fc.nat(1000),
  /** A post's amount: none (the whole hold), all of it, part, one, or one more than the hold. */
  amount: fc.constantFrom('omit', 'omit', 'all', 'part', 'part', 'one', 'over'),
  /** First move the clock to a millisecond before the hold's expiry, or exactly to it. */
  when: fc.constantFrom('now', 'now', 'now', 'now', 'justBefore', 'at'),
  meta: fc.nat(3),
  style: fc.nat(7),
  twice: arbTwice,
});
const arbReverseOp = fc.record({
  t: fc.constant('reverse' as const),
  aim: arbAim,
  pick: fc.nat(1000),
  /** None (all still reversible), all that is left, part, one, or one more than is left. */
  amount: fc.constantFrom('omit', 'omit', 'left', 'part', 'part', 'one', 'over'),
  meta: fc.nat(3),
  style: fc.nat(7),
  twice: arbTwice,
});
const arbReplayOp = fc.record({
  t: fc.constant('replay' as const),
  /**
   * Any decided id (0..3), or one whose record changed since: a settled hold, a reversed
   * transfer or post (4), or a committed post, void or reversal (5).
   */
  aim: fc.nat(5),
  pick: fc.nat(1000),
  changes: someOf(REPLAY_CHANGES),
  toggleCurrency: fc.boolean(),
  reorder: fc.boolean(),
  style: fc.nat(7),
});
const arbAccountOp = fc.record({
  t: fc.constant('account' as const),
  who: fc.nat(KNOWN.length - 1),
  changes: someOf(ACCOUNT_FIELDS),
  reorder: fc.boolean(),
  style: fc.nat(5),
});
/** Mostly accounts A2..A5: closing a cash account early would silence the rest of a run. */
const arbCloseOp = fc.record({
  t: fc.constant('close' as const),
  who: fc.constantFrom(2, 3, 4, 5, 2, 3, 4, 5, 0, 1, 6),
  /** Close an account closed before, if there is one. */
  again: fc.boolean(),
});
const arbClockOp = fc.record({
  t: fc.constant('clock' as const),
  stepMs: fc.constantFrom(250, 999, 1000, 2500, 10_000),
});
/** A sweep, first moving the clock to a millisecond before an open hold's expiry, or to it. */
const arbExpireOp = fc.record({
  t: fc.constant('expire' as const),
  when: fc.constantFrom('now', 'justBefore', 'at'),
  pick: fc.nat(1000),
});
const arbPageOp = fc.record({
  t: fc.constant('page' as const),
  // Often a cash account: they have the most entries, so their readers get to continue.
  who: fc.oneof({ arbitrary: fc.nat(1), weight: 1 }, { arbitrary: arbWho, weight: 1 }),
  limit: fc.constantFrom(1, 1, 2, 3),
});
type OpOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
type TransferOp = OpOf<typeof arbTransferOp>;
type SettleOp = OpOf<typeof arbSettleOp>;
type ReverseOp = OpOf<typeof arbReverseOp>;
type ReplayOp = OpOf<typeof arbReplayOp>;
type AccountOp = OpOf<typeof arbAccountOp>;
type ExpireOp = OpOf<typeof arbExpireOp>;
type PageOp = OpOf<typeof arbPageOp>;
type Op = TransferOp | SettleOp | ReverseOp | ReplayOp | AccountOp | OpOf<typeof arbCloseOp>
  | OpOf<typeof arbClockOp> | ExpireOp | PageOp;

const arbRun = (opsMax: number) => fc.record({
  // A0 and A1 are the unlimited cash accounts of each currency: they fund the others and make
  // overflows reachable.
  specs: fc.tuple(
    arbSpec('A0', { currency: 'USD', overdraft: 'unlimited' }),
    arbSpec('A1', { currency: 'EUR', overdraft: 'unlimited' }),
    arbSpec('A2'), arbSpec('A3'), arbSpec('A4'), arbSpec('A5'),
  ),
  /** Which of A2..A5 exist before the first op (the others appear through account ops). */
  initially: fc.array(fc.nat(6).map((n) => n > 0), { minLength: 4, maxLength: 4 }),
  ops: fc.array(fc.oneof(
    { arbitrary: arbTransferOp as fc.Arbitrary<Op>, weight: 20 },
    { arbitrary: arbSettleOp, weight: 8 },
    { arbitrary: arbReverseOp, weight: 5 },
    { arbitrary: arbReplayOp, weight: 8 },
    { arbitrary: arbAccountOp, weight: 4 },
    { arbitrary: arbCloseOp, weight: 1 },
    { arbitrary: arbClockOp, weight: 3 },
    { arbitrary: arbExpireOp, weight: 3 },
    { arbitrary: arbPageOp, weight: 8 },
  ), { minLength: Math.floor(opsMax / 2), maxLength: opsMax, size: 'max' }),
  finalPageLimit: fc.integer({ min: 1, max: 5 }),
});
type Run = typeof arbRun extends (n: number) => fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------------------------------------
// Executing a run against the model and a driver

/** How often each outcome was seen over a property's runs: the generators must reach them all. */
type Coverage = Map<string, number>;
const seen = (coverage: Coverage, key: string) => coverage.set(key, (coverage.get(key) ?? 0) + 1);

interface Reader { cursor: string; beforeSeq: bigint }

const reversible = (t: ModelTransfer) => t.kind === 'transfer' || t.kind === 'post';
const leftOf = (t: ModelTransfer) => (t.amount ?? 0n) - (t.reversedAmount ?? 0n);

/** An amount relative to `whole` (the hold's, or what is left to reverse). */
function relativeAmount(how: string, whole: bigint, pick: number): bigint | undefined {
  if (how === 'omit') return undefined;
  if (how === 'one') return 1n;
  if (how === 'over') return whole < MAX ? whole + 1n : whole;
  if (how === 'part' && whole > 1n) return 1n + (BigInt(pick) % (whole - 1n));
  return whole > 0n ? whole : 1n;
}

class Execution {
  readonly model = new LedgerModel();
  private nextId = 0;
  /** Ids refused as malformed (never recorded): the next new transfer reuses one. */
  private readonly retryable: string[] = [];
  readonly attempted = new Set<string>(NO_RECORD);
  private readonly readers = new Map<string, Reader>();
  /** Transfers whose amount sits at a boundary, for the coverage count. */
  private readonly edges = new Map<string, number>();

  constructor(
    private readonly run: Run,
    private readonly driver: Driver,
    readonly clock: { ms: number },
    private readonly coverage: Coverage,
  ) {}

  private spec(id: string): AccountSpec | undefined {
    return this.run.specs.find((s) => s.id === id);
  }

  private seen(key: string): void {
    seen(this.coverage, key);
  }

  async execute(): Promise<void> {
    const initial = this.run.specs.filter((_, i) => i < 2 || this.run.initially[i - 2]);
    for (const spec of initial) await this.account(spec, 0);
    for (const op of this.run.ops) {
      this.clock.ms += OP_STEP_MS;
      if (op.t === 'transfer') await this.transfer(op);
      else if (op.t === 'settle') await this.settle(op);
      else if (op.t === 'reverse') await this.reverse(op);
      else if (op.t === 'replay') await this.replay(op);
      else if (op.t === 'account') await this.accountOp(op);
      else if (op.t === 'close') await this.close(this.closing(op.who, op.again));
      else if (op.t === 'clock') this.clock.ms += op.stepMs;
      else if (op.t === 'expire') await this.expire(op);
      else await this.page(op);
    }
  }

  private async account(spec: AccountSpec, style: number): Promise<void> {
    const expected = this.model.createAccount(spec, this.clock.ms);
    this.seen(`account ${expected.kind}`);
    await this.driver.createAccount(spec, style, expected);
  }

  private async accountOp(op: AccountOp): Promise<void> {
    const base = at(this.run.specs, op.who);
    const existing = this.model.accounts.get(base.id);
    const spec: AccountSpec = { ...(existing ?? base) };
    if (existing) {
      if (op.changes.includes('currency')) spec.currency = spec.currency === 'USD' ? 'EUR' : 'USD';
      if (op.changes.includes('overdraftLimit')) {
        const od = spec.overdraft;
        spec.overdraft = od === 'unlimited' ? 0n : od < MAX ? od + 1n : 'unlimited';
      }
      if (op.changes.includes('metadata')) spec.metadata = { ...spec.metadata, changed: 'yes' };
    }
    if (op.reorder) spec.metadata = Object.fromEntries(Object.entries(spec.metadata).reverse());
    await this.account({ id: spec.id, currency: spec.currency, overdraft: spec.overdraft,
      metadata: spec.metadata }, op.style);
  }

  private closing(who: number, again: boolean): string {
    const closed = [...this.model.accounts.values()].filter((a) => a.closedAtMs !== undefined);
    return again && closed.length > 0 ? at(closed, who).id : at(ALL_IDS, who);
  }

  private async close(id: string): Promise<void> {
    const expected = this.model.closeAccount(id, this.clock.ms);
    this.seen(expected.kind === 'notFound' ? 'close notFound'
      : `close ${expected.replayed ? 'replayed' : 'closed'}`);
    await this.driver.close(id, expected);
  }

  private newId(): string {
    const id = this.retryable.shift() ?? `T${this.nextId++}`;
    this.attempted.add(id);
    return id;
  }

  private async transfer(op: TransferOp): Promise<void> {
    const malformed = this.driver.malformed && op.malformed > 0 ? op.malformed : 0;
    const from = at(ALL_IDS, op.from);
    let to = at(ALL_IDS, op.to);
    const currencyOf = (id: string) => this.spec(id)?.currency;
    const sameCurrency = KNOWN.filter((id) => id !== from && currencyOf(id) === currencyOf(from));
    if (op.pairing > 0 && sameCurrency.length > 0) to = at(sameCurrency, op.to);
    if (malformed === 1) to = from;
    else if (to === from) to = at(ALL_IDS, op.to + 1);
    const currency = op.currency === 'omit' ? undefined : op.currency === 'GBP' ? 'GBP'
      : (this.spec(op.currency === 'from' ? from : to)?.currency ?? 'USD');
    const id = this.newId();
    const amount = this.edgeAmount(op.edge, from, to) ?? op.amount;
    const metadata = at(METADATA, op.meta);
    const req: TransferRequest = { id, from, to, amount, currency, metadata };
    if (op.pending) {
      req.pending = true;
      if (op.timeout !== undefined) req.timeoutSeconds = op.timeout;
    }
    if (malformed > 0 && this.driver.malformed) {
      this.seen('malformed');
      await this.driver.malformed(req, malformed, op.style);
      this.retryable.push(id);
      return;
    }
    await this.decide(req, op.style, op.twice);
  }

  private edgeAmount(edge: number, fromId: string, toId: string): bigint | undefined {
    const from = this.model.accounts.get(fromId);
    const to = this.model.accounts.get(toId);
    if (edge === 0 || !from || !to) return undefined;
    let amount: bigint;
    if (edge <= 2) {
      if (from.overdraft === 'unlimited') return undefined;
      amount = from.credits - from.debits - from.debitsPending + from.overdraft + BigInt(edge - 1);
    } else {
      const debits = from.debits + from.debitsPending;
      const credits = to.credits + to.creditsPending;
      amount = MAX - (debits > credits ? debits : credits) + BigInt(edge - 3);
    }
    if (amount < 1n || amount > MAX) return undefined;
    this.edges.set(`${fromId}>${toId}:${amount}`, edge);
    return amount;
  }

  /**
   * A record to aim a post, void or reversal at: see arbAim. `good`: one it may settle or
   * reverse; `sameKind`: one of the kind it acts on.
   */
  private aimed(aim: number, pick: number, good: (t: ModelTransfer) => boolean,
    sameKind: (t: ModelTransfer) => boolean): string {
    const records = this.model.decidedIds.map((id) => this.model.transfers.get(id))
      .filter((t): t is ModelTransfer => t !== undefined);
    const tiers = [aim <= 5 ? records.filter(good) : [], aim <= 6 ? records.filter(sameKind) : [],
      aim <= 7 ? records : []];
    const from = tiers.find((list) => list.length > 0);
    return from ? at(from, pick).request.id : at(NO_RECORD, pick);
  }

  private async settle(op: SettleOp): Promise<void> {
    const target = this.aimed(op.aim, op.pick, (t) => t.pendingStatus === 'pending',
      (t) => t.pendingStatus !== undefined);
    const hold = this.model.transfers.get(target);
    let when = 'now';
    const expiry = hold?.pendingStatus === 'pending' ? hold.expiresAtMs : undefined;
    if (op.when !== 'now' && expiry != null) {
      const ms = op.when === 'at' ? expiry : expiry - 1;
      if (ms >= this.clock.ms) [this.clock.ms, when] = [ms, op.when];
    }
    const amount = op.op === 'post'
      ? relativeAmount(op.amount, hold?.amount ?? BigInt(op.pick + 1), op.pick) : undefined;
    const req: TargetedRequest = { op: op.op, id: this.newId(), target, metadata:
      at(METADATA, op.meta), ...(amount === undefined ? {} : { amount }) };
    await this.decideTargeted(req, op.style, op.twice, when);
  }

  private async reverse(op: ReverseOp): Promise<void> {
    const open = (t: ModelTransfer) => t.status === 'committed' && reversible(t) && leftOf(t) > 0n;
    const target = ((op.aim === 4 || op.aim === 5) && this.leastAffordable(open))
      || this.aimed(op.aim, op.pick, open, reversible);
    const original = this.model.transfers.get(target);
    const left = original && reversible(original) ? leftOf(original) : BigInt(op.pick + 1);
    // Aimed at what its payer can least afford: all of it.
    const amount = relativeAmount(op.aim === 4 || op.aim === 5 ? 'omit' : op.amount, left,
      op.pick);
    const req: TargetedRequest = { op: 'reversal', id: this.newId(), target, metadata:
      at(METADATA, op.meta), ...(amount === undefined ? {} : { amount }) };
    await this.decideTargeted(req, op.style, op.twice);
  }

  /** The reversal its payer can least afford: the original's recipient may have spent it. */
  private leastAffordable(open: (t: ModelTransfer) => boolean): string | undefined {
    let best: { id: string; margin: bigint } | undefined;
    for (const t of this.model.transfers.values()) {
      const payer = this.model.accounts.get(t.to);
      if (!open(t) || !payer || payer.overdraft === 'unlimited') continue;
      const margin = payer.credits - payer.debits - payer.debitsPending + payer.overdraft
        - leftOf(t);
      if (!best || margin < best.margin) best = { id: t.request.id, margin };
    }
    return best?.id;
  }

  private async replay(op: ReplayOp): Promise<void> {
    const ids = this.model.decidedIds;
    if (ids.length === 0) return;
    const aimed = (good: (t: ModelTransfer) => boolean) => [...this.model.transfers.values()]
      .filter(good).map((t) => t.request.id);
    const among = op.aim === 4 ? aimed((t) => (t.pendingStatus !== undefined
      && t.pendingStatus !== 'pending') || (t.reversedAmount ?? 0n) > 0n)
      : op.aim === 5 ? aimed((t) => t.status === 'committed' && isTargeted(t.request)) : [];
    const decided = this.model.transfers.get(at(among.length > 0 ? among : ids, op.pick));
    if (!decided) throw new Error('model: a decided id without a record');
    const o = decided.request;
    const changes = new Set<ReplayChange>(op.changes);
    if (isTargeted(o)) return this.replayTargeted(o, op, changes);
    if (changes.has('kind')) {
      // The id of a transfer or hold, used for a post: the kind differs.
      const post: TargetedRequest = { op: 'post', id: o.id, target: at(ids, op.pick + 1),
        metadata: o.metadata };
      return this.decideTargeted(post, op.style, false);
    }
    const k = decided.accountsCurrency;
    const req: TransferRequest = { ...o, metadata: { ...o.metadata } };
    const other = (...not: string[]) => ALL_IDS.find((id) => !not.includes(id)) as string;
    if (changes.has('from')) req.from = other(o.from, o.to);
    if (changes.has('to')) req.to = other(o.to, req.from);
    if (changes.has('amount')) req.amount = o.amount < MAX ? o.amount + 1n : o.amount - 1n;
    if (changes.has('currency')) {
      req.currency = (o.currency ?? k) === 'USD' ? 'EUR' : 'USD';
    } else if (op.toggleCurrency) {
      // Omitted and the accounts' currency are the same request.
      if (o.currency === undefined && k !== undefined) req.currency = k;
      if (o.currency !== undefined && o.currency === k) req.currency = undefined;
    }
    if (changes.has('pending')) req.pending = !o.pending;
    if (!req.pending) delete req.timeoutSeconds; // a timeout is for holds only
    else if (changes.has('timeoutSeconds')) {
      req.timeoutSeconds = o.timeoutSeconds === undefined ? 5
        : op.reorder ? undefined : o.timeoutSeconds + 1;
    }
    if (changes.has('metadata')) req.metadata = { ...req.metadata, changed: 'yes' };
    if (op.reorder) req.metadata = Object.fromEntries(Object.entries(req.metadata).reverse());
    await this.decide(req, op.style);
  }

  private async replayTargeted(
    o: TargetedRequest, op: ReplayOp, changes: Set<ReplayChange>,
  ): Promise<void> {
    if (changes.has('kind') && op.toggleCurrency) {
      // The id of a post, void or reversal, used for a transfer: the kind differs.
      const t = this.model.transfers.get(o.id);
      const req: TransferRequest = { id: o.id, from: t?.from || 'A0', to: t?.to || 'A2',
        amount: t?.amount || 1n, currency: op.reorder ? t?.currency : undefined,
        metadata: o.metadata };
      return this.decide(req, op.style);
    }
    const req: TargetedRequest = { ...o, metadata: { ...o.metadata } };
    if (changes.has('kind')) {
      req.op = o.op === 'post' ? 'void' : o.op === 'void' ? 'reversal' : 'post';
    }
    if (changes.has('target')) req.target = o.target === 'N0' ? 'N1' : 'N0';
    if (changes.has('amount')) {
      req.amount = o.amount === undefined ? 1n : op.reorder ? undefined
        : o.amount < MAX ? o.amount + 1n : o.amount - 1n;
    }
    if (req.op === 'void') delete req.amount; // a void has no amount
    if (changes.has('metadata')) req.metadata = { ...req.metadata, changed: 'yes' };
    if (op.reorder) req.metadata = Object.fromEntries(Object.entries(req.metadata).reverse());
    await this.decideTargeted(req, op.style, false);
  }

  /** Counts a decided result (or conflict) for the coverage check. */
  private count(expected: ModelTransferResult, label = ''): string | undefined {
    if (expected.kind === 'conflict') {
      for (const f of expected.fields) this.seen(`conflict ${f}`);
      return undefined;
    }
    const t = expected.transfer;
    if (expected.replayed && t.reversedAmount) this.seen(`replayed ${t.kind} since reversed`);
    if (expected.replayed && t.pendingStatus !== undefined && t.pendingStatus !== 'pending') {
      this.seen(`replayed hold since ${t.pendingStatus}`);
    }
    const what = `${t.kind} ${t.status === 'committed' ? 'committed' : `rejected ${t.reason}`}`;
    this.seen(expected.replayed ? `${t.kind} replayed ${t.status}` : what);
    if (label && !expected.replayed) this.seen(`${label} ${what}`);
    return expected.replayed ? undefined : what;
  }

  private async decide(req: TransferRequest, style: number, twice = false): Promise<void> {
    const expected = this.model.transfer(req, this.clock.ms);
    const what = this.count(expected);
    const edge = this.edges.get(`${req.from}>${req.to}:${req.amount}`);
    if (edge !== undefined && what) this.seen(`edge ${edge} ${what.replace(/^\w+ /, '')}`);
    // Twice at once only for a new id: duplicates of a conflict or a replay change nothing.
    const concurrent = twice && expected.kind === 'decided' && !expected.replayed;
    if (concurrent) this.seen('concurrent duplicate');
    await this.driver.transfer(req, style, expected, concurrent);
  }

  private async decideTargeted(
    req: TargetedRequest, style: number, twice: boolean, when = 'now',
  ): Promise<void> {
    const expected = req.op === 'reversal' ? this.model.reverse(req, this.clock.ms)
      : this.model.settle(req, this.clock.ms);
    this.count(expected, when === 'now' ? '' : when);
    const concurrent = twice && expected.kind === 'decided' && !expected.replayed;
    if (concurrent) this.seen(`concurrent duplicate ${req.op}`);
    await this.driver.targeted(req, style, expected, concurrent);
  }

  /** A sweep, maybe at a millisecond before an open hold's expiry, or at it. */
  private async expire(op: ExpireOp): Promise<void> {
    const due = this.model.openHolds().filter((h) => h.expiresAtMs != null
      && h.expiresAtMs - (op.when === 'at' ? 0 : 1) >= this.clock.ms);
    const hold = due.length > 0 && op.when !== 'now' ? at(due, op.pick) : undefined;
    if (hold?.expiresAtMs != null) {
      this.clock.ms = hold.expiresAtMs - (op.when === 'at' ? 0 : 1);
    }
    const released = this.model.expireHolds(this.clock.ms);
    this.seen(released.length > 0 ? 'expire released' : 'expire none');
    if (hold) {
      const gone = released.some((r) => r.seq === hold.seq);
      this.seen(`expire ${op.when} ${gone ? 'released' : 'kept'}`);
    }
    await this.driver.expire(released);
  }

  /** One page of a reader that pages through an account while transfers keep arriving. */
  private async page(op: PageOp): Promise<void> {
    const id = at(ALL_IDS, op.who);
    const reader = this.readers.get(id);
    const page = await this.driver.entries(id, op.limit, reader?.cursor);
    const account = this.model.accounts.get(id);
    if (!account) return void expect(page).toBeUndefined();
    const older = account.entries.filter((e) => !reader || e.seq < reader.beforeSeq).reverse();
    expect(page?.entries).toEqual(older.slice(0, op.limit).map(entryView));
    expect(page?.next !== null).toBe(older.length > op.limit);
    this.seen(reader ? 'page continued' : 'page first');
    const last = older[op.limit - 1];
    if (page?.next && last) this.readers.set(id, { cursor: page.next, beforeSeq: last.seq });
    else this.readers.delete(id);
  }
}

// ---------------------------------------------------------------------------------------------
// After a run: every account, record and entry list, and the double-entry sums

const sum = (values: string[]) => values.reduce((s, v) => s + BigInt(v), 0n);

async function auditEverything(x: Execution, driver: Driver, pageLimit: number): Promise<void> {
  const model = x.model;
  const accounts: Account[] = [];
  for (const id of ALL_IDS) {
    const got = await driver.getAccount(id);
    const m = model.accounts.get(id);
    expect(got, `account ${id}`).toEqual(m ? accountView(m) : undefined);
    if (got) accounts.push(got);
  }
  const committed: Transfer[] = [];
  for (const id of x.attempted) {
    const got = await driver.getTransfer(id);
    const m = model.transfers.get(id);
    expect(got, `record ${id}`).toEqual(m ? transferView(m, x.clock.ms) : undefined);
    if (got?.status === 'committed') committed.push(got);
  }
  for (const id of ALL_IDS) await auditEntries(x, driver, id, pageLimit);
  // Double entry, per currency: the balances sum to 0, debits equal credits equal what the
  // transfers, posts and reversals moved; pending debits equal pending credits equal the open
  // holds. Every committed record has a seq, and they are exactly 1..n.
  for (const currency of CURRENCIES) {
    const mine = accounts.filter((a) => a.currency === currency);
    const moved = sum(committed.filter((t) => t.currency === currency
      && ['transfer', 'post', 'reversal'].includes(t.kind)).map((t) => t.amount));
    // Open: not yet released, which a hold past its expiry may still be (its record says
    // expired), so the model, checked against every record above, tells which.
    const held = model.openHolds().filter((h) => h.currency === currency)
      .reduce((s, h) => s + (h.amount ?? 0n), 0n);
    expect({
      currency,
      balances: sum(mine.map((a) => a.balance)),
      debits: sum(mine.map((a) => a.debits)),
      credits: sum(mine.map((a) => a.credits)),
      debitsPending: sum(mine.map((a) => a.debitsPending)),
      creditsPending: sum(mine.map((a) => a.creditsPending)),
    }).toEqual({ currency, balances: 0n, debits: moved, credits: moved, debitsPending: held,
      creditsPending: held });
  }
  const seqs = committed.map((t) => BigInt(t.seq ?? '0'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  expect(seqs).toEqual(Array.from({ length: Number(model.seq) }, (_, i) => BigInt(i + 1)));
}

async function auditEntries(
  x: Execution, driver: Driver, id: string, limit: number,
): Promise<void> {
  const account = x.model.accounts.get(id);
  const collected: unknown[] = [];
  let cursor: string | undefined;
  for (let pages = 0; ; pages++) {
    const page = await driver.entries(id, limit, cursor);
    if (!account) return void expect(page, `entries of unknown ${id}`).toBeUndefined();
    if (!page) throw new Error(`entries of ${id}: account not found`);
    expect(page.entries.length).toBeLessThanOrEqual(limit);
    collected.push(...page.entries);
    if (page.next === null) break;
    expect(page.entries.length, `a non-final page of ${id} is full`).toBe(limit);
    expect(pages, `paging ${id} ends`).toBeLessThanOrEqual(account.entries.length / limit);
    cursor = page.next;
  }
  // Newest first, every entry once: the model's list reversed.
  expect(collected, `entries of ${id}`).toEqual([...account.entries].reverse().map(entryView));
}

// ---------------------------------------------------------------------------------------------
// The properties

/**
 * Shrinking a failure re-runs whole sequences (and builds an app per HTTP run), which can take
 * minutes; fast-check then stops at this limit and reports the smallest case found so far, with
 * its seed, well before the test's own timeout.
 */
const SHRINK_BUDGET_MS = 40_000;
const TEST_TIMEOUT_MS = 90_000;

const options = {
  interruptAfterTimeLimit: SHRINK_BUDGET_MS,
  ...(process.env.FC_SEED === undefined ? {} : { seed: Number(process.env.FC_SEED) }),
  ...(process.env.FC_PATH === undefined ? {} : { path: process.env.FC_PATH }),
};

const rejected = (kind: string, reasons: string[]) => reasons.map((r) => `${kind} rejected ${r}`);

/** Outcomes both properties must reach: a generator that misses one cannot find its bugs. */
const REQUIRED = [
  'transfer committed', 'hold committed', 'post committed', 'void committed',
  'reversal committed',
  ...rejected('transfer', ['ACCOUNT_NOT_FOUND', 'ACCOUNT_CLOSED', 'CURRENCY_MISMATCH',
    'INSUFFICIENT_FUNDS', 'BALANCE_OVERFLOW']),
  ...rejected('hold', ['ACCOUNT_NOT_FOUND', 'CURRENCY_MISMATCH', 'INSUFFICIENT_FUNDS']),
  ...rejected('post', ['PENDING_TRANSFER_NOT_FOUND']),
  ...rejected('void', ['PENDING_TRANSFER_NOT_FOUND']),
  ...rejected('reversal', ['TRANSFER_NOT_FOUND', 'NOT_REVERSIBLE']),
  'transfer replayed committed', 'transfer replayed rejected', 'post replayed rejected',
  ...['to', 'amount', 'metadata', 'kind'].map((f) => `conflict ${f}`),
  'account created', 'account replayed', 'account conflict', 'close closed',
  'expire released', 'expire none', 'page first', 'page continued', 'concurrent duplicate',
  'concurrent duplicate post', 'concurrent duplicate reversal',
];

/**
 * Rarer outcomes, required of the Ledger API property's many runs only: exactly at the
 * overdraft limit and at 2^128−1 commits, one more is rejected; a post a millisecond before the
 * expiry commits, at it is too late; a sweep at the expiry releases, a millisecond before it
 * does not; replays of holds and transfers settled or reversed since answer as first decided.
 */
const LEDGER_REQUIRED = [
  'edge 1 committed', 'edge 2 rejected INSUFFICIENT_FUNDS', 'edge 3 committed',
  'edge 4 rejected BALANCE_OVERFLOW', 'justBefore post committed',
  'at post rejected PENDING_TRANSFER_EXPIRED', 'at void rejected PENDING_TRANSFER_EXPIRED',
  'expire at released', 'expire justBefore kept',
  ...rejected('hold', ['ACCOUNT_CLOSED', 'BALANCE_OVERFLOW']),
  ...rejected('post', ['PENDING_TRANSFER_NOT_PENDING', 'PENDING_TRANSFER_ALREADY_POSTED',
    'PENDING_TRANSFER_ALREADY_VOIDED', 'PENDING_TRANSFER_EXPIRED', 'EXCEEDS_PENDING_AMOUNT']),
  ...rejected('void', ['PENDING_TRANSFER_NOT_PENDING', 'PENDING_TRANSFER_ALREADY_POSTED',
    'PENDING_TRANSFER_ALREADY_VOIDED', 'PENDING_TRANSFER_EXPIRED']),
  ...rejected('reversal', ['EXCEEDS_REVERSIBLE_AMOUNT', 'ACCOUNT_CLOSED', 'INSUFFICIENT_FUNDS',
    'BALANCE_OVERFLOW']),
  'hold replayed committed', 'post replayed committed', 'void replayed committed',
  'reversal replayed committed', 'replayed transfer since reversed', 'replayed hold since posted',
  'replayed hold since voided', 'replayed hold since expired',
  ...['from', 'currency', 'pending', 'timeoutSeconds', 'holdId', 'transferId'].map((f) =>
    `conflict ${f}`),
  'close replayed', 'close notFound', 'concurrent duplicate void',
];

function expectCoverage(coverage: Coverage, extra: string[]): void {
  const required = [...REQUIRED, ...extra];
  expect(required.filter((k) => !coverage.has(k)), JSON.stringify([...coverage])).toEqual([]);
}

/** A driver that archives and frees (all but each stream's newest record) after each write. */
function archiving(driver: Driver, archive: () => Promise<unknown>): Driver {
  const after = <A extends unknown[]>(call: (...args: A) => Promise<void>) =>
    async (...args: A) => {
      await call(...args);
      await archive();
    };
  return { ...driver, createAccount: after(driver.createAccount),
    transfer: after(driver.transfer), targeted: after(driver.targeted),
    close: after(driver.close), expire: after(driver.expire) };
}

/**
 * Runs through HTTP with the archive (each write is followed by a copy and a free). Not fewer
 * than the plain HTTP runs: a reader continuing its pages ('page continued', across the
 * archive's boundary here) came 3-6 times in 16 runs, and twice in a day not at all.
 */
const ARCHIVE_RUNS = 30;

describe('model-based: random transfers, holds and reversals against an in-memory model', () => {
  let shared: Fixture;
  beforeAll(async () => { shared = await fixture(); });
  afterAll(async () => { await shared.close(); });

  test(`through the Ledger API: ${LEDGER_RUNS} runs of up to ${LEDGER_OPS_MAX} ops`, async () => {
    const coverage: Coverage = new Map();
    await fc.assert(fc.asyncProperty(arbRun(LEDGER_OPS_MAX), async (run) => {
      // A fresh ledger name per run: its own keys and its own seq, on the fixture's connection.
      const clock = { ms: CLOCK_START_MS };
      const ledger = new Ledger({ redis: shared.redis, keys: ledgerKeys('test', uniqueLedgerName()),
        now: () => clock.ms });
      const driver = ledgerDriver(ledger);
      const x = new Execution(run, driver, clock, coverage);
      await x.execute();
      await auditEverything(x, driver, run.finalPageLimit);
    }), { numRuns: LEDGER_RUNS, ...options });
    expectCoverage(coverage, LEDGER_REQUIRED);
  }, TEST_TIMEOUT_MS);

  test(`through HTTP: ${HTTP_RUNS} runs of up to ${HTTP_OPS_MAX} ops`, async () => {
    const coverage: Coverage = new Map();
    await fc.assert(fc.asyncProperty(arbRun(HTTP_OPS_MAX), async (run) => {
      const clock = { ms: CLOCK_START_MS };
      // As the service runs by default: concurrent single transfers share script calls.
      const f = await fixture({ now: () => clock.ms, groupCommit: true });
      try {
        const driver = httpDriver(f.app, f.ledger);
        const x = new Execution(run, driver, clock, coverage);
        await x.execute();
        await auditEverything(x, driver, run.finalPageLimit);
      } finally {
        await f.close();
      }
    }), { numRuns: HTTP_RUNS, ...options });
    expectCoverage(coverage, ['malformed']);
  }, TEST_TIMEOUT_MS);

  test(`through HTTP, archived and freed after every write: ${ARCHIVE_RUNS} runs`, async () => {
    const db = await startTestPostgres();
    try {
      const coverage: Coverage = new Map();
      await fc.assert(fc.asyncProperty(arbRun(HTTP_OPS_MAX), async (run) => {
        const clock = { ms: CLOCK_START_MS };
        const f = await fixture({ now: () => clock.ms, groupCommit: true,
          archive: { url: db.url, keepRecords: 1, background: false } });
        try {
          const archiver = f.app.archiver;
          if (archiver === undefined) throw new Error('no archiver');
          const driver = archiving(httpDriver(f.app, f.ledger), () => archiver.archiveOnce());
          const x = new Execution(run, driver, clock, coverage);
          await x.execute();
          await auditEverything(x, driver, run.finalPageLimit);
          // Everything but each stream's newest record and open holds was freed.
          const head = Number(await f.ledger.journalHead());
          expect(Number(await f.redis.hget(f.keys.positions(), 'archive:f') ?? 0))
            .toBe(Math.max(0, head - 1));
        } finally {
          await f.close();
        }
      }), { numRuns: ARCHIVE_RUNS, ...options });
      expectCoverage(coverage, ['malformed']);
    } finally {
      await db.close();
    }
  }, 3 * TEST_TIMEOUT_MS);
});
