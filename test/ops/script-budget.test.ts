/**
 * The script budget as deterministic bounds. Every script of ours, driven through the ledger at
 * its worst (bench/lib/worst-case.ts: the longest ids, amounts of 2^128-1, the largest
 * metadata, replays that return whole records, a full entries page, batch chunks full by count
 * and by bytes, the largest atomic batch between distinct accounts, a sweep of
 * HOLDS_EXPIRE_BATCH_MAX holds, a balance walked back a full page of entries, the archiver's
 * full chunks freed, a post and a reversal given their archived target's record; a
 * post, void, reversal, sweep, walk or free called as the ledger calls it after its own reads),
 * stays within what one call may do, counted by Redis itself on a Redis of this file's own
 * with nothing else connected:
 * - commands the script runs: INFO commandstats (Redis counts the commands scripts call);
 * - bytes of the call's arguments and of its reply: INFO stats total_net_input_bytes and
 *   total_net_output_bytes;
 * - keys: the KEYS it is passed, and that it touches no other (MONITOR shows every command,
 *   a script's own too, with all its arguments; it adds to the bytes Redis sends, so it watches
 *   a second round of the same cases).
 * A bound is linear in the call's items (transfers, entries or records), named from the limits.
 * These are what a script's time grows with; the time itself, against SCRIPT_TIME_BUDGET_MS,
 * BATCH_CHUNK_BUDGET_MS and ATOMIC_BATCH_BUDGET_MS, is measured by `npm run bench` and not
 * asserted here: a shared machine can deschedule Redis mid-script, which says nothing of it.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { compactId } from '../../src/ledger/keys.js';
import { KEY_NAME_PART_LENGTH_MAX, LONGEST_KEY_PREFIX, LONGEST_LEDGER_NAME, scriptOf,
  seedWorstCases, type WorstCase, worstRound } from '../../bench/lib/worst-case.js';
import { admin, info, type OpsApp, opsApp, startRedis, type TestRedis } from './helpers.js';

/** RESP framing of one value, `$<length>\r\n…\r\n` for lengths below 10^7, or of a list. */
const FRAME_BYTES = 12;
/** Decimal integers the scripts take or return: seqs, times, counts, indexes (< 2^64). */
const INTEGER_DIGITS_MAX = 20;
/** src/ledger/keys.ts: `<prefix>:{<ledger>}:a:<id>`. */
const KEY_BYTES_MAX = 2 * KEY_NAME_PART_LENGTH_MAX + 6 + limits.ID_LENGTH_MAX;
/**
 * A stored record (an account, a journal or a rejection entry: src/ledger/records.ts) as a flat
 * list of names and values: its metadata and at most 15 other fields, named in at most 4
 * letters; of their values at most 4 are ids (a rejected post names its accounts and its hold)
 * and one createdBy, the rest no longer than a signed amount.
 */
const RECORD_FIELDS_MAX = 15;
const RECORD_IDS_MAX = 4;
const FIELD_NAME_BYTES_MAX = 4;

const ID = limits.ID_LENGTH_MAX;
const INT = INTEGER_DIGITS_MAX;
const AMOUNT = limits.AMOUNT_DIGITS_MAX;
const SIGNED = AMOUNT + 1;
const METADATA = limits.METADATA_JSON_BYTES_MAX;
const CURRENCY = limits.CURRENCY_LENGTH_MAX;
const KEY_NAME = limits.KEY_NAME_LENGTH_MAX;
/** A hold's timeout in seconds, as transfer-9.lua takes it. */
const TIMEOUT = String(limits.HOLD_TIMEOUT_SECONDS_MAX).length;
/** A lock holder's token (src/redis/lock.ts: 128 bits in hex). */
const TOKEN = 32;
/** A UUID id's compact form (src/ledger/keys.ts compactId), which scripts take beside it. */
const COMPACT = (compactId(randomUUID()) as string).length;
/** A reference to a record: a seq, or `-<n>` for a rejection. */
const REF = INT + 1;
/** The longest of read-entries' and read-balance's words: 'archive' (the rest is there). */
const ARCHIVE_WORD = 'archive'.length;
/** A hash chain's head (lua/archive-7.lua: 64 hex digits). */
const CHAIN_HEAD = 64;

/** Bytes of framed values of these lengths. */
const values = (...lengths: number[]) => lengths.reduce((sum, n) => sum + n + FRAME_BYTES, 0);
const RECORD_BYTES_MAX = FRAME_BYTES + (RECORD_FIELDS_MAX + 1) * values(FIELD_NAME_BYTES_MAX)
  + values(METADATA, limits.KEY_NAME_LENGTH_MAX) + RECORD_IDS_MAX * values(ID)
  + (RECORD_FIELDS_MAX - RECORD_IDS_MAX - 1) * values(SIGNED);
/** Bytes of JSON strings of these lengths in a list: two quotes and a comma each. */
const jsonStrings = (...lengths: number[]) => lengths.reduce((sum, n) => sum + n + 3, 0);
/**
 * A stored record as the ledger passes an archived target back (src/ledger/ledger.ts
 * givenArgs: JSON of its field/value list), in brackets: the fields of RECORD_BYTES_MAX, each a
 * JSON string. Only the metadata can hold a quote or a backslash (ids, key names, currencies
 * and numbers are letters, digits and `_.-`), and JSON escapes each with one more byte: the
 * metadata takes at most twice its bytes.
 */
const RECORD_JSON_BYTES_MAX = 2 + (RECORD_FIELDS_MAX + 1) * jsonStrings(FIELD_NAME_BYTES_MAX)
  + jsonStrings(2 * METADATA, limits.KEY_NAME_LENGTH_MAX) + RECORD_IDS_MAX * jsonStrings(ID)
  + (RECORD_FIELDS_MAX - RECORD_IDS_MAX - 1) * jsonStrings(SIGNED);
/** EVALSHA <sha1> <numkeys> with `keys` keys, then the arguments of these lengths. */
const evalsha = (keys: number, ...args: number[]) =>
  FRAME_BYTES + values('evalsha'.length, 40, INT) + keys * values(KEY_BYTES_MAX) + values(...args);

/** perCall × calls + perItem × items. */
interface Linear { perCall: number; perItem?: number }
interface Bounds {
  commands: Linear;
  keys: Linear;
  requestBytes: Linear;
  replyBytes: Linear;
}

/** A batch call: its fields (ids, amount, currency, metadata) are at most `fieldsMax` bytes. */
function batchBounds(fieldsMax: number): Bounds {
  return {
    // The format check, 2 stream checks, the expiry index's type, the format set; per
    // transfer: its id, both accounts read, its record, its id written, both accounts written,
    // and for a hold its expiry and its currency's counters read and written.
    commands: { perItem: 10, perCall: 5 },
    keys: { perItem: 3, perCall: 6 },
    requestBytes: { perCall: evalsha(6, ID, 1, INT, KEY_NAME, INT) + fieldsMax,
      // The fields' framing (their bytes are in fieldsMax), a hold's timeout and expiry, 3
      // KEYS indexes, the compact id, 3 keys.
      perItem: values(0, 0, 0, 0, 0, 0, TIMEOUT, INT, INT, INT, INT, COMPACT)
        + 3 * values(KEY_BYTES_MAX) },
    // A replay returns the whole stored record of each transfer.
    replyBytes: { perCall: 2 * FRAME_BYTES + values(INT, ID),
      perItem: FRAME_BYTES + values(INT, INT, ID, ID) + RECORD_BYTES_MAX },
  };
}

/** What a post, void or reversal's call takes and answers (its record back on a replay). */
const targeted = (keys: number): Pick<Bounds, 'keys' | 'requestBytes' | 'replyBytes'> => ({
  keys: { perCall: keys },
  // (A post or void's mode first, then:) its id, its target's, the amount asked, metadata,
  // now, createdBy, the ids of its accounts, both ids' compact forms, and an archived target's
  // reference and record.
  requestBytes: { perCall: evalsha(keys, 4, ID, ID, AMOUNT, METADATA, INT, KEY_NAME, ID, ID,
    COMPACT, COMPACT, REF, RECORD_JSON_BYTES_MAX) },
  replyBytes: { perCall: FRAME_BYTES + values(INT, ID, INT, ID, ID) + RECORD_BYTES_MAX },
});

const BOUNDS: Record<string, Bounds> = {
  'create-account': {
    // The ledger, the account, its number taken? Then the account, the ledger, the number.
    commands: { perCall: 6 },
    keys: { perCall: 3 },
    requestBytes: { perCall: evalsha(3, ID, CURRENCY, AMOUNT, METADATA, INT, KEY_NAME) },
    replyBytes: { perCall: FRAME_BYTES + values(INT, ID) + RECORD_BYTES_MAX },
  },
  transfer: {
    // 4 reads, then 4 writes on commit (lua/transfer-9.lua's header; the id's read is one
    // HMGET with its compact form); a hold reads and writes its currency's counters, checks and
    // adds to the expiry index; the format mark on the first write after an upgrade.
    commands: { perCall: 13 },
    keys: { perCall: 9 },
    requestBytes: { perCall: evalsha(9, ID, ID, ID, AMOUNT, CURRENCY, METADATA, INT, KEY_NAME,
      TIMEOUT, INT, COMPACT) },
    replyBytes: { perCall: FRAME_BYTES + values(INT, ID, INT, ID, ID) + RECORD_BYTES_MAX },
  },
  'read-hash': {
    commands: { perCall: 1 },
    keys: { perCall: 1 },
    requestBytes: { perCall: evalsha(1, ID) },
    replyBytes: { perCall: 2 * FRAME_BYTES + values(ID) + RECORD_BYTES_MAX },
  },
  'read-transfer': {
    // The id (with its compact form, one HMGET), its record, the accounts' ids, its state.
    commands: { perCall: 4 },
    keys: { perCall: 5 },
    requestBytes: { perCall: evalsha(5, ID, COMPACT) },
    // The state: a hold's 'p<amount>' at most.
    replyBytes: { perCall: FRAME_BYTES + values(ID, INT, ID, ID, SIGNED) + RECORD_BYTES_MAX },
  },
  'read-entries': {
    // The account, one journal lookup per entry, the counterparties' ids; where the chain
    // meets a freed record (archived), its lookup and the freed seq, then it returns.
    commands: { perItem: 1, perCall: 4 },
    keys: { perCall: 4 },
    requestBytes: { perCall: evalsha(4, ID, INT, INT) },
    // tag, exists, cursorOk, next, and 'archive' when the rest is there.
    replyBytes: { perCall: 3 * FRAME_BYTES + values(ID, INT, INT, INT, ARCHIVE_WORD),
      // seq, transfer id, amount, balance, createdAt, kind; the counterparty's id.
      perItem: values(INT, ID, SIGNED, SIGNED, INT, 1, ID) },
  },
  'read-balance': {
    // The account, one journal lookup per entry taken off; where the chain meets a freed
    // record (archived), its lookup and the freed seq, then it returns.
    commands: { perItem: 1, perCall: 3 },
    keys: { perCall: 3 },
    // The seq stood at, the count, a cursor and the totals so far.
    requestBytes: { perCall: evalsha(3, ID, INT, INT, INT, AMOUNT, AMOUNT) },
    // tag, exists, state, debits, credits, cursor.
    replyBytes: { perCall: FRAME_BYTES + values(ID, INT, ARCHIVE_WORD, AMOUNT, AMOUNT, INT) },
  },
  'transfer-batch chunk': batchBounds(limits.BATCH_CHUNK_BYTES_MAX),
  'transfer-batch atomic': batchBounds(limits.BATCH_BODY_BYTES_MAX),
  settle: {
    // Reads: the format, both ids, the hold's record, its accounts' ids, its state, both
    // accounts, the counters, the expiry index's type. Writes: the post, void or rejection,
    // the hold's state, its expiry, the counters, both accounts, the id, the format mark.
    commands: { perCall: 18 },
    ...targeted(11),
  },
  reverse: {
    // Reads: the format, both ids, the original, its accounts' ids, the total reversed, both
    // accounts. Writes: the reversal, both accounts, the total, the id, the format mark.
    commands: { perCall: 14 },
    ...targeted(9),
  },
  'create-ledger': {
    // The record read (one HMGET); a new ledger's record written (one HSET).
    commands: { perCall: 2 },
    keys: { perCall: 1 },
    requestBytes: { perCall: evalsha(1, limits.LEDGER_NAME_LENGTH_MAX, METADATA, INT) },
    replyBytes: { perCall: FRAME_BYTES + values(INT, limits.LEDGER_NAME_LENGTH_MAX, METADATA,
      INT) },
  },
  'close-account': {
    // The format, the account, closed before? Then the account, the format mark.
    commands: { perCall: 5 },
    keys: { perCall: 2 },
    requestBytes: { perCall: evalsha(2, ID, INT) },
    replyBytes: { perCall: FRAME_BYTES + values(INT, ID) + RECORD_BYTES_MAX },
  },
  'expire-holds': {
    // The format, then the states, the index and the format mark written once; per hold: its
    // place in the index, its state, its record, both accounts read and written, its
    // currency's counters read and written (once per currency).
    commands: { perItem: 9, perCall: 4 },
    keys: { perItem: 2, perCall: 6 },
    requestBytes: { perCall: evalsha(6, INT, INT, INT),
      perItem: values(INT, INT, INT) + 2 * values(KEY_BYTES_MAX) },
    // Per hold released: its seq, expiry, amount and currency.
    replyBytes: { perCall: 2 * FRAME_BYTES + values(INT, INT, INT),
      perItem: FRAME_BYTES + values(INT, INT, AMOUNT, CURRENCY) },
  },
  'read-journal': {
    // The page (XRANGE), its accounts' ids (HMGET), the newest seq (XREVRANGE).
    commands: { perCall: 3 },
    keys: { perCall: 2 },
    // The tag is `journal:<seq>`.
    requestBytes: { perCall: evalsha(2, 8 + INT, INT, INT) },
    // Per record: its stream id, its fields, its accounts' ids.
    replyBytes: { perCall: 3 * FRAME_BYTES + values(8 + INT, INT),
      perItem: 2 * FRAME_BYTES + values(INT, ID, ID) + RECORD_BYTES_MAX },
  },
  follow: {
    // The format, the lock's holder, the position; then a page (as read-journal) or, to
    // save, the newest seq and the position written.
    commands: { perCall: 6 },
    keys: { perCall: 5 },
    requestBytes: { perCall: evalsha(5, TOKEN, 16, 'read'.length, INT, INT) },
    replyBytes: { perCall: 3 * FRAME_BYTES + values(TOKEN, INT, INT, INT),
      perItem: 2 * FRAME_BYTES + values(INT, ID, ID) + RECORD_BYTES_MAX },
  },
  // lua/archive-7.lua, a mode each. Every mode: the format, the lock's holder, the positions.
  'archive save': {
    // Then each stream's newest and its position written, for a position that moves.
    commands: { perCall: 7 },
    keys: { perCall: 7 },
    requestBytes: { perCall: evalsha(7, TOKEN, 'save'.length, INT, INT, CHAIN_HEAD,
      CHAIN_HEAD) },
    replyBytes: { perCall: FRAME_BYTES + values(TOKEN, INT) },
  },
  'archive free': {
    // Then the freed positions, every follower's position, the pinned set; per record: a
    // pinned hold's own entry, its id's index entry, a hold's state, then (freed) the id
    // deleted and its archived form written, or (an open hold) pinned; once: each stream's
    // entries trimmed or deleted, the freed unpinned, both freed positions written.
    commands: { perItem: 5, perCall: 11 },
    // And the id's bucket per record.
    keys: { perItem: 1, perCall: 7 },
    requestBytes: { perCall: evalsha(7, TOKEN, 'free'.length, INT, INT, INT),
      // The stream, the seq or number, the bucket's KEYS index, the id and its compact form;
      // the bucket.
      perItem: values(1, INT, INT, ID, COMPACT) + values(KEY_BYTES_MAX) },
    // Records freed, holds pinned.
    replyBytes: { perCall: FRAME_BYTES + values(TOKEN, INT, INT, INT) },
  },
  lock: {
    // The holder, then the lock set, renewed or deleted.
    commands: { perCall: 2 },
    keys: { perCall: 1 },
    requestBytes: { perCall: evalsha(1, TOKEN, 'release'.length, INT) },
    replyBytes: { perCall: FRAME_BYTES + values(TOKEN, INT) },
  },
};

const at = (l: Linear, calls: number, items: number) =>
  l.perCall * calls + (l.perItem ?? 0) * items;

/** What one case made Redis do; bytes are not measured while MONITOR watches, keys only then. */
interface Measured {
  calls: number;
  commands: number;
  requestBytes?: number;
  replyBytes?: number;
  keysPassed?: number;
  keysTouched?: number;
  /** Keys a script touched that it was not passed. */
  strays?: string[];
}

/** Commands of ours or of the measurement itself, not of a script. */
const NOT_SCRIPT = new Set(['evalsha', 'eval', 'config|resetstat', 'info', 'monitor', 'echo']);

let redis: TestRedis;
let o: OpsApp;
let a: Redis;

beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'everysec' });
  // The longest key names; this Redis is the file's own, so they need not be unique.
  o = await opsApp(redis.url, { metrics: false, keyPrefix: LONGEST_KEY_PREFIX,
    ledgerName: LONGEST_LEDGER_NAME });
  a = await admin(redis.url);
  await seedWorstCases(o.ledger);
}, 120_000);
afterAll(async () => {
  a?.disconnect();
  await o?.close();
  await redis?.dispose();
});

/** Script calls and the commands they ran, from INFO commandstats since the reset. */
async function commandCounts(): Promise<{ calls: number; commands: number }> {
  const stats = await info(a, 'commandstats');
  const calls = (name: string) =>
    Number(/\bcalls=(\d+)/.exec(stats.get(`cmdstat_${name}`) ?? '')?.[1] ?? 0);
  const names = [...stats.keys()].map((k) => k.slice('cmdstat_'.length));
  return { calls: calls('evalsha') + calls('eval'),
    commands: names.filter((c) => !NOT_SCRIPT.has(c)).reduce((n, c) => n + calls(c), 0) };
}

/**
 * Commands and bytes: statistics reset just before `run`, read just after. The bytes include
 * the reset's reply and the first INFO's request, the same each time: `zero` measures them.
 */
async function counted(run: () => Promise<void>, zero?: Measured): Promise<Measured> {
  await a.config('RESETSTAT');
  await run();
  const stats = await info(a, 'stats'); // before its own reply is counted
  return { ...await commandCounts(),
    requestBytes: Number(stats.get('total_net_input_bytes')) - (zero?.requestBytes ?? 0),
    replyBytes: Number(stats.get('total_net_output_bytes')) - (zero?.replyBytes ?? 0) };
}

/** Commands and keys: every command Redis ran meanwhile, with its arguments (MONITOR). */
async function watched(run: () => Promise<void>): Promise<Measured> {
  await a.config('RESETSTAT');
  const monitor = await a.monitor();
  const seen: Array<{ args: string[]; lua: boolean }> = [];
  const sentinel = `end of case ${randomUUID()}`;
  let end = () => {};
  const ended = new Promise<void>((ok) => { end = ok; });
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1] === sentinel) end();
    else seen.push({ args, lua: source === 'lua' });
  });
  try {
    await run();
    await a.echo(sentinel); // MONITOR shows commands in order: the case's are all in by then
    await ended;
  } finally {
    monitor.disconnect();
  }
  const counts = await commandCounts();
  const inScripts = seen.filter((c) => c.lua);
  // Two counts of one thing: MONITOR showed every command the statistics counted.
  expect(inScripts.length, 'commands seen vs counted').toBe(counts.commands);
  const evals = seen.filter((c) => ['evalsha', 'eval'].includes(String(c.args[0])
    .toLowerCase()));
  const passed = new Set(evals.flatMap((c) => c.args.slice(3, 3 + Number(c.args[2]))));
  const touched = new Set(inScripts.map((c) => String(c.args[1])));
  return { ...counts, keysPassed: evals.reduce((n, c) => n + Number(c.args[2]), 0),
    keysTouched: touched.size, strays: [...touched].filter((k) => !passed.has(k)) };
}

/** Where `m` exceeds the bounds of `c`, one line each. */
function violations(c: WorstCase, m: Measured): string[] {
  const b = BOUNDS[scriptOf(c)] as Bounds;
  const over = (what: string, value: number | undefined, bound: Linear) => {
    const limit = at(bound, m.calls, c.items);
    return value === undefined || value <= limit ? [] : [`${what} ${value} > ${limit}`];
  };
  const problems = [
    ...(m.calls === c.calls ? [] : [`${m.calls} script calls, expected ${c.calls}`]),
    ...over('commands', m.commands, b.commands),
    ...over('keys passed', m.keysPassed, b.keys),
    ...(m.strays ?? []).map((key) => `touched ${key}, not passed in KEYS`),
    ...over('request bytes', m.requestBytes, b.requestBytes),
    ...over('reply bytes', m.replyBytes, b.replyBytes),
  ];
  return problems.map((p) => `${scriptOf(c)}, ${c.label}: ${p}`);
}

const n = (value: number | undefined) => (value ?? Number.NaN).toLocaleString('en-US');

/** One case's figures against its bounds: `m` counted, `w` watched. */
function row(c: WorstCase, m: Measured, w: Measured): string {
  const b = BOUNDS[scriptOf(c)] as Bounds;
  const limit = (l: Linear) => n(at(l, m.calls, c.items));
  return `  ${scriptOf(c)}, ${c.label} (${m.calls} call(s), ${c.items} items): commands ` +
    `${m.commands} ≤ ${limit(b.commands)}; keys ${n(w.keysPassed)} passed ≤ ` +
    `${limit(b.keys)}, ${n(w.keysTouched)} touched; bytes in ${n(m.requestBytes)} ≤ ` +
    `${limit(b.requestBytes)}, out ${n(m.replyBytes)} ≤ ${limit(b.replyBytes)}`;
}

const show = (l: Linear) => `${l.perItem ? `${l.perItem} × items + ` : ''}${l.perCall}`;

test('every script stays within its bounds at its worst: commands, keys, bytes', async () => {
  const zero = await counted(async () => {});
  expect(zero.calls + zero.commands, 'nothing ran between the measurements').toBe(0);
  // Round 0 counts commands and bytes; round 1, the same cases with ids of their own, keys.
  const [counting, watching] = [await worstRound(o.ledger, 0, o.redis),
    await worstRound(o.ledger, 1, o.redis)];
  expect(new Set(counting.map((c) => c.script)), 'a worst case for every script')
    .toEqual(new Set(o.ledger.scripts.keys()));
  const rows: string[] = [];
  const problems: string[] = [];
  for (const [i, c] of counting.entries()) {
    const m = await counted(c.run, zero);
    const w = await watched((watching[i] as WorstCase).run);
    problems.push(...violations(c, m), ...violations(c, w));
    rows.push(row(c, m, w));
  }
  console.info(`script bounds per call (commands; keys passed):\n${Object.entries(BOUNDS)
    .map(([name, b]) => `  ${name}: ≤ ${show(b.commands)}; ≤ ${show(b.keys)}`).join('\n')}` +
    `\nmeasured at the worst cases:\n${rows.join('\n')}`);
  expect(problems).toEqual([]);
}, 120_000);
