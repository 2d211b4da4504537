/**
 * Holds, posts, voids, expiry, reversals and closed accounts through the ledger core, against a
 * real Redis, with a clock the test controls (expiry is decided against the caller's time).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Ledger, TransferOutcome } from '../../src/ledger/ledger.js';
import { type Fixture, fixture } from '../helpers/ledger.js';

let f: Fixture;
let ledger: Ledger;
let clock = 1_795_000_000_000;
const by = 'test';
let n = 0;
const uid = (p: string) => `${p}-${++n}`;

beforeAll(async () => {
  f = await fixture({ now: () => clock });
  ledger = f.ledger;
});
afterAll(async () => { await f.close(); });

async function account(id: string, overdraftLimit = '0') {
  const outcome = await ledger.createAccount({ id, currency: 'USD', overdraftLimit,
    metadata: {}, createdBy: by });
  expect(outcome.kind).toBe('created');
}

function decided(outcome: TransferOutcome) {
  if (outcome.kind !== 'decided') throw new Error(`conflict: ${outcome.fields.join()}`);
  return outcome.transfer;
}

async function fund(to: string, amount: string) {
  return decided(await ledger.transfer({ id: uid('fund'), from: 'bank', to, amount,
    metadata: {}, createdBy: by }));
}

async function hold(from: string, to: string, amount: string, timeoutSeconds?: number,
  id = uid('hold')) {
  return decided(await ledger.transfer({ id, from, to, amount, metadata: {}, createdBy: by,
    pending: true, ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }) }));
}

async function balances(id: string) {
  const a = await ledger.getAccount(id);
  if (!a) throw new Error(`no account ${id}`);
  return { balance: a.balance, dp: a.debitsPending, cp: a.creditsPending,
    available: a.available };
}

beforeAll(async () => {
  await account('bank', 'unlimited');
});

describe('holds', () => {
  test('a hold reserves funds: available drops, posted balances do not move', async () => {
    await account('h-a');
    await account('h-b');
    await fund('h-a', '100');
    const h = await hold('h-a', 'h-b', '60', 30);
    expect(h).toMatchObject({ status: 'committed', kind: 'hold', pendingStatus: 'pending',
      fromBalanceAfter: '100', toBalanceAfter: '0', amount: '60',
      expiresAt: new Date(clock + 30_000).toISOString() });
    expect(await balances('h-a')).toEqual({ balance: '100', dp: '60', cp: '0',
      available: '40' });
    expect(await balances('h-b')).toEqual({ balance: '0', dp: '0', cp: '60', available: '0' });
    // A transfer may take only what is available.
    const t = decided(await ledger.transfer({ id: uid('t'), from: 'h-a', to: 'h-b',
      amount: '41', metadata: {}, createdBy: by }));
    expect(t).toMatchObject({ status: 'rejected', reason: 'INSUFFICIENT_FUNDS' });
    const post = decided(await ledger.settle('post', { id: uid('post'), holdId: h.id,
      amount: '25', metadata: {}, createdBy: by }));
    expect(post).toMatchObject({ status: 'committed', kind: 'post', pendingId: h.id,
      amount: '25', from: 'h-a', to: 'h-b', fromBalanceAfter: '75', toBalanceAfter: '25' });
    expect(await balances('h-a')).toEqual({ balance: '75', dp: '0', cp: '0', available: '75' });
    expect(await balances('h-b')).toEqual({ balance: '25', dp: '0', cp: '0', available: '25' });
    expect(await ledger.getTransfer(h.id)).toMatchObject({ pendingStatus: 'posted',
      postedAmount: '25' });
    // Entries list the post, not the hold.
    const page = await ledger.listEntries('h-a', 10);
    expect(page && page !== 'badCursor' && page.entries.map((e) => e.kind))
      .toEqual(['post', 'transfer']);
  });

  test('post and void rejections, in precedence order, are recorded', async () => {
    await account('p-a');
    await account('p-b');
    await fund('p-a', '100');
    const settle = async (mode: 'post' | 'void', holdId: string, amount?: string) =>
      decided(await ledger.settle(mode, { id: uid(mode), holdId, metadata: {}, createdBy: by,
        ...(amount === undefined ? {} : { amount }) }));
    expect((await settle('post', 'nope')).reason).toBe('PENDING_TRANSFER_NOT_FOUND');
    const t = await fund('p-a', '1');
    expect((await settle('void', t.id)).reason).toBe('PENDING_TRANSFER_NOT_PENDING');
    const h = await hold('p-a', 'p-b', '10');
    expect(h.expiresAt).toBeNull();
    expect((await settle('post', h.id, '11')).reason).toBe('EXCEEDS_PENDING_AMOUNT');
    const v = await settle('void', h.id);
    expect(v).toMatchObject({ status: 'committed', kind: 'void', amount: '10' });
    expect((await settle('post', h.id, '11')).reason).toBe('PENDING_TRANSFER_ALREADY_VOIDED');
    const h2 = await hold('p-a', 'p-b', '10');
    await settle('post', h2.id);
    expect((await settle('void', h2.id)).reason).toBe('PENDING_TRANSFER_ALREADY_POSTED');
    expect(await balances('p-a')).toEqual({ balance: '91', dp: '0', cp: '0', available: '91' });
  });

  test('replays return the original, other fields conflict', async () => {
    await account('r-a');
    await account('r-b');
    await fund('r-a', '100');
    const h = await hold('r-a', 'r-b', '10', 60);
    const input = { id: uid('post'), holdId: h.id, metadata: { k: 'v' }, createdBy: by };
    const first = decided(await ledger.settle('post', input));
    const again = await ledger.settle('post', input);
    expect(again).toEqual({ kind: 'decided', replayed: true, transfer: first });
    expect(await ledger.settle('post', { ...input, amount: '10' }))
      .toEqual({ kind: 'conflict', fields: ['amount'] });
    expect(await ledger.settle('void', input)).toEqual({ kind: 'conflict', fields: ['kind'] });
    const holdAgain = await ledger.transfer({ id: h.id, from: 'r-a', to: 'r-b', amount: '10',
      metadata: {}, createdBy: by, pending: true, timeoutSeconds: 60 });
    expect(holdAgain.kind === 'decided' && holdAgain.transfer.pendingStatus).toBe('pending');
    expect(await ledger.transfer({ id: h.id, from: 'r-a', to: 'r-b', amount: '10',
      metadata: {}, createdBy: by, pending: true, timeoutSeconds: 61 }))
      .toEqual({ kind: 'conflict', fields: ['timeoutSeconds'] });
    expect(await ledger.transfer({ id: h.id, from: 'r-a', to: 'r-b', amount: '10',
      metadata: {}, createdBy: by })).toEqual({ kind: 'conflict', fields: ['pending'] });
  });

  test('expiry at the boundary: 1 ms before commits, at it is expired and released', async () => {
    await account('e-a');
    await account('e-b');
    await fund('e-a', '100');
    const start = clock;
    const h1 = await hold('e-a', 'e-b', '10', 5);
    const h2 = await hold('e-a', 'e-b', '20', 5);
    clock = start + 5000 - 1;
    const post = decided(await ledger.settle('post', { id: uid('post'), holdId: h1.id,
      metadata: {}, createdBy: by }));
    expect(post.status).toBe('committed');
    clock = start + 5000;
    const late = decided(await ledger.settle('void', { id: uid('void'), holdId: h2.id,
      metadata: {}, createdBy: by }));
    expect(late.reason).toBe('PENDING_TRANSFER_EXPIRED');
    expect(await ledger.getTransfer(h2.id)).toMatchObject({ pendingStatus: 'expired' });
    expect(await balances('e-a')).toEqual({ balance: '90', dp: '0', cp: '0', available: '90' });
    expect((await ledger.expireHolds()).released).toEqual([]);
  });

  test('the sweep releases expired holds once, oldest first', async () => {
    await account('s-a');
    await account('s-b');
    await fund('s-a', '100');
    const start = clock;
    const h1 = await hold('s-a', 's-b', '1', 2);
    const h2 = await hold('s-a', 's-b', '2', 1);
    await hold('s-a', 's-b', '3', 100);
    expect(await balances('s-a')).toMatchObject({ dp: '6' });
    clock = start + 2000;
    const swept = await ledger.expireHolds();
    expect(swept.released.map((r) => r.amount)).toEqual(['2', '1']);
    expect((await ledger.expireHolds()).released).toEqual([]);
    expect(await balances('s-a')).toMatchObject({ dp: '3', balance: '100' });
    expect(await ledger.getTransfer(h1.id)).toMatchObject({ pendingStatus: 'expired' });
    expect(await ledger.getTransfer(h2.id)).toMatchObject({ pendingStatus: 'expired' });
    const late = decided(await ledger.settle('post', { id: uid('post'), holdId: h1.id,
      metadata: {}, createdBy: by }));
    expect(late.reason).toBe('PENDING_TRANSFER_EXPIRED');
  });
});

describe('reversals and closed accounts', () => {
  test('reversals add up to at most the original', async () => {
    await account('v-a');
    await account('v-b');
    await fund('v-a', '100');
    const t = decided(await ledger.transfer({ id: uid('t'), from: 'v-a', to: 'v-b',
      amount: '50', metadata: {}, createdBy: by }));
    const reverse = async (amount?: string) => decided(await ledger.reverse({ id: uid('rev'),
      transferId: t.id, metadata: {}, createdBy: by, ...(amount ? { amount } : {}) }));
    expect(await reverse('20')).toMatchObject({ kind: 'reversal', reverses: t.id, from: 'v-b',
      to: 'v-a', amount: '20', fromBalanceAfter: '30', toBalanceAfter: '70' });
    expect((await reverse('31')).reason).toBe('EXCEEDS_REVERSIBLE_AMOUNT');
    expect(await reverse()).toMatchObject({ amount: '30' });
    expect((await reverse()).reason).toBe('EXCEEDS_REVERSIBLE_AMOUNT');
    expect(await ledger.getTransfer(t.id)).toMatchObject({ reversedAmount: '50' });
    const nf = await ledger.reverse({ id: uid('rev'), transferId: 'nope', metadata: {},
      createdBy: by });
    expect(decided(nf).reason).toBe('TRANSFER_NOT_FOUND');
  });

  test('a closed account takes no new movement; its open holds still settle', async () => {
    await account('c-a');
    await account('c-b');
    await fund('c-a', '100');
    const h = await hold('c-a', 'c-b', '10');
    const closed = await ledger.closeAccount('c-b');
    expect(closed.kind === 'closed' && closed.account.closedAt).toBe(
      new Date(clock).toISOString());
    const again = await ledger.closeAccount('c-b');
    expect(again).toEqual({ ...closed, replayed: true });
    expect(await ledger.closeAccount('nobody')).toEqual({ kind: 'notFound' });
    const t = decided(await ledger.transfer({ id: uid('t'), from: 'c-a', to: 'c-b',
      amount: '1', metadata: {}, createdBy: by }));
    expect(t.reason).toBe('ACCOUNT_CLOSED');
    const post = decided(await ledger.settle('post', { id: uid('post'), holdId: h.id,
      metadata: {}, createdBy: by }));
    expect(post.status).toBe('committed');
    const rev = decided(await ledger.reverse({ id: uid('rev'), transferId: post.id,
      metadata: {}, createdBy: by }));
    expect(rev.reason).toBe('ACCOUNT_CLOSED');
  });
});

describe('clock skew between instances (time comes from each caller)', () => {
  test('a hold expires by the clock of whoever settles or sweeps it; released stays released',
    async () => {
      const skewMs = 5_000;
      const ahead = await fixture({ now: () => clock + skewMs,
        ledgerName: f.keys.tag.slice(1, -1) });
      try {
        await account('k-a');
        await account('k-b');
        await fund('k-a', '100');
        const start = clock;
        const h1 = await hold('k-a', 'k-b', '10', 10);
        const h2 = await hold('k-a', 'k-b', '20', 10);
        // 7 s later by this instance's clock, 12 s by the other's: the hold is past its expiry
        // for the instance ahead only. The one behind may still post it...
        clock = start + 7_000;
        expect((await ahead.ledger.getTransfer(h1.id))?.pendingStatus).toBe('expired');
        const post = decided(await ledger.settle('post', { id: uid('post'), holdId: h1.id,
          metadata: {}, createdBy: by }));
        expect(post.status).toBe('committed');
        // ...until the instance ahead sweeps it: from then on it is expired for everyone.
        expect((await ahead.ledger.expireHolds()).released.map((r) => r.amount)).toEqual(['20']);
        const late = decided(await ledger.settle('post', { id: uid('post'), holdId: h2.id,
          metadata: {}, createdBy: by }));
        expect(late.reason).toBe('PENDING_TRANSFER_EXPIRED');
        expect(await balances('k-a')).toEqual({ balance: '90', dp: '0', cp: '0',
          available: '90' });
      } finally {
        await ahead.close();
      }
    });
});
