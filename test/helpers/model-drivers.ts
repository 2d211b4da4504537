/**
 * The two ways test/model.test.ts sends a run to the service: the Ledger API, and HTTP through
 * `inject`. Each driver sends one request and asserts its reply against what the model
 * (test/helpers/model.ts) expects; the HTTP driver also checks status codes, problem bodies, the
 * replay header and that a replay answers the original bytes.
 */
import { expect } from 'vitest';
import type { App } from '../../src/app.js';
import type {
  Account, ExpiryOutcome, Ledger, Transfer, TransferOutcome,
} from '../../src/ledger/ledger.js';
import { json } from './ledger.js';
import {
  type AccountSpec, accountView, CALLER, type ConflictField, MODEL_AMOUNT_MAX as MAX,
  type ModelAccountResult, type ModelCloseResult, type ModelRelease, type ModelTransferResult,
  type TargetedRequest, type TransferRequest,
} from './model.js';

export interface Page { entries: unknown[]; next: string | null }

export interface Driver {
  createAccount(spec: AccountSpec, style: number, expected: ModelAccountResult): Promise<void>;
  /** `twice`: the request is sent twice concurrently; one decides, the other replays. */
  transfer(
    req: TransferRequest, style: number, expected: ModelTransferResult, twice: boolean,
  ): Promise<void>;
  /** A post, void or reversal; `twice` as for a transfer. */
  targeted(
    req: TargetedRequest, style: number, expected: ModelTransferResult, twice: boolean,
  ): Promise<void>;
  close(id: string, expected: ModelCloseResult): Promise<void>;
  /** One call of the expiry sweep, at the ledger's clock. */
  expire(expected: ModelRelease[]): Promise<void>;
  /** A request the API refuses with 400 and does not record; undefined where not expressible. */
  malformed?: (req: TransferRequest, kind: number, style: number) => Promise<void>;
  getAccount(id: string): Promise<Account | undefined>;
  getTransfer(id: string): Promise<Transfer | undefined>;
  entries(id: string, limit: number, cursor: string | undefined): Promise<Page | undefined>;
}

/** Every field a 409's detail may name. */
export const CONFLICT_FIELDS: ConflictField[] = ['from', 'to', 'amount', 'currency', 'metadata',
  'pending', 'timeoutSeconds', 'holdId', 'transferId', 'kind'];

const sorted = (fields: readonly string[]) => [...fields].sort();

/**
 * A sweep call's outcome (Ledger.expireHolds: an expiry in ms since the epoch, as a string):
 * the holds the model released, oldest expiry first. The contract does not order holds of one
 * expiry, so those are compared by seq.
 */
export function expectReleased(got: ExpiryOutcome, expected: ModelRelease[]): void {
  const expiries = got.released.map((r) => Number(r.expiresAt));
  expect(expiries, 'oldest first').toEqual([...expiries].sort((a, b) => a - b));
  const bySeq = [...got.released].sort((a, b) =>
    Number(a.expiresAt) - Number(b.expiresAt) || Number(BigInt(a.seq) - BigInt(b.seq)));
  // Nothing else sweeps, so every hold of the index is still open: none is skipped.
  expect({ released: bySeq, skipped: got.skipped }).toEqual({
    released: expected.map((r) => ({ seq: r.seq.toString(), expiresAt: String(r.expiresAtMs),
      amount: r.amount.toString(), currency: r.currency })),
    skipped: 0 });
}

/** A decided outcome (and, when sent twice, its concurrent duplicate) against the model. */
function expectDecided(
  got: TransferOutcome, duplicate: TransferOutcome | undefined, expected: ModelTransferResult,
): void {
  if (expected.kind === 'conflict') {
    expect(got.kind === 'conflict' ? sorted(got.fields) : got).toEqual(sorted(expected.fields));
    return;
  }
  const view = expected.transfer.answer;
  if (!duplicate) {
    expect(got).toEqual({ kind: 'decided', transfer: view, replayed: expected.replayed });
    return;
  }
  const both = [got, duplicate].map((o) => (o.kind === 'decided' ? o.replayed : o));
  expect(both.sort()).toEqual([false, true]);
  expect([got, duplicate].map((o) => o.kind === 'decided' && o.transfer)).toEqual([view, view]);
}

export function ledgerDriver(ledger: Ledger): Driver {
  return {
    async createAccount(spec, _style, expected) {
      const got = await ledger.createAccount({ id: spec.id, currency: spec.currency,
        overdraftLimit: spec.overdraft.toString(), metadata: spec.metadata, createdBy: CALLER });
      if (expected.kind === 'conflict') {
        expect(got.kind === 'conflict' ? sorted(got.fields) : got).toEqual(sorted(expected.fields));
      } else {
        expect(got).toEqual({ kind: expected.kind, account: accountView(expected.account) });
      }
    },
    async transfer(req, _style, expected, twice) {
      const send = () => ledger.transfer({ id: req.id, from: req.from, to: req.to,
        amount: req.amount.toString(), currency: req.currency, metadata: req.metadata,
        createdBy: CALLER, ...(req.pending ? { pending: true } : {}),
        ...(req.timeoutSeconds === undefined ? {} : { timeoutSeconds: req.timeoutSeconds }) });
      const [got, duplicate] = await Promise.all([send(), twice ? send() : undefined]);
      expectDecided(got, duplicate, expected);
    },
    async targeted(req, _style, expected, twice) {
      const common = { id: req.id, metadata: req.metadata, createdBy: CALLER,
        ...(req.amount === undefined ? {} : { amount: req.amount.toString() }) };
      const send = () => (req.op === 'reversal'
        ? ledger.reverse({ ...common, transferId: req.target })
        : ledger.settle(req.op, { ...common, holdId: req.target }));
      const [got, duplicate] = await Promise.all([send(), twice ? send() : undefined]);
      expectDecided(got, duplicate, expected);
    },
    async close(id, expected) {
      const got = await ledger.closeAccount(id);
      expect(got).toEqual(expected.kind === 'notFound' ? expected : { kind: 'closed',
        account: accountView(expected.account), replayed: expected.replayed });
    },
    async expire(expected) {
      expectReleased(await ledger.expireHolds(), expected);
    },
    getAccount: (id) => ledger.getAccount(id),
    getTransfer: (id) => ledger.getTransfer(id),
    async entries(id, limit, cursor) {
      const page = await ledger.listEntries(id, limit, cursor);
      if (page === 'badCursor') throw new Error(`cursor ${String(cursor)} refused`);
      return page && { entries: page.entries, next: page.nextSeq };
    },
  };
}

type Reply = Awaited<ReturnType<App['inject']>>;

export function expectProblem(res: Reply, status: number, code: string): { detail: string } {
  expect({ status: res.statusCode, type: res.headers['content-type'] }, res.body)
    .toEqual({ status, type: expect.stringMatching(/^application\/problem\+json/) });
  const body = res.json();
  expect(sorted(Object.keys(body))).toEqual(['code', 'detail', 'status', 'title', 'type']);
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String),
    detail: expect.any(String) });
  return body;
}

/** An amount as a JSON string, or as a JSON number where the contract allows one (≤ 2^53−1). */
export const amountJson = (v: bigint, style: number) =>
  ((style & 1) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

/** Omitted metadata means {}; `style & 2` sends {} anyway. */
const withMetadata = (body: Record<string, unknown>, metadata: object, style: number) => {
  if (Object.keys(metadata).length > 0 || (style & 2)) body.metadata = metadata;
  return body;
};

export function transferBody(req: TransferRequest, style: number): Record<string, unknown> {
  const body: Record<string, unknown> = { id: req.id, from: req.from, to: req.to,
    amount: amountJson(req.amount, style) };
  if (req.currency !== undefined) body.currency = req.currency;
  // "pending": false is a plain transfer, the same request as none.
  if (req.pending || (style & 4)) body.pending = req.pending === true;
  if (req.timeoutSeconds !== undefined) body.timeoutSeconds = req.timeoutSeconds;
  return withMetadata(body, req.metadata, style);
}

function accountBody(spec: AccountSpec, style: number): Record<string, unknown> {
  const body: Record<string, unknown> = { id: spec.id, currency: spec.currency };
  const od = spec.overdraft;
  if (od === 'unlimited') body.overdraftLimit = od;
  else if (style % 3 === 1) body.overdraftLimit = amountJson(od, 1);
  else if (style % 3 === 0 || od !== 0n) body.overdraftLimit = od.toString(); // else default "0"
  if (Object.keys(spec.metadata).length > 0 || style >= 3) body.metadata = spec.metadata;
  return body;
}

const targetedUrl = (req: TargetedRequest) =>
  `/transfers/${req.target}/${req.op === 'reversal' ? 'reversals' : req.op}`;

/** HTTP through `inject`; `ledger` is the app's, for the sweep (it has no endpoint). */
export function httpDriver(app: App, ledger: Ledger): Driver {
  const post = (url: string, body: unknown) =>
    app.inject({ method: 'POST', url, headers: json, payload: JSON.stringify(body) });
  const get = (url: string) => app.inject({ method: 'GET', url });
  /** The first reply per record id: a replay must return the same status and bytes. */
  const originals = new Map<string, { status: number; payload: string }>();
  /** Two identical requests at once: one decides, the other replays it byte for byte. */
  const sendTwice = async (url: string, body: unknown): Promise<Reply> => {
    const replies = await Promise.all([post(url, body), post(url, body)]);
    const replayed = replies.map((r) => r.headers['idempotent-replayed'] === 'true');
    expect([...replayed].sort()).toEqual([false, true]);
    const [first, second] = replayed[0] ? [replies[1], replies[0]] : replies;
    if (!first || !second) throw new Error('two replies expected');
    expect({ status: second.statusCode, payload: second.payload })
      .toEqual({ status: first.statusCode, payload: first.payload });
    return first;
  };
  const decide = async (id: string, url: string, body: unknown, expected: ModelTransferResult,
    twice: boolean) => {
    const res = await (twice ? sendTwice(url, body) : post(url, body));
    if (expected.kind === 'conflict') {
      const { detail } = expectProblem(res, 409, 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS');
      // The detail names exactly the differing fields.
      const named = CONFLICT_FIELDS.filter((f) => new RegExp(`\\b${f}\\b`).test(detail));
      const differing = CONFLICT_FIELDS.filter((f) => expected.fields.includes(f));
      expect({ detail, named }).toEqual({ detail, named: differing });
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      return;
    }
    const t = expected.transfer;
    if (expected.replayed) {
      expect(res.headers['idempotent-replayed']).toBe('true');
      expect({ status: res.statusCode, payload: res.payload }).toEqual(originals.get(id));
    } else {
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      originals.set(id, { status: res.statusCode, payload: res.payload });
    }
    if (t.status === 'committed') {
      expect({ status: res.statusCode, body: res.json() }).toEqual({ status: 201, body: t.answer });
    } else {
      expectProblem(res, 422, t.reason as string);
    }
  };
  return {
    async createAccount(spec, style, expected) {
      const res = await post('/accounts', accountBody(spec, style));
      if (expected.kind === 'conflict') {
        expectProblem(res, 409, 'ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS');
        return;
      }
      expect(res.statusCode).toBe(expected.kind === 'created' ? 201 : 200);
      expect(res.json()).toEqual(accountView(expected.account));
    },
    transfer: (req, style, expected, twice) =>
      decide(req.id, '/transfers', transferBody(req, style), expected, twice),
    targeted(req, style, expected, twice) {
      const body: Record<string, unknown> = { id: req.id };
      if (req.amount !== undefined) body.amount = amountJson(req.amount, style);
      return decide(req.id, targetedUrl(req), withMetadata(body, req.metadata, style), expected,
        twice);
    },
    async close(id, expected) {
      const res = await post(`/accounts/${id}/close`, {});
      if (expected.kind === 'notFound') return void expectProblem(res, 404, 'ACCOUNT_NOT_FOUND');
      expect({ status: res.statusCode, body: res.json(),
        replayed: res.headers['idempotent-replayed'] }).toEqual({ status: 200,
        body: accountView(expected.account), replayed: expected.replayed ? 'true' : undefined });
    },
    async expire(expected) {
      expectReleased(await ledger.expireHolds(), expected);
    },
    async malformed(req, kind, style) {
      const body = transferBody(req, style);
      if (kind === 2) body.amount = amountJson(0n, style);
      if (kind === 3) body.amount = (MAX + 1n).toString();
      if (kind === 4) body.amount = `0${req.amount}`;
      if (kind === 5) body.memo = 'unknown field';
      // A timeout is for a hold only, and at least a second.
      if (kind === 6) Object.assign(body, { pending: false, timeoutSeconds: 5 });
      if (kind === 7) Object.assign(body, { pending: true, timeoutSeconds: 0 });
      const res = await post('/transfers', body);
      expectProblem(res, 400, kind === 1 ? 'SAME_ACCOUNT' : 'VALIDATION_ERROR');
    },
    async getAccount(id) {
      const res = await get(`/accounts/${id}`);
      if (res.statusCode === 404) return void expectProblem(res, 404, 'ACCOUNT_NOT_FOUND');
      expect(res.statusCode).toBe(200);
      return res.json();
    },
    async getTransfer(id) {
      const res = await get(`/transfers/${id}`);
      if (res.statusCode === 404) return void expectProblem(res, 404, 'TRANSFER_NOT_FOUND');
      expect(res.statusCode).toBe(200);
      return res.json();
    },
    async entries(id, limit, cursor) {
      const after = cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`;
      const res = await get(`/accounts/${id}/entries?limit=${limit}${after}`);
      if (res.statusCode === 404) return void expectProblem(res, 404, 'ACCOUNT_NOT_FOUND');
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(sorted(Object.keys(body))).toEqual(['entries', 'nextCursor']);
      return { entries: body.entries, next: body.nextCursor };
    },
  };
}
