/**
 * How long each script holds Redis at its worst (bench/lib/worst-case.ts), against its budget:
 * BATCH_CHUNK_BUDGET_MS for a non-atomic batch's chunk, SCRIPT_TIME_BUDGET_MS for every other
 * script (an atomic batch too: BATCH_ATOMIC_TRANSFERS_MAX is set so that it fits). Durations
 * are Redis's own (SLOWLOG with every command logged): execution only, no network. The first
 * rounds start with SCRIPT FLUSH, so the first call of each script there is an EVAL that
 * compiles it. Reported, never enforced: on a shared machine Redis can be descheduled
 * mid-script; test/ops/script-budget.test.ts bounds what a call does (commands, keys, bytes),
 * deterministically.
 */
import type { Redis } from 'ioredis';
import { limits } from '../../src/config/limits.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { percentile } from './stats.js';
import { LONGEST_KEY_PREFIX, LONGEST_LEDGER_NAME, scriptOf, seedWorstCases, type WorstCase,
  worstRound } from './worst-case.js';

/** Room for the largest case: an atomic batch logs ~7 commands per transfer. */
const SLOWLOG_MAX_LEN = 100_000;

export interface ScriptDuration {
  script: string;
  case: string;
  /** `eval`: the first call after SCRIPT FLUSH, which compiles the source. */
  command: 'evalsha' | 'eval';
  calls: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  budgetMs: number;
}

export interface ScriptDurations {
  rounds: number;
  coldRounds: number;
  rows: ScriptDuration[];
}

type SlowlogEntry = [number, number, number, string[]];

function budgetMs(c: WorstCase): number {
  return c.script === 'transfer-batch' && !c.atomic ? limits.BATCH_CHUNK_BUDGET_MS
    : limits.SCRIPT_TIME_BUDGET_MS;
}

/** The script calls' durations (µs) of one case, from a slow log reset just before it. */
async function timed(admin: Redis, c: WorstCase, command: string): Promise<number[]> {
  await admin.slowlog('RESET');
  await c.run();
  const log = (await admin.slowlog('GET', -1)) as SlowlogEntry[];
  if (log.length >= SLOWLOG_MAX_LEN) throw new Error('the slow log overflowed');
  return log.filter((e) => String(e[3][0]).toLowerCase() === command).map((e) => e[2]);
}

/**
 * Runs `rounds` rounds of every worst case on `redis` (a Redis of the bench's own, with nothing
 * else running on it), through a Ledger of its own; `admin` is a separate connection.
 */
export async function scriptDurations(redis: Redis, admin: Redis, rounds: number,
  coldRounds: number): Promise<ScriptDurations> {
  await admin.config('SET', 'slowlog-log-slower-than', '0');
  await admin.config('SET', 'slowlog-max-len', String(SLOWLOG_MAX_LEN));
  const ledger = new Ledger({ redis, keys: ledgerKeys(LONGEST_KEY_PREFIX, LONGEST_LEDGER_NAME) });
  await seedWorstCases(ledger);
  const samples = new Map<string, { row: Omit<ScriptDuration, 'calls' | 'p50Ms' | 'p95Ms'
    | 'maxMs'>; micros: number[] }>();
  for (let n = 0; n < rounds; n++) {
    const cold = n < coldRounds;
    // With the ledger's connection: the scripts it calls after reads of its own are driven
    // directly, with the keys and arguments it would pass (posts, voids, reversals, sweeps).
    const cases = await worstRound(ledger, n, redis);
    // Cold rounds keep the compiling EVALs only; warm ones the EVALSHAs (a cold round's
    // EVALSHAs include those answered NOSCRIPT, which ran nothing).
    if (cold) await admin.script('FLUSH');
    const command = cold ? 'eval' : 'evalsha';
    for (const c of cases) {
      const key = `${scriptOf(c)}: ${c.label} (${command})`;
      const entry = samples.get(key) ?? { row: { script: scriptOf(c), case: c.label,
        command, budgetMs: budgetMs(c) }, micros: [] };
      entry.micros.push(...await timed(admin, c, command));
      samples.set(key, entry);
    }
  }
  const rows = [...samples.values()].filter((s) => s.micros.length > 0).map(({ row, micros }) => {
    const sorted = Float64Array.from(micros).sort();
    return { ...row, calls: micros.length, p50Ms: percentile(sorted, 50) / 1000,
      p95Ms: percentile(sorted, 95) / 1000, maxMs: (sorted[sorted.length - 1] as number) / 1000 };
  });
  return { rounds, coldRounds, rows };
}

/** `calls × ms, p50 / p95 / max` lines, as printed while the bench runs. */
export function formatScriptDurations(d: ScriptDurations): string {
  return d.rows.map((r) => `  ${r.script}, ${r.case} (${r.command}): ${r.calls} calls, p50 ` +
    `${r.p50Ms.toFixed(3)} ms, p95 ${r.p95Ms.toFixed(3)} ms, max ${r.maxMs.toFixed(3)} ms ` +
    `(budget ${r.budgetMs} ms)`).join('\n');
}
