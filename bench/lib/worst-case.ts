import { randomUUID } from 'node:crypto';
/**
 * Every script of ours driven through the ledger at its worst: the longest ids, currency and
 * key names, amounts of 2^128-1, the largest metadata, replays and conflicts that return whole
 * records, a full entries page, batch chunks full by count and by bytes, the largest atomic
 * batch between distinct accounts, holds, posts, voids, reversals, closes and a full sweep,
 * a balance walked back a full page of entries, and the archiver's saves and frees.
 * Shared by the deterministic bounds (test/ops/script-budget.test.ts: commands, keys and bytes
 * per call) and the bench (bench/lib/script-durations.ts: time inside Redis), so both measure
 * the same calls.
 * The ledger reads before it posts, voids, reverses, sweeps, walks a balance back or frees
 * archived records (the target, the expiry index, the journal's head, the records to free):
 * those scripts are called as the ledger calls them, with the keys and arguments it passes, on
 * a connection given to worstRound, so that a case measures its script alone; without one they
 * are left out. So are the lock (lua/lock-1.lua), which is not the ledger's, and the archiver's
 * cases, which need its lock.
 */
import type { Redis } from 'ioredis';
import { AMOUNT_MAX, AMOUNT_MAX_STRING, limits } from '../../src/config/limits.js';
import { compactArg, ledgerKeys } from '../../src/ledger/keys.js';
import { isHold } from '../../src/ledger/records.js';
import {
  canonicalMetadata, type Ledger, type Metadata, type TransferInput,
} from '../../src/ledger/ledger.js';
import { runScript, type Script, type ScriptArg } from '../../src/ledger/scripts.js';
import { statusCode } from '../../src/ledger/status.js';
import { RedisLock } from '../../src/redis/lock.js';

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
  /** For a script of several modes (lua/archive-7.lua): the mode, bounded on its own. */
  mode?: string;
  /** Script calls it makes: a full page of entries takes several. */
  calls: number;
  /** Transfers, entries or records in those calls (0: one record). */
  items: number;
  /** Makes the call; throws when the outcome is not the worst case it stands for. */
  run(): Promise<void>;
}

/** src/ledger/keys.ts takes a key prefix and a ledger name of 64 characters at most. */
export const KEY_NAME_PART_LENGTH_MAX = 64;
/** The longest key names: every key a script is passed is as long as it can be. */
export const LONGEST_KEY_PREFIX = 'worst'.padEnd(KEY_NAME_PART_LENGTH_MAX, '_');
export const LONGEST_LEDGER_NAME = 'ledger'.padEnd(KEY_NAME_PART_LENGTH_MAX, '_');

/**
 * The script a case runs, a batch's as a chunk or atomic, the archive's with its mode: each has
 * bounds and a budget.
 */
export const scriptOf = (c: Pick<WorstCase, 'script' | 'atomic' | 'mode'>) =>
  c.script === 'transfer-batch' ? `${c.script} ${c.atomic ? 'atomic' : 'chunk'}`
    : c.mode === undefined ? c.script : `${c.script} ${c.mode}`;

export const longId = (prefix: string) => prefix.padEnd(limits.ID_LENGTH_MAX, 'x');
const accountId = (i: number) => longId(`acct${i}-`);
/** Pays the paged account's entries (unlimited), so its debits are far from 0. */
const CASH = longId('cash-');
/** ENTRIES_PAGE_LIMIT_MAX + 1 entries of BATCH_AMOUNT: balances of 36 to 39 digits. */
const PAGED = longId('paged-');
/** The accounts of a sweep's holds, two per hold, none shared: a key passed for each. */
const sweepAccount = (i: number) => longId(`sweep${i}-`);
/** 39 digits, as long as an amount gets; two rounds' holds on one account still fit. */
const HALF_MAX = (AMOUNT_MAX / 2n).toString();
const HOLD_TIMEOUT = limits.HOLD_TIMEOUT_SECONDS_MAX;
/** Calls of a walk back over ENTRIES_PAGE_LIMIT_MAX entries, ENTRIES_READ_CHUNK_MAX a call. */
const WALK_CALLS = Math.ceil(limits.ENTRIES_PAGE_LIMIT_MAX / limits.ENTRIES_READ_CHUNK_MAX);

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
 * none and 2 × HOLDS_EXPIRE_BATCH_MAX for a sweep's holds, all with the longest ids and the
 * largest metadata, and BATCH_TRANSFERS_MAX stored transfers with the largest metadata.
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
  for (let i = 0; i < 2 * limits.HOLDS_EXPIRE_BATCH_MAX; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => create(sweepAccount(i + j))));
  }
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

/** A call of `name` as the ledger makes it, which must answer `status`. */
type Direct = (name: string, keys: string[], args: ScriptArg[], status: number,
  what: string) => Promise<void>;

function directOn(ledger: Ledger, redis: Redis): Direct {
  return async (name, keys, args, status, what) => {
    const reply = await runScript(redis, ledger.scripts.get(name) as Script, keys, args);
    must(Array.isArray(reply) && reply[0] === status, what);
  };
}

/** A round's accounts of holds: posted (then reversed), voided, expired; of its own each. */
interface HoldAccounts { hf: string; ht: string; vf: string; vt: string; ef: string; et: string }

/** The cases of holds, posts, voids, reversals, closes, sweeps and the lock, set up. */
async function holdCases(ledger: Ledger, n: number, redis?: Redis): Promise<WorstCase[]> {
  const id = (tag: string) => longId(`${tag}-${n}-`);
  const a: HoldAccounts = { hf: id('hf'), ht: id('ht'), vf: id('vf'), vt: id('vt'),
    ef: id('ef'), et: id('et') };
  const closing = id('close');
  for (const account of [...Object.values(a), closing]) {
    must((await ledger.createAccount({ id: account, currency: CURRENCY,
      overdraftLimit: 'unlimited', metadata: account === closing ? maxMetadata('c') : {},
      createdBy: BY })).kind === 'created', `account ${account.slice(0, 16)}… created`);
  }
  const hold = (holdId: string, from: string, to: string, metadata: Metadata): TransferInput =>
    ({ id: holdId, from, to, amount: AMOUNT_MAX_STRING, currency: CURRENCY, metadata,
      createdBy: BY, pending: true, timeoutSeconds: HOLD_TIMEOUT });
  const opened = async (input: TransferInput) => {
    const outcome = await ledger.transfer(input);
    must(outcome.kind === 'decided' && !outcome.replayed
      && outcome.transfer.status === 'committed', `hold ${input.id.slice(0, 16)}… opened`);
    return outcome.kind === 'decided' ? outcome.transfer.seq as string : '';
  };
  const closed = (replayed: boolean) => async () => {
    const outcome = await ledger.closeAccount(closing);
    must(outcome.kind === 'closed' && outcome.replayed === replayed, 'account closed');
  };
  const holds = countChunk(`h${n}`).map((t) => ({ ...t, pending: true,
    timeoutSeconds: HOLD_TIMEOUT }));
  const one = { atomic: false, calls: 1, items: 0 };
  const cases: WorstCase[] = [
    { ...one, script: 'transfer', label: 'a hold of 2^128-1, longest timeout, largest metadata',
      run: async () => { await opened(hold(id('hold'), a.hf, a.ht, maxMetadata('h'))); } },
    { ...one, script: 'transfer-batch', label: 'chunk of holds full by count',
      items: holds.length, run: () => decided(ledger, holds, false, false) },
    { ...one, script: 'close-account', label: 'closes, largest metadata back', run: closed(false) },
    { ...one, script: 'close-account', label: 'exists: the closed account back',
      run: closed(true) },
  ];
  if (redis === undefined) return cases;
  await opened(hold(id('vhold'), a.vf, a.vt, {}));
  await opened(hold(id('ehold'), a.ef, a.et, {}));
  const sweep = Array.from({ length: limits.HOLDS_EXPIRE_BATCH_MAX }, (_, i) => ({
    ...hold(id(`sweep-${i}`), sweepAccount(2 * i), sweepAccount(2 * i + 1), {}),
    amount: HALF_MAX }));
  const opening = await ledger.transferBatch({ atomic: false, transfers: sweep });
  const seqs = opening.kind === 'decided' ? opening.results.map((r) =>
    r.kind === 'decided' && r.transfer.status === 'committed' ? r.transfer.seq : undefined) : [];
  must(seqs.length === sweep.length && seqs.every((seq) => seq !== undefined), 'sweep holds');
  return [...cases, ...directCases(ledger, n, redis, directOn(ledger, redis), a,
    seqs as string[])];
}

/** Cases of the scripts the ledger calls after reads of its own, and of the lock. */
function directCases(ledger: Ledger, n: number, redis: Redis, direct: Direct,
  a: HoldAccounts, sweepSeqs: string[]): WorstCase[] {
  const k = ledgerKeys(LONGEST_KEY_PREFIX, LONGEST_LEDGER_NAME);
  const id = (tag: string) => longId(`${tag}-${n}-`);
  const metadata = canonicalMetadata(maxMetadata('p'));
  /** Past every hold's expiry. */
  const later = () => String(Date.now() + (HOLD_TIMEOUT + 60) * 1000);
  const S = statusCode;
  const settle = (mode: string, own: string, holdId: string, from: string, to: string,
    status: number, now = () => String(Date.now())) => () => direct('settle', [k.meta(),
    k.transferBucket(own), k.transferBucket(holdId), k.account(from), k.account(to),
    k.journal(), k.rejections(), k.accountIds(), k.state(), k.expiries(), k.holdStats()],
  [mode, own, holdId, mode === 'post' ? AMOUNT_MAX_STRING : '', metadata, now(), BY, from, to,
    compactArg(own), compactArg(holdId), '', ''], status, `${mode} ${own.slice(0, 16)}…`);
  // The post's accounts the other way round: its `to` pays back its `from`.
  const reverse = (own: string, amount: string, status: number) => () => direct('reverse',
    [k.meta(), k.transferBucket(own), k.transferBucket(id('post')), k.account(a.ht),
      k.account(a.hf), k.journal(), k.rejections(), k.accountIds(), k.state()],
    [own, id('post'), amount, metadata, String(Date.now()), BY, a.ht, a.hf, compactArg(own),
      compactArg(id('post')), '', ''], status, `reversal ${own.slice(0, 16)}…`);
  const sweep = () => {
    const keys = [k.meta(), k.journal(), k.accountIds(), k.state(), k.expiries(),
      k.holdStats()];
    const args = [sweepSeqs[0] as string, later(), String(sweepSeqs.length)];
    sweepSeqs.forEach((seq, i) => {
      keys.push(k.account(sweepAccount(2 * i)), k.account(sweepAccount(2 * i + 1)));
      args.push(seq, String(keys.length - 1), String(keys.length));
    });
    return direct('expire-holds', keys, args, S.OK, 'sweep');
  };
  // As balanceAt() walks it, after its read of the journal's head: seq 1 is the paged account's
  // first entry, so each later one is taken off, ENTRIES_READ_CHUNK_MAX a call.
  const walk = async () => {
    let reply = ['', '', 'more', '0', '0', ''];
    let calls = 0;
    while (reply[2] === 'more') {
      const [, , , debits, credits, cursor] = reply;
      reply = (await runScript(redis, ledger.scripts.get('read-balance') as Script,
        [k.account(PAGED), k.journal(), k.positions()], [PAGED, '1',
          String(limits.ENTRIES_READ_CHUNK_MAX), cursor ?? '', debits ?? '', credits ?? ''],
      ) as unknown[]).map(String);
      calls++;
    }
    must(reply[2] === 'done' && reply[3] === '0' && reply[4] === BATCH_AMOUNT
      && calls === WALK_CALLS, 'a walk back to seq 1');
  };
  const lock = new RedisLock(redis, ledger.scripts.get('lock') as Script,
    k.lock(`worst-${n}`), limits.HOLDS_SWEEP_LOCK_TTL_MS);
  const locked = (what: () => Promise<boolean>) => async () => must(await what(), 'lock');
  const one = { atomic: false, calls: 1, items: 0 };
  return [
    { ...one, script: 'settle', label: 'posts 2^128-1, largest metadata',
      run: settle('post', id('post'), id('hold'), a.hf, a.ht, S.OK) },
    { ...one, script: 'settle', label: 'replay: the stored post back',
      run: settle('post', id('post'), id('hold'), a.hf, a.ht, S.EXISTS) },
    { ...one, script: 'settle', label: 'voids 2^128-1, largest metadata',
      run: settle('void', id('void'), id('vhold'), a.vf, a.vt, S.OK) },
    { ...one, script: 'settle', label: 'an expired hold: rejected (recorded) and released',
      run: settle('post', id('late'), id('ehold'), a.ef, a.et, S.PENDING_TRANSFER_EXPIRED,
        later) },
    { ...one, script: 'reverse', label: 'reverses 2^128-1 of a post, largest metadata',
      run: reverse(id('rev'), AMOUNT_MAX_STRING, S.OK) },
    { ...one, script: 'reverse', label: 'replay: the stored reversal back',
      run: reverse(id('rev'), AMOUNT_MAX_STRING, S.EXISTS) },
    { ...one, script: 'reverse', label: 'rejected (recorded): nothing left, largest metadata',
      run: reverse(id('rev2'), '', S.EXCEEDS_REVERSIBLE_AMOUNT) },
    { ...one, script: 'expire-holds', label: 'HOLDS_EXPIRE_BATCH_MAX released, no account shared',
      items: sweepSeqs.length, run: sweep },
    { ...one, script: 'read-balance', label: 'walked back a full page, full chunks',
      calls: WALK_CALLS, items: limits.ENTRIES_PAGE_LIMIT_MAX, run: walk },
    ...followCases(ledger, n, redis),
    { ...one, script: 'lock', label: 'taken while free', run: locked(() => lock.take()) },
    { ...one, script: 'lock', label: 'renewed by its holder', run: locked(() => lock.take()) },
    { ...one, script: 'lock', label: 'released by its holder', run: locked(() => lock.release()) },
  ];
}

/**
 * The archiver's calls (lua/archive-7.lua), on a ledger of the round's own (a name as long as
 * any, so its keys are too), whose records only these cases free: no other case's record goes,
 * and no follower's position holds the frees back. Its journal is two runs of
 * JOURNAL_READ_CHUNK_MAX records, the first with UUID ids and the second with the longest: in
 * each, holds and then a post of each hold (a freed hold has its state read, a post names its
 * hold), all with the largest metadata. Its rejections are JOURNAL_READ_CHUNK_MAX holds of the
 * longest ids and the largest metadata. Cases: a full read of both streams (the second run and
 * the rejections), both positions saved, a full free of each run (UUID ids turn into their
 * compact form, the longest are written back as they are); then a post and a reversal of freed
 * records, each given its target's record as the ledger passes it once read from the archive
 * (src/ledger/ledger.ts givenArgs). A free is called as archiveFree() calls it, after its reads
 * of the records to free.
 */
async function archiveCases(ledger: Ledger, n: number, redis: Redis): Promise<WorstCase[]> {
  const al = ledger.sibling(`archive-${n}-`.padEnd(limits.LEDGER_NAME_LENGTH_MAX, 'x'));
  const k = al.keys;
  const full = limits.JOURNAL_READ_CHUNK_MAX;
  const [from, to] = [longId(`af-${n}-`), longId(`at-${n}-`)];
  for (const id of [from, to]) {
    must((await al.createAccount({ id, currency: CURRENCY, overdraftLimit: 'unlimited',
      metadata: {}, createdBy: BY })).kind === 'created', `account ${id.slice(0, 16)}… created`);
  }
  const posts = Math.floor(full / 2);
  /** Holds still open when freed: pinned, not freed (one if JOURNAL_READ_CHUNK_MAX is odd). */
  const open = full % 2;
  /** A run of `full` records: holds, then a post of each (but the open one). */
  const run = async (ids: string[]) => {
    const holds = ids.slice(0, full - posts).map((id): TransferInput => ({ id, from, to,
      amount: BATCH_AMOUNT, currency: CURRENCY, metadata: maxMetadata('h'), createdBy: BY,
      pending: true, timeoutSeconds: HOLD_TIMEOUT }));
    await decided(al, holds, false, false);
    const outcomes = await Promise.all(ids.slice(full - posts).map((id, i) => al.settle('post',
      { id, holdId: (holds[i] as TransferInput).id, amount: BATCH_AMOUNT,
        metadata: maxMetadata('p'), createdBy: BY })));
    must(outcomes.every((o) => o.kind === 'decided' && !o.replayed
      && o.transfer.status === 'committed'), `${posts} posts`);
  };
  const longIds = Array.from({ length: full }, (_, i) => longId(`a${n}-${i}-`));
  await run(Array.from({ length: full }, () => randomUUID()));
  await run(longIds);
  const ghost = longId(`ghost-${n}-`); // no such account: each hold is rejected, and recorded
  const rejected = await al.transferBatch({ atomic: false, transfers: Array.from({ length: full },
    (_, i) => ({ id: longId(`ar${n}-${i}-`), from: ghost, to, amount: BATCH_AMOUNT,
      currency: CURRENCY, metadata: maxMetadata('r'), createdBy: BY, pending: true,
      timeoutSeconds: HOLD_TIMEOUT })) });
  must(rejected.kind === 'decided' && rejected.results.every((r) => r.kind === 'decided'
    && r.transfer.status === 'rejected'), `${full} rejected holds`);
  const records = await redis.xrange(k.journal(), '-', '+');
  must(records.length === 2 * full, `${2 * full} records`);
  const seqOf = (i: number) => (records[i] as [string, string[]])[0].slice(2);
  const lock = new RedisLock(redis, ledger.scripts.get('lock') as Script, k.lock('archive'),
    limits.ARCHIVE_LOCK_TTL_MS);
  const free = (chunk: Array<[string, string[]]>) => {
    const keys = [k.meta(), lock.key, k.positions(), k.journal(), k.rejections(), k.state(),
      k.pinned()];
    const index = new Map<string, number>();
    const args: ScriptArg[] = [lock.token, 'free', (chunk.at(-1) as [string, string[]])[0]
      .slice(2), '0', String(chunk.length)];
    for (const [sid, fields] of chunk) {
      const id = fields[1] as string;
      const bucket = k.transferBucket(id);
      const i = index.get(bucket) ?? keys.push(bucket);
      index.set(bucket, i);
      args.push(isHold(fields) ? 'h' : 'j', sid.slice(2), String(i), id, compactArg(id));
    }
    return async () => {
      const reply = await runScript(redis, ledger.scripts.get('archive') as Script, keys, args);
      must(Array.isArray(reply) && reply[1] === 1 && reply[2] === full - open
        && reply[3] === open, `${full - open} records freed, ${open} open hold(s) pinned`);
    };
  };
  // Read before they are freed, as the archive would hand them back.
  const given = (id: string): [string, string] => {
    const found = records.find(([, fields]) => fields[1] === id) as [string, string[]];
    return [found[0].slice(2), JSON.stringify(found[1])];
  };
  const [hold, post] = [longIds[0] as string, longIds[full - posts] as string];
  const direct = directOn(al, redis);
  const metadata = canonicalMetadata(maxMetadata('g'));
  const own = (tag: string) => longId(`${tag}-${n}-`);
  const one = { atomic: false, calls: 1, items: 0 };
  /** A hash chain's head as the archiver saves it (64 hex digits). */
  const head = 'f'.repeat(64);
  return [
    { ...one, script: 'lock', label: "the archiver's, taken while free", run: async () =>
      must(await lock.take(), 'archive lock') },
    { ...one, script: 'archive', mode: 'save', label: 'both positions moved', run: async () =>
      must(await al.archiveSave(lock, seqOf(2 * full - 1), String(full), head, head),
        'positions saved') },
    { ...one, script: 'archive', mode: 'free', items: full,
      label: 'a full chunk of UUID ids (JOURNAL_READ_CHUNK_MAX), holds and posts',
      run: free(records.slice(0, full)) },
    { ...one, script: 'archive', mode: 'free', items: full,
      label: 'a full chunk of the longest ids (JOURNAL_READ_CHUNK_MAX), holds and posts',
      run: free(records.slice(full)) },
    { ...one, script: 'settle', label: 'an archived hold given (posted): rejected, recorded',
      run: () => direct('settle', [k.meta(), k.transferBucket(own('apost')),
        k.transferBucket(hold), k.account(from), k.account(to), k.journal(), k.rejections(),
        k.accountIds(), k.state(), k.expiries(), k.holdStats()], ['post', own('apost'), hold,
        AMOUNT_MAX_STRING, metadata, String(Date.now()), BY, from, to,
        compactArg(own('apost')), compactArg(hold), ...given(hold)],
      statusCode.PENDING_TRANSFER_ALREADY_POSTED, 'post of an archived hold') },
    { ...one, script: 'reverse', label: 'an archived post given: reversed, largest metadata',
      run: () => direct('reverse', [k.meta(), k.transferBucket(own('arev')),
        k.transferBucket(post), k.account(to), k.account(from), k.journal(), k.rejections(),
        k.accountIds(), k.state()], [own('arev'), post, BATCH_AMOUNT, metadata,
        String(Date.now()), BY, to, from, compactArg(own('arev')), compactArg(post),
        ...given(post)], statusCode.OK, 'reversal of an archived post') },
  ];
}

/** Round `n` as letters (a follower's name is a-z): 0 → a, 25 → z, 26 → ba. */
function letters(n: number): string {
  let out = '';
  let rest = n;
  do {
    out = String.fromCharCode(97 + (rest % 26)) + out;
    rest = Math.floor(rest / 26);
  } while (rest > 0);
  return out;
}

/**
 * The journal's readers: the feed's read and a follower's page, each a full chunk of
 * JOURNAL_READ_CHUNK_MAX records (the seeded ledger holds more), and a follower's save. Each
 * round's follower has a name of its own, so its page starts at the first record.
 */
function followCases(ledger: Ledger, n: number, redis: Redis): WorstCase[] {
  const k = ledgerKeys(LONGEST_KEY_PREFIX, LONGEST_LEDGER_NAME);
  const name = `worst${letters(n)}`;
  const lock = new RedisLock(redis, ledger.scripts.get('lock') as Script, k.lock(name),
    limits.CDC_LOCK_TTL_MS);
  const full = limits.JOURNAL_READ_CHUNK_MAX;
  let last = '';
  const one = { atomic: false, calls: 1, items: full };
  return [
    { ...one, script: 'read-journal', label: 'a full chunk (JOURNAL_READ_CHUNK_MAX)',
      run: async () => must((await ledger.readJournal('0', full)).records.length === full,
        'a full chunk read') },
    { ...one, items: 0, script: 'lock', label: "a follower's, taken while free",
      run: async () => must(await lock.take(), 'follower lock') },
    { ...one, script: 'follow', label: 'a full page (JOURNAL_READ_CHUNK_MAX)', run: async () => {
      const page = await ledger.follow(lock, name, full);
      must(page?.records.length === full, 'a full page');
      last = page?.records.at(-1)?.seq ?? '';
    } },
    { ...one, items: 0, script: 'follow', label: 'its position saved', run: async () =>
      must(await ledger.saveFollowPosition(lock, name, last), 'position saved') },
  ];
}

/**
 * One round: each worst case once, in an order that makes it happen (a replay after its
 * commit). Round `n` uses ids of its own; the accounts are seedWorstCases'. `redis`, a
 * connection to the ledger's Redis, adds the cases of scripts called directly (above).
 */
export async function worstRound(ledger: Ledger, n: number,
  redis?: Redis): Promise<WorstCase[]> {
  const from = longId(`from-${n}-`);
  const to = longId(`to-${n}-`);
  const account = { id: from, currency: CURRENCY, overdraftLimit: AMOUNT_MAX_STRING,
    metadata: maxMetadata('a'), createdBy: BY };
  // The credit account is set up here, not measured: its creation is the case below.
  must((await ledger.createAccount({ ...account, id: to })).kind === 'created', 'to created');
  const one = { atomic: false, calls: 1, items: 0 };
  const [count, bytes, atomic] = [countChunk(`c${n}`), bytesChunk(`b${n}`), atomicBatch(`a${n}`)];
  const pageCalls = Math.ceil(limits.ENTRIES_PAGE_LIMIT_MAX / limits.ENTRIES_READ_CHUNK_MAX);
  const newLedger = ledger.sibling(`l${n}-${randomUUID()}`.padEnd(limits.LEDGER_NAME_LENGTH_MAX,
    'x').slice(0, limits.LEDGER_NAME_LENGTH_MAX));
  return [
    { ...one, script: 'create-account', label: 'new, largest metadata', run: async () =>
      must((await ledger.createAccount(account)).kind === 'created', 'account created') },
    { ...one, script: 'create-account', label: 'exists: the stored account back',
      run: async () =>
        must((await ledger.createAccount(account)).kind === 'replayed', 'account replayed') },
    ...transferCases(ledger, n, from, to),
    // A ledger of the longest name, largest metadata: created, then the create replayed.
    { ...one, script: 'create-ledger', label: 'new, longest name, largest metadata',
      run: async () => must((await newLedger.createRecord(maxMetadata('l'))).kind === 'created',
        'ledger created') },
    { ...one, script: 'create-ledger', label: 'exists: the stored record back',
      run: async () => must((await newLedger.createRecord(maxMetadata('l'))).kind
        === 'replayed', 'ledger replayed') },
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
    ...await holdCases(ledger, n, redis),
    ...redis === undefined ? [] : await archiveCases(ledger, n, redis),
  ];
}
