/**
 * Per-scenario figures and the tables printed to stdout (CI shows them): ops by outcome, answers
 * by class, faults injected, lost and double-applied, latency during faults, time to recover.
 */
import type { CheckResult } from './checker.js';
import { type AnswerClass, type History, isAmbiguous, isDecided } from './history.js';

export interface ScenarioFigures {
  scenario: string;
  appendfsync: string;
  seed: number;
  seconds: number;
  ops: number;
  outcomes: Record<string, number>;
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
    outcomes: count(history.ops.map((op) => `${op.kind === 'setup' ? 'setup ' : ''}${op.outcome}`)),
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
    ['faults injected', x.faults],
    ['lost (must be 0)', String(x.lost)],
    ['double-applied (must be 0)', String(x.doubleApplied)],
    ['other violations', String(x.violations - x.lost - x.doubleApplied)],
    ['latency in faults p50 / p99', `${ms(x.faultP50)} / ${ms(x.faultP99)} per request; ` +
      `${ms(x.faultOpP99)} p99 per op until decided`],
    ['time to recover (per fault)', x.recoverMs.map(ms).join(', ') || '—'],
  ];
  for (const v of check.violations) rows.push(['VIOLATION', v]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const line = '-'.repeat(width + 2);
  return [line, ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`), line].join('\n');
}

/** Every scenario of the run, one row each. */
export function summaryTable(all: readonly ScenarioFigures[]): string {
  const head = ['scenario', 'fsync', 'ops', 'committed', 'rejected', 'ambig. attempts', 'lost',
    'double', 'violations', 'p50 fault', 'p99 fault', 'recover max', 's'];
  const rows = all.map((x) => {
    const ambiguous = Object.entries(x.answers).filter(([k]) => isAmbiguous(k as AnswerClass))
      .reduce((s, [, n]) => s + n, 0);
    const recovered = x.recoverMs.filter((v): v is number => v !== undefined);
    const unrecovered = x.recoverMs.length - recovered.length;
    const recoverMax = recovered.length === 0 ? '—' : `${Math.max(...recovered)} ms`;
    return [x.scenario, x.appendfsync, String(x.ops), String(x.outcomes.committed ?? 0),
      String(x.outcomes.rejected ?? 0), String(ambiguous), String(x.lost), String(x.doubleApplied),
      String(x.violations), ms(x.faultP50), ms(x.faultP99),
      unrecovered > 0 ? `${recoverMax} (+${unrecovered} never)` : recoverMax, x.seconds.toFixed(1)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [fmt(head), rule, ...rows.map(fmt)].join('\n');
}
