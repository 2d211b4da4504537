/**
 * An independent in-memory model of the ledger, written from the README's contract alone (it
 * imports nothing from src/), used by test/model.test.ts as the auditor of every reply.
 *
 * Money is bigint here and a decimal string in the views, which are the exact JSON the API
 * returns (Account, Transfer, Entry), so a reply can be compared with `toEqual`.
 */

/** The contract: amounts and balance magnitudes are at most 2^128−1. */
export const MODEL_AMOUNT_MAX = 2n ** 128n - 1n;

export type Metadata = Record<string, string>;
export type Overdraft = bigint | 'unlimited';
export type Reason =
  'ACCOUNT_NOT_FOUND' | 'CURRENCY_MISMATCH' | 'INSUFFICIENT_FUNDS' | 'BALANCE_OVERFLOW';
export type TransferField = 'from' | 'to' | 'amount' | 'currency' | 'metadata';
export type AccountField = 'currency' | 'overdraftLimit' | 'metadata';

export interface AccountSpec {
  id: string;
  currency: string;
  overdraft: Overdraft;
  metadata: Metadata;
}

export interface ModelEntry {
  transferId: string;
  seq: bigint;
  amount: bigint;
  balanceAfter: bigint;
  counterparty: string;
  createdAtMs: number;
}

export interface ModelAccount extends AccountSpec {
  debits: bigint;
  credits: bigint;
  createdAtMs: number;
  /** Oldest first. */
  entries: ModelEntry[];
}

export interface TransferRequest {
  id: string;
  from: string;
  to: string;
  amount: bigint;
  /** Undefined: omitted, meaning the accounts' currency. */
  currency?: string;
  metadata: Metadata;
}

export interface ModelTransfer {
  request: TransferRequest;
  /**
   * The accounts' currency when the transfer was decided: the debit account's, else the credit
   * account's (the contract does not say which when they differ or one is missing; see the report).
   */
  accountsCurrency: string | undefined;
  status: 'committed' | 'rejected';
  reason?: Reason;
  seq?: bigint;
  fromBalanceAfter?: bigint;
  toBalanceAfter?: bigint;
  createdAtMs: number;
}

export type ModelTransferResult =
  | { kind: 'decided'; transfer: ModelTransfer; replayed: boolean }
  | { kind: 'conflict'; fields: TransferField[] };

export type ModelAccountResult =
  | { kind: 'created' | 'replayed'; account: ModelAccount }
  | { kind: 'conflict'; fields: AccountField[] };

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
      credits: 0n, createdAtMs: nowMs, entries: [] };
    this.accounts.set(spec.id, account);
    return { kind: 'created', account };
  }

  transfer(request: TransferRequest, nowMs: number): ModelTransferResult {
    const decided = this.transfers.get(request.id);
    if (decided) return compareWithDecided(decided, request);
    const from = this.accounts.get(request.from);
    const to = this.accounts.get(request.to);
    const t: ModelTransfer = {
      request: { ...request, metadata: { ...request.metadata } },
      accountsCurrency: from?.currency ?? to?.currency,
      status: 'rejected',
      createdAtMs: nowMs,
    };
    const reason = this.rejection(request, from, to);
    if (reason !== undefined) {
      t.reason = reason;
    } else if (from && to) {
      this.seq += 1n;
      from.debits += request.amount;
      to.credits += request.amount;
      Object.assign(t, { status: 'committed', seq: this.seq,
        fromBalanceAfter: balance(from), toBalanceAfter: balance(to) });
      from.entries.push({ transferId: request.id, seq: this.seq, amount: -request.amount,
        balanceAfter: balance(from), counterparty: to.id, createdAtMs: nowMs });
      to.entries.push({ transferId: request.id, seq: this.seq, amount: request.amount,
        balanceAfter: balance(to), counterparty: from.id, createdAtMs: nowMs });
    }
    this.transfers.set(request.id, t);
    this.decidedIds.push(request.id);
    return { kind: 'decided', transfer: t, replayed: false };
  }

  /** the contract's precedence: not found, currency, funds, overflow. */
  private rejection(
    r: TransferRequest, from?: ModelAccount, to?: ModelAccount,
  ): Reason | undefined {
    if (!from || !to) return 'ACCOUNT_NOT_FOUND';
    if (from.currency !== to.currency) return 'CURRENCY_MISMATCH';
    if (r.currency !== undefined && r.currency !== from.currency) return 'CURRENCY_MISMATCH';
    const debits = from.debits + r.amount;
    const credits = to.credits + r.amount;
    if (from.overdraft !== 'unlimited' && debits > from.credits + from.overdraft) {
      return 'INSUFFICIENT_FUNDS';
    }
    const magnitude = (v: bigint) => (v < 0n ? -v : v);
    if (debits > MODEL_AMOUNT_MAX || credits > MODEL_AMOUNT_MAX
      || magnitude(from.credits - debits) > MODEL_AMOUNT_MAX
      || magnitude(credits - to.debits) > MODEL_AMOUNT_MAX) {
      return 'BALANCE_OVERFLOW';
    }
    return undefined;
  }
}

function compareWithDecided(t: ModelTransfer, r: TransferRequest): ModelTransferResult {
  const o = t.request;
  const fields: TransferField[] = [];
  if (o.from !== r.from) fields.push('from');
  if (o.to !== r.to) fields.push('to');
  if (o.amount !== r.amount) fields.push('amount');
  // An omitted currency means the accounts' currency, on either side of the comparison.
  const k = t.accountsCurrency ?? '';
  if ((o.currency ?? k) !== (r.currency ?? k)) fields.push('currency');
  if (!sameMetadata(o.metadata, r.metadata)) fields.push('metadata');
  if (fields.length > 0) return { kind: 'conflict', fields };
  return { kind: 'decided', transfer: t, replayed: true };
}

export const balance = (a: { debits: bigint; credits: bigint }) => a.credits - a.debits;

export function accountView(a: ModelAccount) {
  return {
    id: a.id,
    currency: a.currency,
    balance: balance(a).toString(),
    debits: a.debits.toString(),
    credits: a.credits.toString(),
    overdraftLimit: a.overdraft.toString(),
    metadata: a.metadata,
    createdAt: iso(a.createdAtMs),
    createdBy: CALLER,
  };
}

/** The API key name every request of the model test is made with (the fixture's key). */
export const CALLER = 'test';

export function transferView(t: ModelTransfer) {
  const r = t.request;
  const currency = r.currency ?? t.accountsCurrency;
  return {
    id: r.id,
    from: r.from,
    to: r.to,
    amount: r.amount.toString(),
    ...(currency === undefined ? {} : { currency }),
    status: t.status,
    ...(t.reason === undefined ? {} : { reason: t.reason }),
    ...(t.seq === undefined ? {} : { seq: t.seq.toString() }),
    ...(t.fromBalanceAfter === undefined ? {} : { fromBalanceAfter: `${t.fromBalanceAfter}` }),
    ...(t.toBalanceAfter === undefined ? {} : { toBalanceAfter: `${t.toBalanceAfter}` }),
    metadata: r.metadata,
    createdAt: iso(t.createdAtMs),
    createdBy: CALLER,
  };
}

export function entryView(e: ModelEntry) {
  return {
    transferId: e.transferId,
    seq: e.seq.toString(),
    amount: e.amount.toString(),
    balanceAfter: e.balanceAfter.toString(),
    counterparty: e.counterparty,
    createdAt: iso(e.createdAtMs),
  };
}
