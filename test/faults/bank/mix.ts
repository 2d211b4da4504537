/**
 * What the bank clients ask for, drawn from the scenario's seeded generator: transfers and holds
 * among the customer accounts, posts and voids of holds, reversals of transfers and posts,
 * retries of decided writes (must replay identically) and decided ids sent with other fields
 * (must be 409). Also what a decided answer teaches the clients (`learn`): which holds they
 * believe open, what they may reverse.
 */
import {
  type History, isWrite, type Op, type OpKind, type TargetedBody, type TransferBody,
} from './history.js';

/** Issue 4 item 5: 5 % retries of decided ids, 2 % decided ids with different fields. */
const REPLAY_SHARE = 0.05;
const CONFLICT_SHARE = 0.02;
/** Issue 13: holds, posts, voids and reversals in the mix; transfers take the rest (45 %). */
const HOLD_SHARE = 0.2;
const POST_SHARE = 0.12;
const VOID_SHARE = 0.06;
const REVERSAL_SHARE = 0.1;
/**
 * A hold's timeout, drawn evenly: none, or 1 s or 2 s (they expire during the scenario, many of
 * them inside a fault, and the service's sweeper or a late post or void releases them), or an
 * hour (they stay open through the check).
 */
const HOLD_TIMEOUTS: ReadonlyArray<number | undefined> = [undefined, 1, 2, 3600];
/** Posts and voids mostly pick a hold no client has seen settled; the rest any hold. */
const OPEN_HOLD_PICK = 0.85;
/** Amounts 1..this: large enough that overdrafts are reached and some writes are rejected. */
export const AMOUNT_MAX = 300;

/** A new op before it is sent: History.add completes it. */
export type Draft = Pick<Op, 'kind' | 'path' | 'body' | 'of' | 'target'>;

export interface MixContext {
  history: History;
  accounts: readonly string[];
  random: () => number;
}

const pick = <T>(random: () => number, list: readonly T[]): T =>
  list[Math.floor(random() * list.length)] as T;
const upTo = (random: () => number, max: bigint) =>
  1n + BigInt(Math.floor(random() * Number(max)));

/** The deciding answer's JSON (a 201 or 422 body). */
export function answerOf(op: Op): Record<string, unknown> {
  return JSON.parse(op.decided?.text ?? '{}') as Record<string, unknown>;
}

export function targetPath(kind: 'post' | 'void' | 'reversal', target: string): string {
  const action = kind === 'reversal' ? 'reversals' : kind;
  return `/transfers/${encodeURIComponent(target)}/${action}`;
}

/** The next op of client `client` (its `n`th), ids unique under `tag`. */
export function nextOp(m: MixContext, client: number, n: number, tag: string): Draft {
  const { history, random } = m;
  const r = random();
  const id = `${tag}-c${client}-${n}`;
  const metadata = { client: `c${client}` };
  if (r < REPLAY_SHARE + CONFLICT_SHARE && history.decided.length > 0) {
    const of = pick(random, history.decided);
    const draft = { path: of.path, of, target: of.target };
    if (r < REPLAY_SHARE) return { ...draft, kind: 'replay', body: of.body };
    return { ...draft, kind: 'conflict', body: otherFields(of) };
  }
  let share = r - REPLAY_SHARE - CONFLICT_SHARE;
  const within = (s: number) => (share -= s) < 0;
  if (within(HOLD_SHARE)) return movement(m, id, metadata, true);
  if (within(POST_SHARE + VOID_SHARE) && history.holds.length > 0) {
    const open = [...history.openHolds.values()];
    const hold = open.length > 0 && random() < OPEN_HOLD_PICK ? pick(random, open)
      : pick(random, history.holds);
    const held = BigInt((hold.body as TransferBody).amount);
    const kind = share < -POST_SHARE ? 'void' : 'post';
    const body: TargetedBody = { id, metadata };
    if (kind === 'post') {
      const a = random();
      // Half post all of it (no amount); a few ask for more than it holds.
      if (a >= 0.5) body.amount = `${a < 0.95 ? upTo(random, held) : held + 1n}`;
    }
    const target = (hold.body as TransferBody).id;
    return { kind, path: targetPath(kind, target), body, target };
  }
  if (within(REVERSAL_SHARE) && history.reversible.length > 0) {
    const original = pick(random, history.reversible);
    const target = (original.body as TransferBody).id;
    const body: TargetedBody = { id, metadata };
    // "All that is left" or a part; together they often ask for more than the original.
    if (random() >= 0.4) body.amount = `${upTo(random, BigInt(String(answerOf(original).amount)))}`;
    return { kind: 'reversal', path: targetPath('reversal', target), body, target };
  }
  return movement(m, id, metadata, false);
}

/** A transfer or hold between two customer accounts. */
function movement(m: MixContext, id: string, metadata: Record<string, string>,
  hold: boolean): Draft {
  const from = pick(m.random, m.accounts);
  const body: TransferBody = { id, from, to: pick(m.random, m.accounts.filter((a) => a !== from)),
    amount: `${upTo(m.random, BigInt(AMOUNT_MAX))}`, metadata };
  if (!hold) return { kind: 'transfer', path: '/transfers', body };
  body.pending = true;
  const timeout = pick(m.random, HOLD_TIMEOUTS);
  if (timeout !== undefined) body.timeoutSeconds = timeout;
  return { kind: 'hold', path: '/transfers', body };
}

/** The decided op's body with one field changed: a conflict naming it. */
function otherFields(of: Op): Op['body'] {
  if (of.kind === 'void') {
    const body = of.body as TargetedBody;
    return { ...body, metadata: { ...body.metadata, changed: 'yes' } };
  }
  if (of.kind === 'post' || of.kind === 'reversal') {
    const body = of.body as TargetedBody;
    return { ...body, amount: body.amount === undefined ? '1' : `${BigInt(body.amount) + 1n}` };
  }
  const body = of.body as TransferBody;
  return { ...body, amount: `${BigInt(body.amount) + 1n}` };
}

/** Rejections of a post or void that say the hold is settled for good. */
const SETTLED_CODES = new Set(['PENDING_TRANSFER_ALREADY_POSTED',
  'PENDING_TRANSFER_ALREADY_VOIDED', 'PENDING_TRANSFER_EXPIRED']);

/** What a client's decided write tells the others: holds to settle, writes to replay. */
export function learn(history: History, op: Op): void {
  if (!isWrite(op.kind) || (op.outcome !== 'committed' && op.outcome !== 'rejected')) return;
  history.decided.push(op);
  const committed = op.outcome === 'committed';
  const kind: OpKind = op.kind;
  if (kind === 'hold' && committed) {
    history.holds.push(op);
    history.openHolds.set((op.body as TransferBody).id, op);
  }
  if ((kind === 'transfer' || kind === 'post') && committed) history.reversible.push(op);
  if ((kind === 'post' || kind === 'void') && op.target !== undefined
    && (committed || SETTLED_CODES.has(op.decided?.code ?? ''))) {
    history.openHolds.delete(op.target);
  }
}
