/**
 * Every script of ours driven through the ledger at its worst: the longest ids, currency and
 * key names, amounts of 2^128-1, the largest metadata, replays and conflicts that return whole
 * records, a full entries page, batch chunks full by count and by bytes, the largest atomic
 * batch between distinct accounts. Shared by the deterministic bounds
 * (test/ops/script-budget.test.ts: commands, keys and bytes per call) and the bench
 * (bench/lib/script-durations.ts: time inside Redis), so both measure the same calls.
 */
import { AMOUNT_MAX_STRING, limits } from '../../src/config/limits.js';
import type { Ledger, Metadata, TransferInput } from '../../src/ledger/ledger.js';

const BY = 'k'.repeat(limits.KEY_NAME_LENGTH_MAX);
const CURRENCY = 'X'.repeat(limits.CURRENCY_LENGTH_MAX);
/** 36 digits: three limbs, yet 60 rounds of three batches stay far below 2^128-1. */
const BATCH_AMOUNT = `1${'0'.repeat(35)}`;

export interface WorstCase {
  /** What the call does at its worst. */
  label: string;
  /** The Lua script it runs (lua/<script>-N.lua). */
  script: string;
  /** For transfer-batch: one script for the whole batch rather than a non-atomic chunk. */
  atomic: boolean;
  /** Script calls it makes: a full page of entries takes several. */
  calls: number;
  /** Transfers or entries in those calls (0: one record). */
  items: number;
  /** Makes the call; throws when the outcome is not the worst case it stands for. */
  run(): Promise<void>;
}

/** src/ledger/keys.ts takes a key prefix and a ledger name of 64 characters at most. */
export const KEY_NAME_PART_LENGTH_MAX = 64;
/** The longest key names: every key a script is passed is as long as it can be. */
export const LONGEST_KEY_PREFIX = 'worst'.padEnd(KEY_NAME_PART_LENGTH_MAX, '_');
export const LONGEST_LEDGER_NAME = 'ledger'.padEnd(KEY_NAME_PART_LENGTH_MAX, '_');

/** The script a case runs, a batch's as a chunk or atomic: each has bounds and a budget. */
export const scriptOf = (c: Pick<WorstCase, 'script' | 'atomic'>) =>
  c.script === 'transfer-batch' ? `${c.script} ${c.atomic ? 'atomic' : 'chunk'}` : c.script;

export const longId = (prefix: string) => prefix.padEnd(limits.ID_LENGTH_MAX, 'x');
const accountId = (i: number) => longId(`acct${i}-`);
/** Pays the paged account's entries (unlimited), so its debits are far from 0. */
const CASH = longId('cash-');
/** ENTRIES_PAGE_LIMIT_MAX + 1 entries of BATCH_AMOUNT: balances of 36 to 39 digits. */
const PAGED = longId('paged-');

/** The largest metadata the limits allow: every key, the longest keys, values to the cap. */
export function maxMetadata(tag: string): Metadata {
  const metadata: Metadata = {};
  const keys = Array.from({ length: limits.METADATA_KEYS_MAX },
    (_, i) => `${tag}${String(i).padStart(2, '0')}`.padEnd(limits.METADATA_KEY_LENGTH_MAX, 'k'));
  const overhead = JSON.stringify(Object.fromEntries(keys.map((k) => [k, '']))).length;
  let room = limits.METADATA_JSON_BYTES_MAX - overhead;
  for (const key of keys) {
    const n = Math.max(0, Math.min(room, limits.METADATA_VALUE_LENGTH_MAX));
    metadata[key] = 'v'.repeat(n);
    room -= n;
  }
  return metadata;
}

/** The most metadata whose JSON fits in `bytes` (sorted keys: it is also the canonical form). */
function metadataWithin(bytes: number): Metadata {
  const metadata: Metadata = {};
  for (let i = 0; i < limits.METADATA_KEYS_MAX; i++) {
    const key = `k${String(i).padStart(2, '0')}`;
    const room = bytes - JSON.stringify({ ...metadata, [key]: '' }).length;
    if (room < 1) break;
    metadata[key] = 'v'.repeat(Math.min(room, limits.METADATA_VALUE_LENGTH_MAX));
  }
  return metadata;
}

/** What BATCH_CHUNK_BYTES_MAX counts of a transfer: its ids, amount, currency and metadata. */
export function fieldBytes(t: TransferInput): number {
  return t.id.length + t.from.length + t.to.length + t.amount.length
    + (t.currency?.length ?? 0) + JSON.stringify(t.metadata).length;
}

/** Transfers between distinct accounts (none shared), with the longest ids. */
function batch(tag: string, size: number, metadata: (base: TransferInput) => Metadata) {
  return Array.from({ length: size }, (_, i) => {
    const t: TransferInput = { id: longId(`${tag}-${i}-`), from: accountId(2 * i),
      to: accountId(2 * i + 1), amount: BATCH_AMOUNT, currency: CURRENCY, metadata: {},
      createdBy: BY };
    return { ...t, metadata: metadata(t) };
  });
}

/** A chunk full by count: BATCH_CHUNK_TRANSFERS_MAX, each with its share of the bytes. */
function countChunk(tag: string): TransferInput[] {
  const share = Math.floor(limits.BATCH_CHUNK_BYTES_MAX / limits.BATCH_CHUNK_TRANSFERS_MAX);
  return batch(tag, limits.BATCH_CHUNK_TRANSFERS_MAX,
    (t) => metadataWithin(share - fieldBytes(t) + 2));
}

/** A chunk full by bytes: as many of the largest transfers as BATCH_CHUNK_BYTES_MAX holds. */
function bytesChunk(tag: string): TransferInput[] {
  const largest = batch(tag, 1, () => maxMetadata('b'))[0] as TransferInput;
  return batch(tag, Math.floor(limits.BATCH_CHUNK_BYTES_MAX / fieldBytes(largest)),
    () => maxMetadata('b'));
}

/** BATCH_ATOMIC_TRANSFERS_MAX transfers whose metadata fills the largest body POST accepts. */
function atomicBatch(tag: string): TransferInput[] {
  const size = limits.BATCH_ATOMIC_TRANSFERS_MAX;
  // As HTTP sends it: without createdBy, which comes from the API key.
  const item = ({ createdBy: _, ...t }: TransferInput) => t;
  // Each item's share of the body, less its comma and the envelope's few bytes.
  const share = Math.floor((limits.BATCH_BODY_BYTES_MAX - 64) / size) - 1;
  const transfers = batch(tag, size, (t) => metadataWithin(Math.min(
    limits.METADATA_JSON_BYTES_MAX, share - JSON.stringify(item(t)).length + 2)));
  const body = JSON.stringify({ atomic: true, transfers: transfers.map(item) }).length;
  if (body > limits.BATCH_BODY_BYTES_MAX) throw new Error(`worst atomic batch: ${body} bytes`);
  return transfers;
}

function must(ok: boolean, what: string): void {
  if (!ok) throw new Error(`worst case did not happen: ${what}`);
}

async function decided(ledger: Ledger, transfers: TransferInput[], atomic: boolean,
  replayed: boolean): Promise<void> {
  const outcome = await ledger.transferBatch({ atomic, transfers });
  must(outcome.kind === 'decided' && outcome.results.length === transfers.length
    && outcome.results.every((r) => r.kind === 'decided' && r.replayed === replayed
      && r.transfer.status === 'committed'), `batch of ${transfers.length}, ${replayed
    ? 'replayed' : 'committed'}`);
}

/**
 * Stored transfers with the largest metadata: a batch that sends their ids with other fields
 * gets every stored record back to compare, the largest reply a batch can have. Nothing is
 * written then, so every round can send it again.
 */
const stored = (size: number) => batch('big', size, () => maxMetadata('s'));
/** The same ids with other (empty) metadata: each one a conflict. */
const conflicting = (size: number) => stored(size).map((t) => ({ ...t, metadata: {} }));

/**
 * What the worst cases need in place: cash, an account with ENTRIES_PAGE_LIMIT_MAX + 1 entries
 * (so a full page has a next one), 2 × BATCH_TRANSFERS_MAX accounts for batches that share
 * none, all with the longest ids and the largest metadata, and BATCH_TRANSFERS_MAX stored
 * transfers with the largest metadata.
 */
export async function seedWorstCases(ledger: Ledger): Promise<void> {
  const create = async (id: string) => {
    const outcome = await ledger.createAccount({ id, currency: CURRENCY,
      overdraftLimit: 'unlimited', metadata: maxMetadata(id.slice(0, 8)), createdBy: BY });
    must(outcome.kind === 'created', `account ${id.slice(0, 16)}… created`);
  };
  await create(CASH);
  await create(PAGED);
  const accounts = 2 * limits.BATCH_TRANSFERS_MAX;
  for (let i = 0; i < accounts; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => create(accountId(i + j))));
  }
  const entries = Array.from({ length: limits.ENTRIES_PAGE_LIMIT_MAX + 1 }, (_, i) => ({
    id: longId(`page-${i}-`), from: CASH, to: PAGED, amount: BATCH_AMOUNT, metadata: {},
    createdBy: BY }));
  for (let i = 0; i < entries.length; i += limits.BATCH_TRANSFERS_MAX) {
    await decided(ledger, entries.slice(i, i + limits.BATCH_TRANSFERS_MAX), false, false);
  }
  await decided(ledger, stored(limits.BATCH_TRANSFERS_MAX), false, false);
}

/** Every transfer a conflict: the stored records all come back, nothing is written. */
async function conflicts(ledger: Ledger, transfers: TransferInput[],
  atomic: boolean): Promise<void> {
  const outcome = await ledger.transferBatch({ atomic, transfers });
  must(atomic ? outcome.kind === 'atomicExists' && outcome.index === 0
    : outcome.kind === 'decided' && outcome.results.every((r) => r.kind === 'conflict'),
  `batch of ${transfers.length} conflicts`);
}

/** The transfer cases: a commit of 2^128-1, a rejection (recorded), a replay. */
function transferCases(ledger: Ledger, n: number, from: string, to: string): WorstCase[] {
  const max = { id: longId(`max-${n}-`), from, to, amount: AMOUNT_MAX_STRING,
    currency: CURRENCY, metadata: maxMetadata('m'), createdBy: BY };
  const single = { script: 'transfer', atomic: false, calls: 1, items: 0 };
  const expect = (input: TransferInput, status: string, replayed: boolean) => async () => {
    const outcome = await ledger.transfer(input);
    must(outcome.kind === 'decided' && outcome.transfer.status === status
      && outcome.replayed === replayed, `${input.id.slice(0, 16)}… ${status}`);
  };
  return [
    { ...single, label: 'commits 2^128-1, largest metadata', run: expect(max, 'committed',
      false) },
    // Cash has paid the entries: 2^128-1 more would overflow its debits.
    { ...single, label: 'rejected (recorded), largest metadata', run: expect({ ...max,
      id: longId(`over-${n}-`), from: CASH }, 'rejected', false) },
    { ...single, label: 'replay: the stored record back', run: expect(max, 'committed',
      true) },
  ];
}

/**
 * One round: each worst case once, in an order that makes it happen (a replay after its
 * commit). Round `n` uses ids of its own; the accounts are seedWorstCases'.
 */
export async function worstRound(ledger: Ledger, n: number): Promise<WorstCase[]> {
  const from = longId(`from-${n}-`);
  const to = longId(`to-${n}-`);
  const account = { id: from, currency: CURRENCY, overdraftLimit: AMOUNT_MAX_STRING,
    metadata: maxMetadata('a'), createdBy: BY };
  // The credit account is set up here, not measured: its creation is the case below.
  must((await ledger.createAccount({ ...account, id: to })).kind === 'created', 'to created');
  const one = { atomic: false, calls: 1, items: 0 };
  const [count, bytes, atomic] = [countChunk(`c${n}`), bytesChunk(`b${n}`), atomicBatch(`a${n}`)];
  const pageCalls = Math.ceil(limits.ENTRIES_PAGE_LIMIT_MAX / limits.ENTRIES_READ_CHUNK_MAX);
  return [
    { ...one, script: 'create-account', label: 'new, largest metadata', run: async () =>
      must((await ledger.createAccount(account)).kind === 'created', 'account created') },
    { ...one, script: 'create-account', label: 'exists: the stored account back',
      run: async () =>
        must((await ledger.createAccount(account)).kind === 'replayed', 'account replayed') },
    ...transferCases(ledger, n, from, to),
    { ...one, script: 'read-hash', label: 'an account, largest metadata', run: async () =>
      must((await ledger.getAccount(from)) !== undefined, 'account read') },
    { ...one, script: 'read-transfer', label: 'a committed transfer, largest metadata',
      run: async () =>
        must((await ledger.getTransfer(longId(`max-${n}-`)))?.status === 'committed', 'read') },
    { ...one, script: 'read-entries', label: 'a full page (ENTRIES_PAGE_LIMIT_MAX)',
      calls: pageCalls, items: limits.ENTRIES_PAGE_LIMIT_MAX, run: async () => {
        const page = await ledger.listEntries(PAGED, limits.ENTRIES_PAGE_LIMIT_MAX);
        must(typeof page === 'object' && page.entries.length === limits.ENTRIES_PAGE_LIMIT_MAX
          && page.nextSeq !== null, 'a full page with a next one');
      } },
    { ...one, script: 'transfer-batch', label: 'chunk full by count', items: count.length,
      run: () => decided(ledger, count, false, false) },
    { ...one, script: 'transfer-batch', label: 'chunk full by bytes', items: bytes.length,
      run: () => decided(ledger, bytes, false, false) },
    { ...one, script: 'transfer-batch', label: 'chunk replay: stored records back',
      items: bytes.length, run: () => decided(ledger, bytes, false, true) },
    { ...one, script: 'transfer-batch', label: 'chunk of conflicts: largest records back',
      items: limits.BATCH_CHUNK_TRANSFERS_MAX, run: () =>
        conflicts(ledger, conflicting(limits.BATCH_CHUNK_TRANSFERS_MAX), false) },
    { ...one, script: 'transfer-batch', atomic: true,
      label: 'BATCH_ATOMIC_TRANSFERS_MAX, body full',
      items: atomic.length, run: () => decided(ledger, atomic, true, false) },
    { ...one, script: 'transfer-batch', atomic: true, label: 'replay: stored records back',
      items: atomic.length, run: () => decided(ledger, atomic, true, true) },
    { ...one, script: 'transfer-batch', atomic: true, label: 'conflicts: largest records back',
      items: limits.BATCH_ATOMIC_TRANSFERS_MAX, run: () =>
        conflicts(ledger, conflicting(limits.BATCH_ATOMIC_TRANSFERS_MAX), true) },
  ];
}
