/**
 * RAM and AOF per open, posted and voided hold against per transfer: each kind on a fresh
 * Redis with the same accounts and the same count, as the bench's storage runs measure a
 * transfer (used_memory and aof_current_size before and after). The count matters: a
 * transfer id's bucket key (src/ledger/keys.ts) is created by its first id, so RAM per stored
 * item falls as buckets fill; compared at one count, that cost is alike on both sides.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { limits } from '../../src/config/limits.js';
import type { Ledger, TransferInput } from '../../src/ledger/ledger.js';
import { batchCommitted, BY, committed, createAccounts, type HoldsSettings, inFlight,
  movement, withRedis } from './holds-setup.js';
import { type RedisSnapshot, snapshot, waitForRewrite } from './redis-stats.js';
import { ratio } from './stats.js';

export interface HoldStorageFigures {
  stored: number;
  usedMemoryDeltaBytes: number;
  ramBytesPer: number | null;
  /** null when an AOF rewrite ran meanwhile (the file's size then says nothing). */
  aofBytesPer: number | null;
}

export const HOLD_STORAGE_KINDS = ['transfer', 'openHold', 'openHoldNoTimeout', 'postedHold',
  'voidedHold'] as const;
export type HoldStorageKind = (typeof HOLD_STORAGE_KINDS)[number];

export const HOLD_STORAGE_LABELS: Record<HoldStorageKind, string> = {
  transfer: 'transfer',
  openHold: 'open hold (with a timeout)',
  openHoldNoTimeout: 'open hold, no timeout',
  postedHold: 'posted hold: the hold and its post',
  voidedHold: 'voided hold: the hold and its void',
};

/** A posted or voided hold counts its post or void too: what the pair leaves behind. */
export type HoldStorage = Record<HoldStorageKind, HoldStorageFigures> & {
  accounts: number;
  openHoldOverTransfer: number | null;
};

/** Once writes have settled: no rewrite under way, client buffers drained. */
async function settled(stats: Redis): Promise<RedisSnapshot> {
  await waitForRewrite(stats);
  await sleep(200);
  return snapshot(stats);
}

function figures(before: RedisSnapshot, after: RedisSnapshot, n: number): HoldStorageFigures {
  const rewrite = before.aofRewriting || after.aofRewriting
    || after.aofRewrites !== before.aofRewrites;
  const delta = after.usedMemory - before.usedMemory;
  return { stored: n, usedMemoryDeltaBytes: delta, ramBytesPer: n > 0 ? delta / n : null,
    aofBytesPer: n > 0 && !rewrite ? (after.aofCurrentSize - before.aofCurrentSize) / n : null };
}

/** `n` transfers or holds in batches (chunked scripts), as the storage's large run stores. */
async function store(ledger: Ledger, pool: readonly string[], n: number,
  hold: 'timeout' | 'none' | false): Promise<TransferInput[]> {
  const all = Array.from({ length: n }, (_, i) => movement(pool, i, hold));
  const size = limits.BATCH_TRANSFERS_MAX;
  await inFlight(Math.ceil(n / size), (b) =>
    batchCommitted(ledger, all.slice(b * size, (b + 1) * size), 'a stored transfer or hold'));
  return all;
}

type Run = Partial<Record<HoldStorageKind, HoldStorageFigures>>;

/** One fresh Redis: `n` of one kind stored, then (for holds) each posted or voided. */
function run(s: HoldStorageSettings, hold: 'timeout' | 'none' | false,
  settle?: 'post' | 'void'): Promise<Run> {
  const name = hold === false ? 'transfer' : settle ?? `hold-${hold}`;
  return withRedis(s, `ram-${name}`, undefined, async (ledger, stats) => {
    const pool = await createAccounts(ledger, s.accounts);
    const before = await settled(stats);
    const items = await store(ledger, pool, s.stored, hold);
    const open = figures(before, await settled(stats), s.stored);
    if (hold === false) return { transfer: open };
    if (settle === undefined) return { [hold === 'none' ? 'openHoldNoTimeout' : 'openHold']: open };
    await inFlight(items.length, async (i) => committed(await ledger.settle(settle, {
      id: randomUUID(), holdId: (items[i] as TransferInput).id, metadata: {}, createdBy: BY }),
    `a ${settle}`));
    const done = figures(before, await settled(stats), s.stored);
    return settle === 'post' ? { openHold: open, postedHold: done } : { voidedHold: done };
  });
}

type HoldStorageSettings = Pick<HoldsSettings, 'accounts' | 'stored' | 'startRedis' | 'dir'>;

export async function storageRuns(s: HoldStorageSettings): Promise<HoldStorage> {
  const runs: Run = {
    ...await run(s, false), ...await run(s, 'timeout', 'post'), ...await run(s, 'timeout', 'void'),
    ...await run(s, 'none'),
  };
  const out = {} as Record<HoldStorageKind, HoldStorageFigures>;
  for (const kind of HOLD_STORAGE_KINDS) {
    const f = runs[kind];
    if (f === undefined) throw new Error(`holds bench: no ${kind} run`);
    out[kind] = f;
    console.error(`  ${HOLD_STORAGE_LABELS[kind]}: ${f.ramBytesPer?.toFixed(0) ?? '—'} B RAM, ` +
      `${f.aofBytesPer?.toFixed(0) ?? '—'} B AOF each (${f.stored.toLocaleString('en-US')})`);
  }
  return { ...out, accounts: s.accounts,
    openHoldOverTransfer: ratio(out.openHold.ramBytesPer, out.transfer.ramBytesPer) };
}
