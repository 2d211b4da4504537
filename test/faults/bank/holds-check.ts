/**
 * The checker's part for holds and reversals (docs/holds.md), against what the clients were told
 * and what the ledger shows at the end:
 * - a hold is released once: never both posted and voided, never posted or voided twice; its
 *   state is the one its acknowledged post or void (or else its expiry) gives, and every refusal
 *   of a post or void agrees with that state;
 * - the reversals of a transfer or post add up to at most it, and to its `reversedAmount`;
 *   a refusal for EXCEEDS_REVERSIBLE_AMOUNT asked for more than was left;
 * - every account's debitsPending and creditsPending are exactly the sums of the holds still
 *   open on it, so in total Σ debitsPending = Σ creditsPending = Σ open holds.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Account, type Findings, getJson, inParallel, opId, type Stored,
} from './reads.js';
import {
  type History, type Op, type TargetedBody, type TransferBody, writeKind,
} from './history.js';
import { answerOf } from './mix.js';
import { post } from './workload.js';

/** Between two reads of the pending sums while they do not match yet. */
const PENDING_POLL_MS = 200;

export interface HoldFigures {
  /** Acknowledged holds by their state at the end. */
  states: Record<string, number>;
  reversals: number;
  reversedAmount: bigint;
  /** Holds past their expiry that the check voided itself (see checkPendingSums). */
  expiredVoidedByCheck: number;
  /** From the first read of the pending sums to the one that matched (or gave up), ms. */
  pendingWaitMs: number;
}

/** Decided ops of `kinds` by their target (the hold, or the original). */
function byTarget(history: History, kinds: readonly string[]): Map<string, Op[]> {
  const out = new Map<string, Op[]>();
  for (const op of history.ops) {
    if (!kinds.includes(op.kind) || op.target === undefined) continue;
    if (op.outcome !== 'committed' && op.outcome !== 'rejected') continue;
    out.set(op.target, [...(out.get(op.target) ?? []), op]);
  }
  return out;
}

const committedOf = (history: History, kinds: readonly string[]) =>
  history.writesWith('committed').filter((op) => kinds.includes(writeKind(op)));

/** What a refusal of a post or void says about the hold's state for good. */
const REFUSAL_STATE: Record<string, string> = {
  PENDING_TRANSFER_ALREADY_POSTED: 'posted',
  PENDING_TRANSFER_ALREADY_VOIDED: 'voided',
  PENDING_TRANSFER_EXPIRED: 'expired',
};

/** Each acknowledged hold against its posts and voids. */
export function checkSettlements(history: History, stored: Map<string, Stored>,
  f: Findings): void {
  const settles = byTarget(history, ['post', 'void']);
  for (const hold of committedOf(history, ['hold'])) {
    const id = opId(hold);
    const s = stored.get(id);
    if (s?.status !== 'committed') continue; // reported lost already
    const ops = settles.get(id) ?? [];
    const done = ops.filter((op) => op.outcome === 'committed');
    const state = s.pendingStatus ?? '';
    if (done.length > 1) {
      f.add('hold released more than once', `${id} (${state}): ` +
        done.map((op) => `${op.kind} ${opId(op)}`).join(', '));
    }
    const settled = done[0];
    const want = settled === undefined ? ['pending', 'expired']
      : [settled.kind === 'post' ? 'posted' : 'voided'];
    if (!want.includes(state)) {
      f.add('hold state differs from its settlements', `${id} is ${state}; acknowledged: ` +
        (done.map((op) => `${op.kind} ${opId(op)}`).join(', ') || 'none'));
    }
    if (settled !== undefined) checkSettled(hold, s, settled, f);
    const held = BigInt((hold.body as TransferBody).amount);
    for (const op of ops.filter((o) => o.outcome === 'rejected')) {
      const code = op.decided?.code ?? '';
      const asked = (op.body as TargetedBody).amount;
      const agrees = REFUSAL_STATE[code] === state || (code === 'EXCEEDS_PENDING_AMOUNT'
        && op.kind === 'post' && asked !== undefined && BigInt(asked) > held);
      if (!agrees) {
        f.add('settlement refused for a wrong reason', `${op.kind} ${opId(op)} of ${id} ` +
          `(${state}, ${held} held): 422 ${code}, asked ${asked ?? 'all'}`);
      }
    }
  }
}

/** The acknowledged post or void of a hold: what it moved or released. */
function checkSettled(hold: Op, s: Stored, settled: Op, f: Findings): void {
  const body = hold.body as TransferBody;
  const ack = answerOf(settled) as Stored;
  const asked = (settled.body as TargetedBody).amount;
  const want = settled.kind === 'post' && asked !== undefined ? asked : body.amount;
  const postedOk = settled.kind === 'void' || s.postedAmount === ack.amount;
  if (ack.pendingId !== body.id || ack.from !== body.from || ack.to !== body.to
    || ack.amount !== want || !postedOk) {
    f.add('settlement differs from its hold', `${settled.kind} ${opId(settled)}: ` +
      `${settled.decided?.text} / hold ${JSON.stringify(s)}`);
  }
}

/** Each acknowledged transfer or post against its reversals. */
export function checkReversals(history: History, stored: Map<string, Stored>, f: Findings,
  figures: HoldFigures): void {
  const reversals = byTarget(history, ['reversal']);
  for (const original of committedOf(history, ['transfer', 'post'])) {
    const id = opId(original);
    const o = answerOf(original) as Stored;
    const ops = reversals.get(id) ?? [];
    const done = ops.filter((op) => op.outcome === 'committed');
    const sum = done.reduce((t, op) => t + BigInt(String(answerOf(op).amount)), 0n);
    figures.reversals += done.length;
    figures.reversedAmount += sum;
    const left = BigInt(o.amount as string) - sum;
    if (left < 0n) {
      f.add('reversals exceed the original', `${id} (${o.amount}): reversed ${sum} by ` +
        done.map(opId).join(', '));
    }
    const s = stored.get(id);
    if (s?.status === 'committed' && s.reversedAmount !== `${sum}`) {
      f.add('reversedAmount differs from the acknowledged reversals',
        `${id}: reversedAmount ${s.reversedAmount}, acknowledged ${sum}`);
    }
    for (const op of done) {
      const r = answerOf(op) as Stored;
      if (r.reverses !== id || r.from !== o.to || r.to !== o.from) {
        f.add('reversal moved other money', `${opId(op)} of ${id}: ${op.decided?.text}`);
      }
    }
    for (const op of ops.filter((o2) => o2.outcome === 'rejected')) {
      // Decided one after another: what was left when it was refused is at least what is
      // left now; EXCEEDS_REVERSIBLE_AMOUNT means it asked for more than that.
      const code = op.decided?.code ?? '';
      const asked = (op.body as TargetedBody).amount;
      const exceeds = asked === undefined ? left === 0n : BigInt(asked) > left;
      if (code === 'INSUFFICIENT_FUNDS') continue; // its recipient may have spent it
      if (code !== 'EXCEEDS_REVERSIBLE_AMOUNT' || !exceeds) {
        f.add('reversal refused for a wrong reason', `${opId(op)} of ${id} (${left} left): ` +
          `422 ${code}, asked ${asked ?? 'all'}`);
      }
    }
  }
}

/**
 * Σ of the holds open at the end, per account, against its debitsPending and creditsPending.
 * A hold past its expiry still counts in them until it is released: by the service's sweeper,
 * or at once by a post or void that finds it expired. With `sweeper` the service must do it by
 * itself; without (a deployment with no sweeper running), the check voids each such hold itself
 * (422 PENDING_TRANSFER_EXPIRED is the only right answer). Either way a hold released twice
 * leaves sums too low for good. Read again while they differ (a lagging replica, the sweeper's
 * next round, a hold expiring meanwhile) until `settleMs` has passed.
 */
export async function checkPendingSums(base: string, accountIds: readonly string[],
  history: History, stored: Map<string, Stored>, f: Findings,
  options: { settleMs: number; sweeper: boolean }, figures: HoldFigures): Promise<void> {
  const holds = committedOf(history, ['hold']).filter((op) =>
    stored.get(opId(op))?.status === 'committed');
  const voided = new Set<string>();
  const started = Date.now();
  const deadline = started + options.settleMs;
  for (let round = 0; ; round++) {
    if (round > 0) {
      await inParallel(holds.filter((op) => stored.get(opId(op))?.pendingStatus === 'pending'),
        async (op) => {
          const r = await getJson<Stored>(base, `/transfers/${encodeURIComponent(opId(op))}`);
          if (r.json !== undefined) stored.set(opId(op), r.json);
        });
    }
    if (!options.sweeper) {
      await inParallel(holds.filter((op) => stored.get(opId(op))?.pendingStatus === 'expired'
        && !voided.has(opId(op))), async (op) => {
        voided.add(opId(op));
        await voidExpired(base, opId(op), f);
      });
    }
    const differences = await pendingDifferences(base, accountIds, holds, stored);
    if (differences.length === 0 || Date.now() >= deadline) {
      for (const d of differences) f.add('pending sums differ from the open holds', d);
      break;
    }
    await sleep(PENDING_POLL_MS);
  }
  figures.expiredVoidedByCheck = voided.size;
  figures.pendingWaitMs = Date.now() - started;
  for (const op of holds) {
    const state = stored.get(opId(op))?.pendingStatus ?? '?';
    figures.states[state] = (figures.states[state] ?? 0) + 1;
  }
}

async function voidExpired(base: string, holdId: string, f: Findings): Promise<void> {
  const body = { id: `check-void-${holdId}`, metadata: {} };
  const deadline = Date.now() + 10_000;
  for (;;) {
    const a = await post(base, `/transfers/${encodeURIComponent(holdId)}/void`, body);
    if (a.status === 422 && a.code === 'PENDING_TRANSFER_EXPIRED') return;
    if ((a.status !== 0 && a.status < 500) || Date.now() >= deadline) {
      f.add('an expired hold answered a void otherwise', `${holdId}: ${a.status} ${a.text}`);
      return;
    }
    await sleep(PENDING_POLL_MS);
  }
}

/** Per account, where its pending sums differ from its open holds' (empty: none). */
async function pendingDifferences(base: string, accountIds: readonly string[], holds: Op[],
  stored: Map<string, Stored>): Promise<string[]> {
  const want = new Map<string, { dp: bigint; cp: bigint }>();
  let open = 0n;
  for (const op of holds) {
    if (stored.get(opId(op))?.pendingStatus !== 'pending') continue;
    const { from, to, amount } = op.body as TransferBody;
    const a = BigInt(amount);
    open += a;
    const fw = want.get(from) ?? { dp: 0n, cp: 0n };
    want.set(from, { ...fw, dp: fw.dp + a });
    const tw = want.get(to) ?? { dp: 0n, cp: 0n };
    want.set(to, { ...tw, cp: tw.cp + a });
  }
  const out: string[] = [];
  let dp = 0n;
  let cp = 0n;
  await inParallel([...accountIds], async (id) => {
    const r = await getJson<Account>(base, `/accounts/${id}`);
    if (r.json === undefined) return;
    dp += BigInt(r.json.debitsPending);
    cp += BigInt(r.json.creditsPending);
    const w = want.get(id) ?? { dp: 0n, cp: 0n };
    if (BigInt(r.json.debitsPending) !== w.dp || BigInt(r.json.creditsPending) !== w.cp) {
      out.push(`${id}: debitsPending ${r.json.debitsPending}, creditsPending ` +
        `${r.json.creditsPending}; its open holds ${w.dp} out, ${w.cp} in`);
    }
  });
  if (out.length > 0) {
    out.push(`in all: Σ debitsPending ${dp}, Σ creditsPending ${cp}, Σ open holds ${open}`);
  }
  return out;
}
