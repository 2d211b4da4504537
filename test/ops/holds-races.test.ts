/**
 * Races decided inside Redis, many rounds each, through several Ledger instances (each its own
 * connection, so their script calls really interleave in Redis):
 * - post vs void vs expiry of one hold: exactly one wins, the reservation is released exactly
 *   once (the accounts' pending sums return to what they were without the hold), and posted
 *   balances move only when the post won;
 * - concurrent partial reversals of one transfer or post that together would exceed it: the sum
 *   reversed never exceeds the original; the others are EXCEEDS_REVERSIBLE_AMOUNT.
 * Expiry is decided against each caller's clock (docs/holds.md): the "late" instances run a
 * clock at the holds' expiry, the others one before it. Nothing here depends on timing: any
 * order Redis happens to see must pass.
 * And the race between replication and a post, void or reversal: an instance whose read replica
 * has not yet seen the target must still decide it (it reads the target on the primary).
 *
 * Seeds: HOLDS_RACES_SEED=<n> repeats the draws (amounts, start order); the interleaving inside
 * Redis still varies.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger, type Transfer, type TransferOutcome } from '../../src/ledger/ledger.js';
import { createRedis } from '../../src/redis/client.js';
import { type Fixture, fixture, uniqueLedgerName } from '../helpers/ledger.js';
import { admin, REPLICATION_ARGS, startRedis, startReplica, until } from './helpers.js';

/** Rounds per race; each round races ACCOUNT_PAIRS holds (or originals) at once. */
const ROUNDS = 200;
/** Each raced hold or original has its own two accounts, so its effect is checked exactly. */
const ACCOUNT_PAIRS = 4;
/** Ledger instances on the current clock, and on a clock at the holds' expiry. */
const ON_TIME_INSTANCES = 3;
const LATE_INSTANCES = 2;
const HOLD_TIMEOUT_SECONDS = 60;
const HOLD_AMOUNT = 100n;
const ORIGINAL_AMOUNT = 100n;
/** Concurrent reversals of one original; their amounts together exceed it. */
const REVERSALS_PER_ORIGINAL = 5;
/** Each call waits 0 .. this many event-loop turns before it starts, to vary arrival order. */
const START_JITTER_TURNS_MAX = 3;
const FUNDING = '1000000000';
const by = 'races';

const seed = Number(process.env.HOLDS_RACES_SEED ?? Math.floor(Math.random() * 2 ** 31));
let clock = 1_800_000_000_000;
const onTime: Fixture[] = [];
const late: Fixture[] = [];
let n = 0;
const uid = (p: string) => `${p}-${++n}`;

/** mulberry32: small and seeded, so a failing run's draws can be repeated. */
function seeded(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(seed);
const below = (k: number) => Math.floor(random() * k);
const pick = <T>(list: readonly T[]): T => list[below(list.length)] as T;
const ledgerOf = (list: readonly Fixture[]): Ledger => pick(list).ledger;
/** Two different instances (so two connections) of `list`. */
function twoLedgers(list: readonly Fixture[]): [Ledger, Ledger] {
  const i = below(list.length);
  return [(list[i] as Fixture).ledger, (list[(i + 1) % list.length] as Fixture).ledger];
}

beforeAll(async () => {
  const ledgerName = uniqueLedgerName();
  for (let i = 0; i < ON_TIME_INSTANCES; i++) {
    onTime.push(await fixture({ ledgerName, now: () => clock }));
  }
  for (let i = 0; i < LATE_INSTANCES; i++) {
    late.push(await fixture({ ledgerName, now: () => clock + HOLD_TIMEOUT_SECONDS * 1000 }));
  }
  await account('bank', 'unlimited');
});

afterAll(async () => {
  await Promise.all([...onTime, ...late].map((f) => f.close()));
});

function decided(outcome: TransferOutcome): { transfer: Transfer; replayed: boolean } {
  if (outcome.kind !== 'decided') throw new Error(`conflict: ${outcome.fields.join()}`);
  return outcome;
}

async function account(id: string, overdraftLimit = '0'): Promise<void> {
  const outcome = await ledgerOf(onTime).createAccount({ id, currency: 'USD', overdraftLimit,
    metadata: {}, createdBy: by });
  expect(outcome.kind).toBe('created');
}

async function move(from: string, to: string, amount: string): Promise<Transfer> {
  const t = decided(await ledgerOf(onTime).transfer({ id: uid('t'), from, to, amount,
    metadata: {}, createdBy: by })).transfer;
  expect(t.status, `${from} -> ${to} ${amount}: ${t.reason}`).toBe('committed');
  return t;
}

interface Sums { balance: bigint; dp: bigint; cp: bigint }

async function sums(id: string): Promise<Sums> {
  const a = await ledgerOf(onTime).getAccount(id);
  if (a === undefined) throw new Error(`no account ${id}`);
  return { balance: BigInt(a.balance), dp: BigInt(a.debitsPending),
    cp: BigInt(a.creditsPending) };
}

/** The open-hold counters (count, amount) of USD, the only currency here. */
async function openHolds(): Promise<{ count: number; amount: string }> {
  return (await ledgerOf(onTime).openHolds()).get('USD') ?? { count: 0, amount: '0' };
}

/** Starts every call after its own random delay of a few turns, all at once; waits for all. */
async function race<T>(calls: Array<() => Promise<T>>): Promise<T[]> {
  const order = calls.map((call, i) => ({ call, i, key: random() }))
    .sort((a, b) => a.key - b.key);
  const results: T[] = new Array<T>(calls.length);
  await Promise.all(order.map(async ({ call, i }) => {
    for (let turn = below(START_JITTER_TURNS_MAX + 1); turn > 0; turn--) {
      await new Promise((ok) => setImmediate(ok));
    }
    results[i] = await call();
  }));
  return results;
}

/** The same request sent twice at once on two connections: one decision, one replay. */
function expectOneDecision(pair: Array<{ transfer: Transfer; replayed: boolean }>,
  what: string): Transfer {
  const [a, b] = pair;
  if (a === undefined || b === undefined) throw new Error('expected two answers');
  expect(b.transfer, `${what}: the duplicate answers as the original`).toEqual(a.transfer);
  expect([a.replayed, b.replayed].sort(), `${what}: decided once, replayed once`)
    .toEqual([false, true]);
  return a.transfer;
}

type Winner = 'post' | 'void' | 'expiry';

interface HoldRace {
  pair: number;
  hold: Transfer;
  postAmount: string | undefined;
  before: { from: Sums; to: Sums };
}

describe('post vs void vs expiry of one hold', () => {
  const winners: Record<Winner, number> = { post: 0, void: 0, expiry: 0 };
  const from = (p: number) => `hr-from-${p}`;
  const to = (p: number) => `hr-to-${p}`;

  beforeAll(async () => {
    for (let p = 0; p < ACCOUNT_PAIRS; p++) {
      await account(from(p));
      await account(to(p));
      await move('bank', from(p), FUNDING);
    }
  });

  afterAll(() => {
    console.info(`holds races (HOLDS_RACES_SEED=${seed}): ${ROUNDS * ACCOUNT_PAIRS} holds, ` +
      `won by post ${winners.post}, void ${winners.void}, expiry ${winners.expiry}`);
  });

  async function open(pair: number): Promise<HoldRace> {
    const before = { from: await sums(from(pair)), to: await sums(to(pair)) };
    const hold = decided(await ledgerOf(onTime).transfer({ id: uid('hold'), from: from(pair),
      to: to(pair), amount: `${HOLD_AMOUNT}`, metadata: {}, createdBy: by, pending: true,
      timeoutSeconds: HOLD_TIMEOUT_SECONDS })).transfer;
    expect(hold.status).toBe('committed');
    const postAmount = random() < 0.5 ? undefined : `${1n + BigInt(below(Number(HOLD_AMOUNT)))}`;
    return { pair, hold, postAmount, before };
  }

  test(`${ROUNDS} rounds of ${ACCOUNT_PAIRS} holds: exactly one wins, released exactly once`,
    async () => {
      for (let round = 0; round < ROUNDS; round++) {
        clock += HOLD_TIMEOUT_SECONDS * 1000 + 1;
        const statsBefore = await openHolds();
        const races = await Promise.all(Array.from({ length: ACCOUNT_PAIRS }, (_, p) => open(p)));
        const sweep = random() < 0.8;
        const lateSettle = random() < 0.5;
        const calls: Array<() => Promise<unknown>> = [];
        for (const r of races) {
          const post = { id: uid('post'), holdId: r.hold.id, metadata: {}, createdBy: by,
            ...(r.postAmount === undefined ? {} : { amount: r.postAmount }) };
          const voiding = { id: uid('void'), holdId: r.hold.id, metadata: {}, createdBy: by };
          // The post twice (same id, two connections), the void, and a post or void from a
          // clock at expiry, which can only find it expired (and release it, if first). Every
          // draw is made here, not as the calls run, so a seed repeats them.
          const [[p1, p2], v] = [twoLedgers(onTime), ledgerOf(onTime)];
          calls.push(() => p1.settle('post', post));
          calls.push(() => p2.settle('post', post));
          calls.push(() => v.settle('void', voiding));
          if (lateSettle) {
            const [l, mode] = [ledgerOf(late), random() < 0.5 ? 'post' : 'void'] as const;
            const input = { id: uid('late'), holdId: r.hold.id, metadata: {}, createdBy: by };
            calls.push(() => l.settle(mode, input));
          }
        }
        const sweeper = ledgerOf(late);
        if (sweep) calls.push(() => sweeper.expireHolds());
        const results = await race(calls);
        const swept = sweep ? results[results.length - 1] as Awaited<
          ReturnType<Ledger['expireHolds']>> : { released: [], skipped: 0 };
        const perHold = lateSettle ? 4 : 3;
        for (const [i, r] of races.entries()) {
          const answers = results.slice(i * perHold, (i + 1) * perHold)
            .map((o) => decided(o as TransferOutcome));
          await checkHold(r, answers, swept.released.filter((x) => x.seq === r.hold.seq).length,
            `round ${round} pair ${r.pair} (seed ${seed})`);
        }
        expect(await openHolds(), `round ${round}: open-hold counters`)
          .toEqual(statsBefore);
      }
      expect(winners.post + winners.void + winners.expiry).toBe(ROUNDS * ACCOUNT_PAIRS);
    }, 300_000);

  async function checkHold(r: HoldRace, answers: Array<{ transfer: Transfer;
    replayed: boolean }>, sweptTimes: number, where: string): Promise<void> {
    const [post1, post2, voided, lateOne] = answers;
    if (post1 === undefined || post2 === undefined || voided === undefined) {
      throw new Error('missing answers');
    }
    const post = expectOneDecision([post1, post2], `${where}: post`);
    const stored = await ledgerOf(onTime).getTransfer(r.hold.id);
    const winner: Winner = post.status === 'committed' ? 'post'
      : voided.transfer.status === 'committed' ? 'void' : 'expiry';
    winners[winner] += 1;
    const status = { post: 'posted', void: 'voided', expiry: 'expired' }[winner];
    expect(stored?.pendingStatus, `${where}: the hold's state`).toBe(status);
    const committed = [post, voided.transfer, lateOne?.transfer]
      .filter((t) => t?.status === 'committed');
    expect(committed.length, `${where}: exactly one settlement committed`)
      .toBe(winner === 'expiry' ? 0 : 1);
    expect(sweptTimes, `${where}: released by the sweep at most once`).toBeLessThanOrEqual(1);
    if (winner !== 'expiry') expect(sweptTimes, `${where}: swept after it settled`).toBe(0);
    if (winner === 'expiry') {
      expect(sweptTimes + (lateOne === undefined ? 0 : 1), `${where}: expiry needs a releaser`)
        .toBeGreaterThan(0);
    }
    const loser = { post: 'PENDING_TRANSFER_ALREADY_POSTED',
      void: 'PENDING_TRANSFER_ALREADY_VOIDED', expiry: 'PENDING_TRANSFER_EXPIRED' }[winner];
    if (winner !== 'post') expect(post.reason, `${where}: the post lost`).toBe(loser);
    if (winner !== 'void') expect(voided.transfer.reason, `${where}: the void lost`).toBe(loser);
    if (lateOne !== undefined) {
      expect(lateOne.transfer.reason, `${where}: the late settle`).toBe(loser);
    }
    const posted = winner === 'post' ? BigInt(r.postAmount ?? `${HOLD_AMOUNT}`) : 0n;
    if (winner === 'post') {
      expect(post.amount).toBe(`${posted}`);
      expect(stored?.postedAmount).toBe(`${posted}`);
    }
    if (winner === 'void') expect(voided.transfer.amount).toBe(`${HOLD_AMOUNT}`);
    // The release is exact and once: pending sums as before the hold; posted moved iff posted.
    expect(await sums(`hr-from-${r.pair}`), `${where}: debit account`).toEqual(
      { ...r.before.from, balance: r.before.from.balance - posted });
    expect(await sums(`hr-to-${r.pair}`), `${where}: credit account`).toEqual(
      { ...r.before.to, balance: r.before.to.balance + posted });
    const f = onTime[0] as Fixture;
    expect(await f.redis.zscore(f.keys.expiries(), r.hold.seq ?? ''),
      `${where}: out of the expiry index`).toBeNull();
  }
});

describe('concurrent partial reversals of one transfer or post', () => {
  let rejected = 0;
  let reversed = 0n;
  const from = (p: number) => `rv-from-${p}`;
  const to = (p: number) => `rv-to-${p}`;

  beforeAll(async () => {
    for (let p = 0; p < ACCOUNT_PAIRS; p++) {
      await account(from(p));
      await account(to(p));
      await move('bank', from(p), FUNDING);
      // Funds enough to pay back far more than the original: only the reversible amount stops
      // a reversal, never INSUFFICIENT_FUNDS.
      await move('bank', to(p), FUNDING);
    }
  });

  afterAll(() => {
    console.info(`reversal races (HOLDS_RACES_SEED=${seed}): ${ROUNDS * ACCOUNT_PAIRS} ` +
      `originals, ${reversed} of ${BigInt(ROUNDS * ACCOUNT_PAIRS) * ORIGINAL_AMOUNT} reversed, ` +
      `${rejected} reversals rejected`);
  });

  /** A transfer, or (every other round) the post of a hold, of ORIGINAL_AMOUNT. */
  async function original(pair: number, round: number): Promise<Transfer> {
    if (round % 2 === 0) return move(from(pair), to(pair), `${ORIGINAL_AMOUNT}`);
    const ledger = ledgerOf(onTime);
    const hold = decided(await ledger.transfer({ id: uid('hold'), from: from(pair),
      to: to(pair), amount: `${ORIGINAL_AMOUNT + 7n}`, metadata: {}, createdBy: by,
      pending: true })).transfer;
    const post = decided(await ledger.settle('post', { id: uid('post'), holdId: hold.id,
      amount: `${ORIGINAL_AMOUNT}`, metadata: {}, createdBy: by })).transfer;
    expect(post.status).toBe('committed');
    return post;
  }

  /** Amounts that together exceed the original; sometimes one asks for "all that is left". */
  function amounts(): Array<bigint | undefined> {
    for (;;) {
      const list: Array<bigint | undefined> = Array.from({ length: REVERSALS_PER_ORIGINAL },
        () => 1n + BigInt(below(Number(ORIGINAL_AMOUNT) / 2)));
      if (random() < 0.3) list[below(list.length)] = undefined;
      const asked = list.reduce<bigint>((s, a) => s + (a ?? ORIGINAL_AMOUNT), 0n);
      if (asked > ORIGINAL_AMOUNT) return list;
    }
  }

  test(`${ROUNDS} rounds of ${ACCOUNT_PAIRS} originals: the sum reversed never exceeds one`,
    async () => {
      for (let round = 0; round < ROUNDS; round++) {
        const originals = await Promise.all(Array.from({ length: ACCOUNT_PAIRS },
          (_, p) => original(p, round)));
        const before = await Promise.all(originals.map(async (_, p) =>
          ({ from: await sums(from(p)), to: await sums(to(p)) })));
        const asks = originals.map(() => amounts());
        const calls: Array<() => Promise<TransferOutcome>> = [];
        originals.forEach((o, p) => asks[p]?.forEach((amount) => {
          const input = { id: uid('rev'), transferId: o.id, metadata: {}, createdBy: by,
            ...(amount === undefined ? {} : { amount: `${amount}` }) };
          // Each reversal twice at once, on two connections: a replay moves nothing.
          const [a, b] = twoLedgers([...onTime, ...late]);
          calls.push(() => a.reverse(input));
          calls.push(() => b.reverse(input));
        }));
        const results = (await race(calls)).map(decided);
        for (const [p, o] of originals.entries()) {
          const per = REVERSALS_PER_ORIGINAL * 2;
          const answers = results.slice(p * per, (p + 1) * per);
          const where = `round ${round} pair ${p} (seed ${seed})`;
          const decisions = asks[p]?.map((_, k) => expectOneDecision(
            answers.slice(2 * k, 2 * k + 2), `${where}: reversal ${k}`)) ?? [];
          await checkReversals(o, asks[p] ?? [], decisions, before[p] as { from: Sums; to: Sums },
            p, where);
        }
      }
    }, 300_000);

  async function checkReversals(o: Transfer, asks: Array<bigint | undefined>,
    decisions: Transfer[], before: { from: Sums; to: Sums }, pair: number,
    where: string): Promise<void> {
    const done = decisions.filter((t) => t.status === 'committed');
    const sum = done.reduce((s, t) => s + BigInt(t.amount), 0n);
    reversed += sum;
    expect(sum, `${where}: reversed in total`).toBeLessThanOrEqual(ORIGINAL_AMOUNT);
    const left = ORIGINAL_AMOUNT - sum;
    decisions.forEach((t, k) => {
      const asked = asks[k];
      if (t.status === 'committed') {
        expect(t, `${where}: reversal ${k}`).toMatchObject({ kind: 'reversal', reverses: o.id,
          from: o.to, to: o.from });
        if (asked !== undefined) expect(t.amount).toBe(`${asked}`);
        return;
      }
      rejected += 1;
      expect(t.reason, `${where}: reversal ${k} rejected`).toBe('EXCEEDS_REVERSIBLE_AMOUNT');
      // Decided one after another: what was left when it was refused is at least what is
      // left now, and it asked for more than that (or for "all" when nothing was left).
      if (asked === undefined) expect(left, `${where}: "all" refused`).toBe(0n);
      else expect(asked, `${where}: refused ${asked}, ${left} left`).toBeGreaterThan(left);
    });
    // "All that is left", once committed, left nothing for anyone after it.
    if (decisions.some((t, k) => t.status === 'committed' && asks[k] === undefined)) {
      expect(sum, `${where}: "all" committed`).toBe(ORIGINAL_AMOUNT);
    }
    const stored = await ledgerOf(onTime).getTransfer(o.id);
    expect(stored?.reversedAmount, `${where}: the original's reversedAmount`).toBe(`${sum}`);
    expect(await sums(from(pair)), `${where}: the original's debit account`)
      .toEqual({ ...before.from, balance: before.from.balance + sum });
    expect(await sums(to(pair)), `${where}: the original's credit account`)
      .toEqual({ ...before.to, balance: before.to.balance - sum });
  }
});

describe('a post, void or reversal through an instance whose read replica lags', () => {
  test('its target is read on the primary: decided, not refused for stale keys', async () => {
    const primary = await startRedis({ extraArgs: REPLICATION_ARGS });
    const replica = await startReplica(primary);
    const connections: Redis[] = [];
    const connect = async (url: string) => {
      const c = createRedis(url);
      c.on('error', () => {});
      connections.push(c);
      await c.connect();
      return c;
    };
    try {
      const r = await admin(replica.url);
      connections.push(r);
      // Synced, and done writing its first AOF (Redis refuses a SIGTERM until then).
      await until('the replica to sync', async () =>
        /master_link_status:up/.test(await r.info('replication'))
        && /aof_rewrite_in_progress:0/.test(await r.info('persistence'))
        && /aof_rewrite_scheduled:0/.test(await r.info('persistence')));
      const keys = ledgerKeys('test', uniqueLedgerName());
      const writer = new Ledger({ redis: await connect(primary.url), keys });
      // Another instance, reading through the replica (and with no hold of its own cached).
      const other = new Ledger({ redis: await connect(primary.url), keys,
        replicas: [await connect(replica.url)] });
      await writer.ensureScripts();
      await other.ensureScripts();
      for (const [id, overdraftLimit] of [['lag-bank', 'unlimited'], ['lag-u', '0']]) {
        await writer.createAccount({ id, currency: 'USD', overdraftLimit: overdraftLimit as string,
          metadata: {}, createdBy: by });
      }
      // The replica stops applying the primary's stream: it lags by every write from now on.
      await r.call('REPLICAOF', 'NO', 'ONE');
      const write = async (outcome: Promise<TransferOutcome>) => {
        const t = decided(await outcome).transfer;
        expect(t.status, `${t.id}: ${t.reason}`).toBe('committed');
        return t;
      };
      const move = { from: 'lag-bank', to: 'lag-u', amount: '5', metadata: {}, createdBy: by };
      const h1 = await write(writer.transfer({ ...move, id: 'lag-h1', pending: true }));
      const h2 = await write(writer.transfer({ ...move, id: 'lag-h2', pending: true }));
      const t = await write(writer.transfer({ ...move, id: 'lag-t' }));
      const asked = { metadata: {}, createdBy: by };
      await write(other.settle('post', { ...asked, id: 'lag-p', holdId: h1.id }));
      await write(other.settle('void', { ...asked, id: 'lag-v', holdId: h2.id }));
      await write(other.reverse({ ...asked, id: 'lag-r', transferId: t.id }));
    } finally {
      for (const c of connections) c.disconnect();
      // kill -9: their data goes with their directories anyway.
      await replica.server.kill();
      await replica.dispose();
      await primary.server.kill();
      await primary.dispose();
    }
  }, 120_000);
});
