/**
 * Per-scenario figures and the tables printed to stdout (CI shows them): ops by kind and
 * outcome, answers by class, holds by their end state and reversals, faults injected, lost and
 * double-applied, latency during faults, time to recover.
 */
import type { CheckResult } from './checker.js';
import { type AnswerClass, type History, isAmbiguous, isDecided, isWrite } from './history.js';

export interface ScenarioFigures {
  scenario: string;
  appendfsync: string;
  seed: number;
  seconds: number;
  ops: number;
  /** By `<kind> <outcome>`: `transfer committed`, `hold rejected`, `replay identical`, … */
  outcomes: Record<string, number>;
  /** Writes (set-up funding aside) committed and rejected. */
  committed: number;
  rejected: number;
  /** Acknowledged holds by their state at the end: `posted 40 · voided 12 · …`. */
  holds: Record<string, number>;
  reversals: number;
  reversedAmount: string;
  expiredVoidedByCheck: number;
  /** The check's time, and in it the wait for the pending sums to match the open holds, ms. */
  checkMs: number;
  pendingWaitMs: number;
  answers: Record<string, number>;
  faults: string;
  lost: number;
  doubleApplied: number;
  violations: number;
  /** Latency of HTTP attempts that overlapped a fault window, ms. */
  faultP50: number | undefined;
  faultP99: number | undefined;
  /** Ops that overlapped a fault: from the first attempt to the deciding answer, p99, ms. */
  faultOpP99: number | undefined;
  /** Per fault: from its end to the first decided answer received after it, ms. */
  recoverMs: Array<number | undefined>;
}

function count<T extends string>(items: readonly T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[item] = (out[item] ?? 0) + 1;
  return out;
}

function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function figures(scenario: string, appendfsync: string, seed: number, started: number,
  history: History, check: CheckResult): ScenarioFigures {
  const attempts = history.ops.flatMap((op) => op.attempts);
  const inFault = attempts.filter((a) => history.inFault(a.start, a.end))
    .map((a) => a.end - a.start).sort((x, y) => x - y);
  const opsInFault = history.ops
    .filter((op) => op.end !== undefined && history.inFault(op.start, op.end))
    .map((op) => (op.end as number) - op.start).sort((x, y) => x - y);
  const successes = attempts.filter((a) => isDecided(a.answer)).map((a) => a.end)
    .sort((x, y) => x - y);
  const recoverMs = history.faults.map((w) => {
    const end = w.end ?? Number.POSITIVE_INFINITY;
    const first = successes.find((t) => t >= end);
    return first === undefined ? undefined : first - end;
  });
  return {
    scenario, appendfsync, seed,
    seconds: (Date.now() - started) / 1000,
    ops: history.ops.length,
    outcomes: count(history.ops.map((op) => (op.kind === 'replay' || op.kind === 'conflict'
      ? op.outcome : `${op.kind} ${op.outcome}`))),
    committed: history.ops.filter((op) => isWrite(op.kind) && op.outcome === 'committed').length,
    rejected: history.ops.filter((op) => isWrite(op.kind) && op.outcome === 'rejected').length,
    holds: check.holds.states,
    reversals: check.holds.reversals,
    reversedAmount: `${check.holds.reversedAmount}`,
    expiredVoidedByCheck: check.holds.expiredVoidedByCheck,
    checkMs: check.checkMs,
    pendingWaitMs: check.holds.pendingWaitMs,
    answers: count(attempts.map((a) => a.answer)),
    faults: describeFaults(history),
    lost: check.lost,
    doubleApplied: check.doubleApplied,
    violations: Object.values(check.counts).reduce((s, n) => s + n, 0),
    faultP50: percentile(inFault, 50),
    faultP99: percentile(inFault, 99),
    faultOpP99: percentile(opsInFault, 99),
    recoverMs,
  };
}

function describeFaults(history: History): string {
  const names = count(history.faults.map((f) => f.name));
  return Object.entries(names).map(([name, n]) => `${n}× ${name}`).join(', ') || 'none';
}

const ms = (v: number | undefined) => (v === undefined ? '—' : `${v} ms`);
const listing = (r: Record<string, number>) =>
  Object.entries(r).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${v}`).join(' · ');

/** One scenario, as a two-column table. */
export function scenarioTable(x: ScenarioFigures, check: CheckResult): string {
  const rows: Array<[string, string]> = [
    ['scenario',
      `${x.scenario} [appendfsync ${x.appendfsync}] seed ${x.seed}, ${x.seconds.toFixed(1)} s`],
    ['ops by outcome', `${x.ops}: ${listing(x.outcomes)}`],
    ['answers (attempts)', listing(x.answers)],
    ['holds at the end', (listing(x.holds) || 'none') + (x.expiredVoidedByCheck === 0 ? ''
      : ` (${x.expiredVoidedByCheck} expired ones voided by the check)`)],
    ['reversals', `${x.reversals} committed, ${x.reversedAmount} reversed in all`],
    ['faults injected', x.faults],
    ['lost (must be 0)', String(x.lost)],
    ['double-applied (must be 0)', String(x.doubleApplied)],
    ['other violations', String(x.violations - x.lost - x.doubleApplied)],
    ['latency in faults p50 / p99', `${ms(x.faultP50)} / ${ms(x.faultP99)} per request; ` +
      `${ms(x.faultOpP99)} p99 per op until decided`],
    ['time to recover (per fault)', x.recoverMs.map(ms).join(', ') || '—'],
    ['check', `${x.checkMs} ms, of which ${x.pendingWaitMs} ms until the pending sums ` +
      'matched the open holds'],
  ];
  for (const v of check.violations) rows.push(['VIOLATION', v]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const line = '-'.repeat(width + 2);
  return [line, ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`), line].join('\n');
}

/** Every scenario of the run, one row each. */
export function summaryTable(all: readonly ScenarioFigures[]): string {
  const head = ['scenario', 'fsync', 'ops', 'committed', 'rejected', 'holds p/v/e/open',
    'reversals', 'ambig. attempts', 'lost', 'double', 'violations', 'p50 fault', 'p99 fault',
    'recover max', 's'];
  const rows = all.map((x) => {
    const ambiguous = Object.entries(x.answers).filter(([k]) => isAmbiguous(k as AnswerClass))
      .reduce((s, [, n]) => s + n, 0);
    const recovered = x.recoverMs.filter((v): v is number => v !== undefined);
    const unrecovered = x.recoverMs.length - recovered.length;
    const recoverMax = recovered.length === 0 ? '—' : `${Math.max(...recovered)} ms`;
    const holds = ['posted', 'voided', 'expired', 'pending'].map((s) => x.holds[s] ?? 0)
      .join('/');
    return [x.scenario, x.appendfsync, String(x.ops), String(x.committed), String(x.rejected),
      holds, String(x.reversals), String(ambiguous), String(x.lost), String(x.doubleApplied),
      String(x.violations), ms(x.faultP50), ms(x.faultP99),
      unrecovered > 0 ? `${recoverMax} (+${unrecovered} never)` : recoverMax, x.seconds.toFixed(1)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [fmt(head), rule, ...rows.map(fmt)].join('\n');
}
