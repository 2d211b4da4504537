/**
 * Holds against the single transfer (issue 13's "Performance and memory"), each figure beside
 * a transfer measured the same way in the same run, on Redis instances of the bench's own:
 *   - Redis time of a hold and of its post against one transfer, from INFO commandstats as
 *     for (c), and the redis-server process's CPU (INFO cpu); interleaved rounds, medians.
 *   - One sweeper call (Ledger.expireHolds) releasing SWEEP_HOLDS expired holds: its script's
 *     time inside Redis (SLOWLOG; the call's reads apart), under a clock the bench moves.
 *   - RAM (used_memory) and AOF per open, posted and voided hold against per transfer
 *     (bench/lib/holds-storage.ts).
 * The operations go through the ledger core in this process, as the service makes them: the
 * HTTP layer adds nothing inside Redis. Group commit is off: holds would share a script call
 * with each other, and posts never do.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { limits } from '../../src/config/limits.js';
import type { TransferInput } from '../../src/ledger/ledger.js';
import { HOLD_TIMEOUT_S, type HoldsSettings, batchCommitted, BY, committed, createAccounts,
  inFlight, movement, withRedis } from './holds-setup.js';
import { type HoldStorage, storageRuns } from './holds-storage.js';
import { snapshot, waitForRewrite } from './redis-stats.js';
import type { ScriptDuration, ScriptDurations } from './script-durations.js';
import { median, percentile } from './stats.js';

/** The sweeper figure is for a call releasing this many expired holds. */
/** A full sweeper call (the goal names 100; a call releases at most this many). */
export const SWEEP_HOLDS = limits.HOLDS_EXPIRE_BATCH_MAX;

/** Redis's time per operation of one kind in one round. */
export interface OperationFigures {
  operations: number;
  /** Script calls per operation: a post reads its hold (a read script) before it settles. */
  scriptCallsPerOperation: number;
  /** Script commands' usec (commandstats) per operation, as (c)'s redisScriptUsPerTransfer. */
  redisScriptUs: number;
  /** The redis-server process's CPU (INFO cpu, user + sys) per operation: I/O and fsync too. */
  redisCpuUs: number;
}

/** `read`: the read of a hold a post makes first, alone: how the post's time splits. */
export const OPERATION_KINDS = ['transfer', 'hold', 'post', 'read'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

export interface HoldsCpuRound extends Record<OperationKind, OperationFigures> {
  round: number;
}

export interface SweepFigures {
  holds: number;
  /** Accounts passed to each call: none shared between holds. */
  accounts: number;
  calls: number;
  /** The expire-holds script call alone, inside Redis. */
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
  /** The call's reads before it (expiry index, journal records, account ids), together. */
  readsP50Ms: number;
}

export interface HoldsResult {
  appendfsync: string;
  /** Of the holds of the Redis-time and RAM runs. */
  holdTimeoutSeconds: number;
  cpu: {
    rounds: HoldsCpuRound[];
    median: Record<OperationKind, OperationFigures>;
    /** Median over rounds of (hold + post) ÷ transfer: script time (commandstats) … */
    holdPostOverTransfer: number | null;
    /** … and the redis-server process's CPU. */
    holdPostOverTransferCpu: number | null;
  };
  sweep: SweepFigures;
  /** expire-holds at its worst (HOLDS_EXPIRE_BATCH_MAX holds, longest ids): the scripts run. */
  sweepWorst: Pick<ScriptDuration, 'case' | 'calls' | 'p50Ms' | 'p95Ms' | 'maxMs'
    | 'budgetMs'> | null;
  storage: HoldStorage;
}

/** Redis's time for `count` operations, from counters reset just before. */
async function timed(stats: Redis, count: number,
  each: (i: number) => Promise<void>): Promise<OperationFigures> {
  await waitForRewrite(stats);
  await stats.config('RESETSTAT');
  const before = await snapshot(stats);
  await inFlight(count, each);
  const after = await snapshot(stats);
  return { operations: count,
    scriptCallsPerOperation: (after.scriptCalls - before.scriptCalls) / count,
    redisScriptUs: (after.scriptUsec - before.scriptUsec) / count,
    redisCpuUs: (after.cpuSeconds - before.cpuSeconds) * 1e6 / count };
}

function medianFigures(rounds: readonly HoldsCpuRound[], kind: OperationKind):
  OperationFigures {
  const of = (key: keyof OperationFigures) =>
    median(rounds.map((r) => r[kind][key])) ?? Number.NaN;
  return { operations: of('operations'), scriptCallsPerOperation: of('scriptCallsPerOperation'),
    redisScriptUs: of('redisScriptUs'), redisCpuUs: of('redisCpuUs') };
}

/** Each round: transfers, then holds, then a post of each of those holds, then a read of each. */
async function cpuRounds(s: HoldsSettings): Promise<HoldsResult['cpu']> {
  return withRedis(s, 'cpu', undefined, async (ledger, stats) => {
    const pool = await createAccounts(ledger, s.accounts);
    const rounds: HoldsCpuRound[] = [];
    const n = s.operations;
    for (let round = 1; round <= s.rounds; round++) {
      const transfer = await timed(stats, n, async (i) =>
        committed(await ledger.transfer(movement(pool, i, false)), 'a transfer'));
      const holds = Array.from({ length: n }, (_, i) => movement(pool, i, 'timeout'));
      const hold = await timed(stats, n, async (i) =>
        committed(await ledger.transfer(holds[i] as TransferInput), 'a hold'));
      const post = await timed(stats, n, async (i) => committed(await ledger.settle('post', {
        id: randomUUID(), holdId: (holds[i] as TransferInput).id, metadata: {}, createdBy: BY,
      }), 'a post'));
      const read = await timed(stats, n, async (i) => {
        const id = (holds[i] as TransferInput).id;
        if (await ledger.getTransfer(id) === undefined) throw new Error(`holds bench: ${id}?`);
      });
      rounds.push({ round, transfer, hold, post, read });
      console.error(`  round ${round}: Redis script time per transfer ` +
        `${transfer.redisScriptUs.toFixed(1)} µs, per hold ${hold.redisScriptUs.toFixed(1)} ` +
        `µs, per post ${post.redisScriptUs.toFixed(1)} µs (${post.scriptCallsPerOperation} ` +
        `script calls; the read of a hold alone ${read.redisScriptUs.toFixed(1)} µs)`);
    }
    const over = (key: 'redisScriptUs' | 'redisCpuUs') => median(rounds.map((r) =>
      (r.hold[key] + r.post[key]) / r.transfer[key]));
    return { rounds,
      median: { transfer: medianFigures(rounds, 'transfer'), hold: medianFigures(rounds, 'hold'),
        post: medianFigures(rounds, 'post'), read: medianFigures(rounds, 'read') },
      holdPostOverTransfer: over('redisScriptUs'), holdPostOverTransferCpu: over('redisCpuUs') };
  });
}

type SlowlogEntry = [number, number, number, string[]];
/** Room for a sweeper call's commands: its reads (one per hold, and two) and its script. */
const SLOWLOG_MAX_LEN = 10_000;

/**
 * Each call: SWEEP_HOLDS holds sharing no account, expired by moving the clock past them.
 * Durations are Redis's own (SLOWLOG, every command logged): commandstats would count the
 * script's own commands among the reads.
 */
async function sweeps(s: HoldsSettings): Promise<SweepFigures> {
  let clock = Date.now();
  return withRedis(s, 'sweep', () => clock, async (ledger, stats) => {
    const pool = await createAccounts(ledger, 2 * SWEEP_HOLDS);
    await stats.config('SET', 'slowlog-log-slower-than', '0');
    await stats.config('SET', 'slowlog-max-len', String(SLOWLOG_MAX_LEN));
    const script: number[] = [];
    const reads: number[] = [];
    for (let n = 0; n < s.sweeps; n++) {
      await batchCommitted(ledger, Array.from({ length: SWEEP_HOLDS }, (_, i) => ({
        ...movement(pool, 0, 'none'), from: pool[2 * i] as string,
        to: pool[2 * i + 1] as string, timeoutSeconds: 1 })), 'a hold to expire');
      clock += 2000;
      await waitForRewrite(stats);
      await stats.slowlog('RESET');
      const outcome = await ledger.expireHolds(SWEEP_HOLDS);
      const log = ((await stats.slowlog('GET', -1)) as SlowlogEntry[])
        .map(([, , usec, args]) => ({ command: String(args[0]).toLowerCase(), usec }))
        .filter((e) => e.command !== 'slowlog');
      const calls = log.filter((e) => e.command.startsWith('eval'));
      if (outcome.released.length !== SWEEP_HOLDS || calls.length !== 1
        || log.length >= SLOWLOG_MAX_LEN) {
        throw new Error(`holds bench: a sweep released ${outcome.released.length} holds in ` +
          `${calls.length} script calls`);
      }
      script.push((calls[0]?.usec ?? Number.NaN) / 1000);
      reads.push(log.reduce((sum, e) => sum + (e.command.startsWith('eval') ? 0 : e.usec), 0)
        / 1000);
    }
    const sorted = Float64Array.from(script).sort();
    return { holds: SWEEP_HOLDS, accounts: pool.length, calls: sorted.length,
      p50Ms: percentile(sorted, 50), p95Ms: percentile(sorted, 95),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN, readsP50Ms: median(reads) ?? Number.NaN };
  });
}

/** The three measurements, one after another (the worst sweep comes from the scripts run). */
export async function measureHolds(s: HoldsSettings): Promise<Omit<HoldsResult,
  'sweepWorst'>> {
  console.error(`\nholds: ${s.rounds} round(s) of ${s.operations.toLocaleString('en-US')} ` +
    `transfers, holds and posts; ${s.sweeps} sweeper calls; ` +
    `${s.stored.toLocaleString('en-US')} stored per RAM run; each on a fresh Redis ` +
    `(appendfsync ${s.appendfsync})`);
  let t0 = performance.now();
  const took = () => {
    const seconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    return `${seconds.toFixed(1)} s`;
  };
  const cpu = await cpuRounds(s);
  console.error(`  (Redis time runs: ${took()})`);
  const sweep = await sweeps(s);
  console.error(`  sweeper call releasing ${SWEEP_HOLDS} holds: p50 ${sweep.p50Ms.toFixed(3)} ` +
    `ms, p95 ${sweep.p95Ms.toFixed(3)} ms inside Redis (${sweep.calls} calls; its reads p50 ` +
    `${sweep.readsP50Ms.toFixed(3)} ms; ${took()})`);
  const storage = await storageRuns(s);
  console.error(`  (RAM runs: ${took()})`);
  return { appendfsync: s.appendfsync, holdTimeoutSeconds: HOLD_TIMEOUT_S, cpu, sweep,
    storage };
}

/** The scripts run's warm (EVALSHA) expire-holds row, when that run had one. */
export function sweepWorst(scripts: ScriptDurations): HoldsResult['sweepWorst'] {
  const row = scripts.rows.find((r) => r.script === 'expire-holds' && r.command === 'evalsha');
  return row === undefined ? null : { case: row.case, calls: row.calls, p50Ms: row.p50Ms,
    p95Ms: row.p95Ms, maxMs: row.maxMs, budgetMs: row.budgetMs };
}
