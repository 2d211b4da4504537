/**
 * An independent in-memory model of the ledger, written from the contract alone (the README and
 * docs/holds.md; it imports nothing from src/), used by test/model.test.ts and
 * test/http/batch-model.test.ts as the auditor of every reply.
 *
 * Money is bigint here and a decimal string in the views, which are the exact JSON the API
 * returns (Account, Transfer, Entry), so a reply can be compared with `toEqual`.
 */

/** The contract: amounts and balance magnitudes are at most 2^128−1. */
export const MODEL_AMOUNT_MAX = 2n ** 128n - 1n;
/** docs/holds.md: one sweep call releases at most this many expired holds, oldest first. */
export const MODEL_EXPIRE_BATCH_MAX = 200;

export type Metadata = Record<string, string>;
export type Overdraft = bigint | 'unlimited';
export type Kind = 'transfer' | 'hold' | 'post' | 'void' | 'reversal';
export type TargetedKind = 'post' | 'void' | 'reversal';
export type PendingStatus = 'pending' | 'posted' | 'voided' | 'expired';
export type Reason =
  | 'ACCOUNT_NOT_FOUND' | 'ACCOUNT_CLOSED' | 'CURRENCY_MISMATCH' | 'INSUFFICIENT_FUNDS'
  | 'BALANCE_OVERFLOW' | 'PENDING_TRANSFER_NOT_FOUND' | 'PENDING_TRANSFER_NOT_PENDING'
  | 'PENDING_TRANSFER_ALREADY_POSTED' | 'PENDING_TRANSFER_ALREADY_VOIDED'
  | 'PENDING_TRANSFER_EXPIRED' | 'EXCEEDS_PENDING_AMOUNT' | 'TRANSFER_NOT_FOUND'
  | 'NOT_REVERSIBLE' | 'EXCEEDS_REVERSIBLE_AMOUNT';
export type TransferField =
  'from' | 'to' | 'amount' | 'currency' | 'metadata' | 'pending' | 'timeoutSeconds';
/** What a 409 may name: a transfer's or hold's fields, a post's, void's or reversal's, or kind. */
export type ConflictField = TransferField | 'holdId' | 'transferId' | 'kind';
export type AccountField = 'currency' | 'overdraftLimit' | 'metadata';

export interface AccountSpec {
  id: string;
  currency: string;
  overdraft: Overdraft;
  metadata: Metadata;
}

export interface ModelEntry {
  transferId: string;
  kind: 'transfer' | 'post' | 'reversal';
  seq: bigint;
  amount: bigint;
  balanceAfter: bigint;
  counterparty: string;
  createdAtMs: number;
}

export interface ModelAccount extends AccountSpec {
  debits: bigint;
  credits: bigint;
  /** Sums of the open holds debiting and crediting it. */
  debitsPending: bigint;
  creditsPending: bigint;
  createdAtMs: number;
  closedAtMs?: number;
  /** Oldest first. */
  entries: ModelEntry[];
}

/** A transfer (`pending` absent or false) or a hold. */
export interface TransferRequest {
  id: string;
  from: string;
  to: string;
  amount: bigint;
  /** Undefined: omitted, meaning the accounts' currency. */
  currency?: string;
  metadata: Metadata;
  pending?: boolean;
  /** A hold's timeout; undefined: it never expires. */
  timeoutSeconds?: number;
}

/** A post or void of the hold `target`, or a reversal of the transfer or post `target`. */
export interface TargetedRequest {
  op: TargetedKind;
  id: string;
  target: string;
  /** Undefined: omitted (a post: the whole hold; a reversal: all still reversible). */
  amount?: bigint;
  metadata: Metadata;
}

export type ModelRequest = TransferRequest | TargetedRequest;

export const isTargeted = (r: ModelRequest): r is TargetedRequest => 'op' in r;

/** A transfer's or hold's request (a programmer error for any other record). */
export function transferRequestOf(t: ModelTransfer): TransferRequest {
  if (isTargeted(t.request)) throw new Error(`model: ${t.request.id} is a ${t.kind}`);
  return t.request;
}

/** A decided record of any kind, committed or rejected, and its state now. */
export interface ModelTransfer {
  kind: Kind;
  request: ModelRequest;
  /**
   * A transfer's or hold's accounts' currency when it was decided: the debit account's, else the
   * credit account's (the contract does not say which when they differ or one is missing).
   */
  accountsCurrency: string | undefined;
  /** What the record shows: as asked for a transfer or hold, from the target for the others. */
  from: string;
  to: string;
  /** Undefined: "" (a post, void or reversal of an unknown target, without an amount). */
  amount?: bigint;
  currency?: string;
  status: 'committed' | 'rejected';
  reason?: Reason;
  seq?: bigint;
  fromBalanceAfter?: bigint;
  toBalanceAfter?: bigint;
  createdAtMs: number;
  /** A committed hold's state. */
  pendingStatus?: PendingStatus;
  postedAmount?: bigint;
  /** A committed hold's expiry; null: none. */
  expiresAtMs?: number | null;
  /** A committed transfer's or post's total reversed so far. */
  reversedAmount?: bigint;
  /** The answer as first decided: a replay answers exactly this. */
  answer: TransferView;
}

export type ModelTransferResult =
  | { kind: 'decided'; transfer: ModelTransfer; replayed: boolean }
  | { kind: 'conflict'; fields: ConflictField[] };

export type ModelAccountResult =
  | { kind: 'created' | 'replayed'; account: ModelAccount }
  | { kind: 'conflict'; fields: AccountField[] };

export type ModelCloseResult =
  | { kind: 'closed'; account: ModelAccount; replayed: boolean }
  | { kind: 'notFound' };

/** One hold released by a sweep call, as the sweep reports it. */
export interface ModelRelease { seq: bigint; expiresAtMs: number; amount: bigint; currency: string }

/** Metadata equality ignores key order (it is a JSON object). */
export function sameMetadata(a: Metadata, b: Metadata): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

const iso = (ms: number) => new Date(ms).toISOString();

export class LedgerModel {
  readonly accounts = new Map<string, ModelAccount>();
  readonly transfers = new Map<string, ModelTransfer>();
  /** Ids in the order they were decided. */
  readonly decidedIds: string[] = [];
  seq = 0n;

  /** A copy to decide on (an atomic batch) that shares nothing mutable with this model. */
  clone(): LedgerModel {
    const c = new LedgerModel();
    for (const [id, a] of this.accounts) {
      c.accounts.set(id, { ...a, metadata: { ...a.metadata }, entries: [...a.entries] });
    }
    for (const [id, t] of this.transfers) c.transfers.set(id, { ...t });
    c.decidedIds.push(...this.decidedIds);
    c.seq = this.seq;
    return c;
  }

  createAccount(spec: AccountSpec, nowMs: number): ModelAccountResult {
    const existing = this.accounts.get(spec.id);
    if (existing) {
      const fields: AccountField[] = [];
      if (existing.currency !== spec.currency) fields.push('currency');
      if (existing.overdraft !== spec.overdraft) fields.push('overdraftLimit');
      if (!sameMetadata(existing.metadata, spec.metadata)) fields.push('metadata');
      if (fields.length > 0) return { kind: 'conflict', fields };
      return { kind: 'replayed', account: existing };
    }
    const account: ModelAccount = { ...spec, metadata: { ...spec.metadata }, debits: 0n,
      credits: 0n, debitsPending: 0n, creditsPending: 0n, createdAtMs: nowMs, entries: [] };
    this.accounts.set(spec.id, account);
    return { kind: 'created', account };
  }

  /** Closing is for good; a second close answers the account again. */
  closeAccount(id: string, nowMs: number): ModelCloseResult {
    const account = this.accounts.get(id);
    if (!account) return { kind: 'notFound' };
    if (account.closedAtMs !== undefined) return { kind: 'closed', account, replayed: true };
    account.closedAtMs = nowMs;
    return { kind: 'closed', account, replayed: false };
  }

  /** A transfer, or a hold when `request.pending`. */
  transfer(request: TransferRequest, nowMs: number): ModelTransferResult {
    const decided = this.transfers.get(request.id);
    if (decided) return compareWithDecided(decided, request);
    const from = this.accounts.get(request.from);
    const to = this.accounts.get(request.to);
    const hold = request.pending === true;
    const accountsCurrency = from?.currency ?? to?.currency;
    const t = this.newRecord(hold ? 'hold' : 'transfer', request, nowMs, {
      accountsCurrency, from: request.from, to: request.to, amount: request.amount,
      currency: request.currency ?? accountsCurrency,
    });
    const reason = this.movementRejection(from, to, request.amount, request.currency);
    if (reason !== undefined) {
      t.reason = reason;
    } else if (from && to && hold) {
      from.debitsPending += request.amount;
      to.creditsPending += request.amount;
      const timeout = request.timeoutSeconds;
      this.commit(t, from, to, { pendingStatus: 'pending',
        expiresAtMs: timeout === undefined ? null : nowMs + timeout * 1000 });
    } else if (from && to) {
      this.move(t, from, to, request.amount);
      this.commit(t, from, to, { reversedAmount: 0n });
    }
    return this.decide(t);
  }

  /** A post or void of a hold. */
  settle(request: TargetedRequest, nowMs: number): ModelTransferResult {
    const decided = this.transfers.get(request.id);
    if (decided) return compareWithDecided(decided, request);
    const hold = this.transfers.get(request.target);
    const isHold = hold?.kind === 'hold' && hold.status === 'committed';
    const t = this.targetedRecord(request, nowMs, hold, isHold, isHold ? hold.amount : undefined);
    const reason = this.settleRejection(request, hold, nowMs);
    const from = this.accounts.get(t.from);
    const to = this.accounts.get(t.to);
    if (reason !== undefined) {
      t.reason = reason;
    } else if (hold?.amount !== undefined && from && to) {
      this.release(hold, request.op === 'post' ? 'posted' : 'voided');
      if (request.op === 'post') {
        const amount = request.amount ?? hold.amount;
        hold.postedAmount = amount;
        t.amount = amount;
        this.move(t, from, to, amount);
        this.commit(t, from, to, { reversedAmount: 0n });
      } else {
        this.commit(t, from, to, {});
      }
    } else {
      throw new Error(`model: hold ${request.target} of ${request.id} has no accounts`);
    }
    return this.decide(t);
  }

  /** Precedence of docs/holds.md; a hold found expired is released on the way. */
  private settleRejection(
    r: TargetedRequest, hold: ModelTransfer | undefined, nowMs: number,
  ): Reason | undefined {
    if (!hold || (hold.kind === 'hold' && hold.status === 'rejected')) {
      return 'PENDING_TRANSFER_NOT_FOUND';
    }
    if (hold.kind !== 'hold') return 'PENDING_TRANSFER_NOT_PENDING';
    if (hold.pendingStatus === 'posted') return 'PENDING_TRANSFER_ALREADY_POSTED';
    if (hold.pendingStatus === 'voided') return 'PENDING_TRANSFER_ALREADY_VOIDED';
    if (hold.pendingStatus === 'expired') return 'PENDING_TRANSFER_EXPIRED';
    if (hold.expiresAtMs != null && nowMs >= hold.expiresAtMs) {
      this.release(hold, 'expired');
      return 'PENDING_TRANSFER_EXPIRED';
    }
    if (r.op === 'post' && r.amount !== undefined && r.amount > (hold.amount ?? 0n)) {
      return 'EXCEEDS_PENDING_AMOUNT';
    }
    return undefined;
  }

  /** A reversal: moves (part of) a committed transfer or post back. */
  reverse(request: TargetedRequest, nowMs: number): ModelTransferResult {
    const decided = this.transfers.get(request.id);
    if (decided) return compareWithDecided(decided, request);
    const o = this.transfers.get(request.target);
    const reversible = o?.status === 'committed' && (o.kind === 'transfer' || o.kind === 'post');
    const left = reversible && o.amount !== undefined
      ? o.amount - (o.reversedAmount ?? 0n) : undefined;
    const amount = request.amount ?? left;
    const t = this.targetedRecord(request, nowMs, o, reversible, amount);
    const from = this.accounts.get(t.from);
    const to = this.accounts.get(t.to);
    let reason: Reason | undefined;
    if (!o) reason = 'TRANSFER_NOT_FOUND';
    else if (!reversible || left === undefined) reason = 'NOT_REVERSIBLE';
    else if (amount === undefined || amount === 0n || amount > left) {
      reason = 'EXCEEDS_REVERSIBLE_AMOUNT';
    } else reason = this.movementRejection(from, to, amount, undefined);
    if (reason !== undefined) {
      t.reason = reason;
    } else if (o && from && to && amount !== undefined) {
      o.reversedAmount = (o.reversedAmount ?? 0n) + amount;
      this.move(t, from, to, amount);
      this.commit(t, from, to, {});
    }
    return this.decide(t);
  }

  /** One sweep call at `nowMs`: the expired holds still open, oldest first. */
  expireHolds(nowMs: number): ModelRelease[] {
    const due = [...this.transfers.values()]
      .filter((t) => t.pendingStatus === 'pending' && t.expiresAtMs != null
        && t.expiresAtMs <= nowMs)
      .sort((a, b) => (a.expiresAtMs ?? 0) - (b.expiresAtMs ?? 0)
        || Number((a.seq ?? 0n) - (b.seq ?? 0n)))
      .slice(0, MODEL_EXPIRE_BATCH_MAX);
    for (const hold of due) this.release(hold, 'expired');
    return due.map((h) => ({ seq: h.seq ?? 0n, expiresAtMs: h.expiresAtMs ?? 0,
      amount: h.amount ?? 0n, currency: h.currency ?? '' }));
  }

  /** Holds open now (committed, still pending), expired or not. */
  openHolds(): ModelTransfer[] {
    return [...this.transfers.values()].filter((t) => t.pendingStatus === 'pending');
  }

  /** The contract's precedence for a new movement: not found, closed, currency, funds, overflow. */
  private movementRejection(
    from: ModelAccount | undefined, to: ModelAccount | undefined, amount: bigint,
    currency: string | undefined,
  ): Reason | undefined {
    if (!from || !to) return 'ACCOUNT_NOT_FOUND';
    if (from.closedAtMs !== undefined || to.closedAtMs !== undefined) return 'ACCOUNT_CLOSED';
    if (from.currency !== to.currency) return 'CURRENCY_MISMATCH';
    if (currency !== undefined && currency !== from.currency) return 'CURRENCY_MISMATCH';
    // Pending debits count against the funds, pending credits never do.
    if (from.overdraft !== 'unlimited'
      && balance(from) - from.debitsPending - amount < -from.overdraft) {
      return 'INSUFFICIENT_FUNDS';
    }
    // Every open hold counts as if posted, so that no post can overflow.
    if (from.debits + from.debitsPending + amount > MODEL_AMOUNT_MAX
      || to.credits + to.creditsPending + amount > MODEL_AMOUNT_MAX) {
      return 'BALANCE_OVERFLOW';
    }
    return undefined;
  }

  private newRecord(
    kind: Kind, request: ModelRequest, nowMs: number,
    shown: Pick<ModelTransfer, 'accountsCurrency' | 'from' | 'to' | 'amount' | 'currency'>,
  ): ModelTransfer {
    const copy = { ...request, metadata: { ...request.metadata } };
    // Rejected until committed; `answer` is set once decided (decide()).
    return { kind, request: copy, ...shown, status: 'rejected', createdAtMs: nowMs,
      answer: undefined as unknown as TransferView };
  }

  /**
   * A post's, void's or reversal's record. It shows the accounts of a target it acts on (a
   * reversal's the other way round) and "" for any other, and the currency of a committed target.
   */
  private targetedRecord(
    r: TargetedRequest, nowMs: number, target: ModelTransfer | undefined, actsOn: boolean,
    amount: bigint | undefined,
  ): ModelTransfer {
    const back = r.op === 'reversal';
    const shown = actsOn && target !== undefined;
    return this.newRecord(r.op, r, nowMs, { accountsCurrency: undefined,
      from: shown ? (back ? target.to : target.from) : '',
      to: shown ? (back ? target.from : target.to) : '',
      amount: r.amount ?? amount,
      currency: target?.status === 'committed' ? target.currency : undefined });
  }

  private move(t: ModelTransfer, from: ModelAccount, to: ModelAccount, amount: bigint): void {
    const seq = this.seq + 1n;
    const kind = t.kind as ModelEntry['kind'];
    const id = t.request.id;
    from.debits += amount;
    to.credits += amount;
    from.entries.push({ transferId: id, kind, seq, amount: -amount, balanceAfter: balance(from),
      counterparty: to.id, createdAtMs: t.createdAtMs });
    to.entries.push({ transferId: id, kind, seq, amount, balanceAfter: balance(to),
      counterparty: from.id, createdAtMs: t.createdAtMs });
  }

  private commit(t: ModelTransfer, from: ModelAccount, to: ModelAccount,
    state: Partial<ModelTransfer>): void {
    this.seq += 1n;
    Object.assign(t, { status: 'committed', seq: this.seq, fromBalanceAfter: balance(from),
      toBalanceAfter: balance(to) }, state);
  }

  private release(hold: ModelTransfer, status: PendingStatus): void {
    const from = this.accounts.get(hold.from);
    const to = this.accounts.get(hold.to);
    if (!from || !to || hold.amount === undefined) {
      throw new Error(`model: hold ${hold.request.id} without its accounts`);
    }
    from.debitsPending -= hold.amount;
    to.creditsPending -= hold.amount;
    hold.pendingStatus = status;
  }

  private decide(t: ModelTransfer): ModelTransferResult {
    t.answer = transferView(t);
    this.transfers.set(t.request.id, t);
    this.decidedIds.push(t.request.id);
    return { kind: 'decided', transfer: t, replayed: false };
  }
}

/**
 * The id decided before: the same request replays it, any other is a conflict naming the fields
 * that differ. A post, void or reversal meeting another kind differs in `kind` alone; a transfer
 * or hold meeting one of them differs in `kind` and in every field it shows otherwise.
 */
function compareWithDecided(t: ModelTransfer, r: ModelRequest): ModelTransferResult {
  const o = t.request;
  const fields: ConflictField[] = [];
  if (isTargeted(r)) {
    if (!isTargeted(o) || o.op !== r.op) return { kind: 'conflict', fields: ['kind'] };
    if (o.target !== r.target) fields.push(o.op === 'reversal' ? 'transferId' : 'holdId');
    if (o.amount !== r.amount) fields.push('amount');
  } else {
    if (isTargeted(o)) fields.push('kind');
    else if ((o.pending === true) !== (r.pending === true)) fields.push('pending');
    else if (o.timeoutSeconds !== r.timeoutSeconds) fields.push('timeoutSeconds');
    if (t.from !== r.from) fields.push('from');
    if (t.to !== r.to) fields.push('to');
    if (t.amount !== r.amount) fields.push('amount');
    // An omitted currency means the accounts' currency, on either side of the comparison.
    const k = (isTargeted(o) ? t.currency : t.accountsCurrency) ?? '';
    if (((isTargeted(o) ? undefined : o.currency) ?? k) !== (r.currency ?? k)) {
      fields.push('currency');
    }
  }
  if (!sameMetadata(o.metadata, r.metadata)) fields.push('metadata');
  if (fields.length > 0) return { kind: 'conflict', fields };
  return { kind: 'decided', transfer: t, replayed: true };
}

export const balance = (a: { debits: bigint; credits: bigint }) => a.credits - a.debits;

/** The API key name every request of the model tests is made with (the fixture's key). */
export const CALLER = 'test';

export function accountView(a: ModelAccount) {
  return {
    id: a.id,
    currency: a.currency,
    balance: balance(a).toString(),
    debits: a.debits.toString(),
    credits: a.credits.toString(),
    debitsPending: a.debitsPending.toString(),
    creditsPending: a.creditsPending.toString(),
    available: (balance(a) - a.debitsPending).toString(),
    overdraftLimit: a.overdraft.toString(),
    metadata: a.metadata,
    createdAt: iso(a.createdAtMs),
    createdBy: CALLER,
    closedAt: a.closedAtMs === undefined ? null : iso(a.closedAtMs),
  };
}

const optional = <K extends string, V>(key: K, value: V | undefined, show = String) =>
  (value === undefined ? {} : { [key]: show(value) }) as Partial<Record<K, string>>;

/**
 * A record as GET /transfers/{id} shows it at `nowMs`: a hold past its expiry is expired, even
 * before anything has released its reservation.
 */
export function transferView(t: ModelTransfer, nowMs = t.createdAtMs) {
  const r = t.request;
  const expired = t.pendingStatus === 'pending' && t.expiresAtMs != null && nowMs >= t.expiresAtMs;
  const target = isTargeted(r) ? r.target : undefined;
  return {
    id: r.id,
    from: t.from,
    to: t.to,
    amount: t.amount === undefined ? '' : t.amount.toString(),
    ...optional('currency', t.currency),
    status: t.status,
    ...optional('reason', t.reason),
    ...optional('seq', t.seq),
    ...optional('fromBalanceAfter', t.fromBalanceAfter),
    ...optional('toBalanceAfter', t.toBalanceAfter),
    metadata: r.metadata,
    createdAt: iso(t.createdAtMs),
    createdBy: CALLER,
    kind: t.kind,
    ...optional('pendingStatus', expired ? 'expired' : t.pendingStatus),
    ...optional('postedAmount', t.postedAmount),
    ...(t.expiresAtMs === undefined ? {}
      : { expiresAt: t.expiresAtMs === null ? null : iso(t.expiresAtMs) }),
    ...optional('pendingId', t.kind === 'post' || t.kind === 'void' ? target : undefined),
    ...optional('reverses', t.kind === 'reversal' ? target : undefined),
    ...optional('reversedAmount', t.reversedAmount),
  };
}
export type TransferView = ReturnType<typeof transferView>;

export function entryView(e: ModelEntry) {
  return {
    transferId: e.transferId,
    kind: e.kind,
    seq: e.seq.toString(),
    amount: e.amount.toString(),
    balanceAfter: e.balanceAfter.toString(),
    counterparty: e.counterparty,
    createdAt: iso(e.createdAtMs),
  };
}
