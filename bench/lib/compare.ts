/**
 * `npm run bench -- --compare <earlier results JSON>` (or BENCH_COMPARE=<file>): after the run,
 * each figure's change against an earlier run, printed and written into latest.md. With
 * `--against <later JSON>` it compares two committed runs without running anything.
 * The rule it checks (reported, never enforced): a later feature may cost at most 5% of
 * single-transfer throughput. Earlier runs lack figures added since (the PostgreSQL baseline,
 * script durations, holds, replica acks, Redis Cluster, change data): those read as "—", never
 * as an error, so every JSON since the first reads.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { KIND_LABELS, KINDS, POSTGRES_LABEL } from './results.js';

/** "A later feature may cost at most 5% of single-transfer throughput." */
const SINGLE_DROP_ALLOWED_PERCENT = 5;

export interface CompareArgs {
  /** The earlier run's JSON. */
  previous?: string;
  /** A later run's JSON: compare the two, run nothing. */
  against?: string;
}

/** `--compare F`, `--compare=F`, `--against F` and BENCH_COMPARE; anything else is an error. */
export function compareArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CompareArgs {
  const out: CompareArgs = {};
  if (env.BENCH_COMPARE) out.previous = env.BENCH_COMPARE;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--(compare|against)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`bench: unknown argument "${arg}" (--compare F, --against F)`);
    const value = match[2] ?? argv[++i];
    if (value === undefined || value === '') throw new Error(`bench: ${arg} needs a JSON file`);
    out[match[1] === 'compare' ? 'previous' : 'against'] = value;
  }
  if (out.against !== undefined && out.previous === undefined) {
    throw new Error('bench: --against F compares F with --compare E; give both');
  }
  return out;
}

type Json = Record<string, unknown>;

/** A results JSON, of any version: an object with `policies` is all that is required. */
export function loadResults(file: string): object {
  const value = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (typeof value !== 'object' || value === null || typeof at(value, 'policies') !== 'object') {
    throw new Error(`${file}: not a bench results JSON (no "policies")`);
  }
  return value;
}

function at(value: unknown, ...path: string[]): unknown {
  let v = value;
  for (const key of path) v = typeof v === 'object' && v !== null ? (v as Json)[key] : undefined;
  return v;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

interface Row {
  figure: string;
  policy: string;
  before: number | null;
  after: number | null;
  unit: string;
  digits: number;
  /** Which way is better. */
  better: 'higher' | 'lower';
  /** Subject to the 5% rule. */
  ruled?: boolean;
}

function kindRows(b: unknown, a: unknown, policy: string): Row[] {
  const rows: Row[] = [];
  const servers = [...KINDS.map((k) => ({ key: k, path: ['kinds', k], label: KIND_LABELS[k] })),
    { key: 'postgres', path: ['postgres'], label: POSTGRES_LABEL }];
  for (const s of servers) {
    const fig = (run: unknown, name: string) =>
      num(at(run, 'policies', policy, ...s.path, 'median', name));
    const row = (figure: string, name: string, unit: string, digits: number,
      better: Row['better'], ruled = false): Row => ({ figure: `${s.label}: ${figure}`, policy,
      before: fig(b, name), after: fig(a, name), unit, digits, better, ruled });
    if (s.key === 'hello') {
      rows.push(row('req/s', 'requestsPerS', '/s', 0, 'higher'));
    } else {
      rows.push(row('transfers/s', 'transfersPerS', '/s', 0, 'higher', s.key === 'single'));
    }
    rows.push(row('p99', 'p99Ms', 'ms', 2, 'lower'));
    if (s.key === 'postgres') {
      rows.push(row('postgres CPU per transfer', 'postgresCpuUsPerTransfer', 'µs', 1, 'lower'));
    } else if (s.key !== 'hello') {
      rows.push(row('Redis script time per transfer', 'redisScriptUsPerTransfer', 'µs', 1,
        'lower'));
    }
    if (s.key === 'single' || s.key === 'lean' || s.key === 'postgres') {
      rows.push(row('server CPU per transfer', 'serverCpuUsPerTransfer', 'µs', 1, 'lower'));
    }
  }
  return rows;
}

const RATIOS: Array<[key: string, label: string, ruled: boolean]> = [
  ['singleOverLean', 'ratio c/b: product ÷ lean (single transfers/s)', true],
  ['singleOverPostgres', 'ratio c/p: product ÷ PostgreSQL (single transfers/s)', false],
  ['batchOverSingle', 'ratio d/c: batch atomic:false ÷ single', false],
  ['batchAtomicOverSingle', 'ratio d/c: batch atomic:true ÷ single', false],
  ['twoWorkersOverOne', 'ratio c2/c: 2 workers ÷ 1 (single transfers/s)', false],
  ['groupOverNoGroup', 'ratio c/c1: group commit on ÷ off (single transfers/s)', false],
  ['leanOverHello', 'ratio b/a: lean ÷ hello (req/s)', false],
];

function policyRows(b: unknown, a: unknown, policy: string): Row[] {
  const rows = kindRows(b, a, policy);
  for (const [key, label, ruled] of RATIOS) {
    rows.push({ figure: label, policy, before: num(at(b, 'policies', policy, 'ratios', key)),
      after: num(at(a, 'policies', policy, 'ratios', key)), unit: '×', digits: 2,
      better: 'higher', ruled });
  }
  const half = (run: unknown) => num(at(run, 'policies', policy, 'halfRate', 'paced', 'p99Ms'));
  rows.push({ figure: 'p99 at half max throughput (paced)', policy, before: half(b),
    after: half(a), unit: 'ms', digits: 2, better: 'lower' });
  return rows;
}

function storageRows(b: unknown, a: unknown): Row[] {
  const policy = String(at(a, 'storage', 'appendfsync') ?? at(b, 'storage', 'appendfsync') ?? '');
  const row = (figure: string, path: string[], unit: string): Row => ({ figure, policy,
    before: num(at(b, 'storage', ...path)), after: num(at(a, 'storage', ...path)), unit,
    digits: 0, better: 'lower' });
  const rows = [row('RAM per stored transfer (large run)', ['large', 'ramBytesPerTransfer'],
    'B')];
  for (const kind of ['lean', 'single', 'batch', 'batchAtomic'] as const) {
    rows.push(row(`AOF per transfer: ${KIND_LABELS[kind]}`,
      ['perKind', kind, 'aofBytesPerTransfer'], 'B'));
  }
  return rows;
}

/** Holds against the transfer (bench/lib/holds.ts): in one policy, the first of the run. */
function holdsRows(b: unknown, a: unknown): Row[] {
  const policy = String(at(a, 'holds', 'appendfsync') ?? at(b, 'holds', 'appendfsync') ?? '');
  const row = (figure: string, path: string[], unit: string, digits: number): Row => ({
    figure: `holds: ${figure}`, policy, before: num(at(b, 'holds', ...path)),
    after: num(at(a, 'holds', ...path)), unit, digits, better: 'lower' });
  return [
    row('Redis script time, hold + post ÷ transfer', ['cpu', 'holdPostOverTransfer'], '×', 2),
    row('Redis script time per transfer', ['cpu', 'median', 'transfer', 'redisScriptUs'], 'µs',
      1),
    row('Redis script time per hold', ['cpu', 'median', 'hold', 'redisScriptUs'], 'µs', 1),
    row('Redis script time per post', ['cpu', 'median', 'post', 'redisScriptUs'], 'µs', 1),
    row('sweeper call of 100 expired holds, p50', ['sweep', 'p50Ms'], 'ms', 3),
    row('sweeper call of 100 expired holds, p95', ['sweep', 'p95Ms'], 'ms', 3),
    row('sweeper call at its worst, p95', ['sweepWorst', 'p95Ms'], 'ms', 3),
    row('RAM, open hold ÷ transfer', ['storage', 'openHoldOverTransfer'], '×', 2),
    ...(['transfer', 'openHold', 'postedHold', 'voidedHold'] as const).map((kind) =>
      row(`RAM per ${kind === 'transfer' ? 'transfer' : kind.replace('Hold', ' hold')} ` +
        '(holds runs)', ['storage', kind, 'ramBytesPer'], 'B', 0)),
  ];
}

/** Replica acks (bench/lib/replication.ts): in one policy, the first of the run. */
function replicationRows(b: unknown, a: unknown): Row[] {
  const policy = String(at(a, 'replication', 'appendfsync')
    ?? at(b, 'replication', 'appendfsync') ?? '');
  const row = (figure: string, path: string[], unit: string, digits: number,
    better: Row['better']): Row => ({ figure: `replica acks: ${figure}`, policy,
    before: num(at(b, 'replication', ...path)), after: num(at(a, 'replication', ...path)),
    unit, digits, better });
  return [
    row('ratio LEDGER_REPLICA_ACKS=1 ÷ 0 (single transfers/s)', ['acksOverNoAcks'], '×', 2,
      'higher'),
    ...(['acks0', 'acks1'] as const).flatMap((v) => [
      row(`${v} transfers/s`, ['variants', v, 'median', 'transfersPerS'], '/s', 0, 'higher'),
      row(`${v} p99 at half max (paced)`, ['variants', v, 'halfRate', 'p99Ms'], 'ms', 2,
        'lower')]),
    row('writes per WAIT (acks1, max throughput)', ['acks', 'writesPerWait'], '', 1, 'higher'),
    row('WAIT p50 (acks1, max throughput)', ['acks', 'waitP50Ms'], 'ms', 2, 'lower'),
  ];
}

/** Ledgers on Redis Cluster (bench/lib/cluster.ts): in one policy, the first of the run. */
function clusterRows(b: unknown, a: unknown): Row[] {
  const policy = String(at(a, 'cluster', 'appendfsync') ?? at(b, 'cluster', 'appendfsync') ?? '');
  const row = (figure: string, path: string[], unit: string, digits: number,
    better: Row['better']): Row => ({ figure: `cluster: ${figure}`, policy,
    before: num(at(b, 'cluster', ...path)), after: num(at(a, 'cluster', ...path)), unit, digits,
    better });
  const cpu = (v: string) => ['cpu', v, 'median', 'redisCpuUsPerTransfer'];
  const spread = (v: string) => ['spread', v, 'median', 'transfersPerS'];
  return [
    row('Redis CPU per single transfer, one redis-server', cpu('redis'), 'µs', 1, 'lower'),
    row('Redis CPU per single transfer, 3 primaries', cpu('cluster3'), 'µs', 1, 'lower'),
    row('ratio 3 primaries ÷ one redis-server (Redis CPU per transfer)',
      ['cpu', 'clusterOverSingleCpu'], '×', 2, 'lower'),
    row('batches over 6 ledgers on 3 primaries, transfers/s', spread('cluster3'), '/s', 0,
      'higher'),
    row('batches over 6 ledgers on 1 primary, transfers/s', spread('cluster1'), '/s', 0,
      'higher'),
    row('ratio 3 primaries ÷ 1 (batch transfers/s)', ['spread', 'threeOverOne'], '×', 2,
      'higher'),
    row('expected with a core per primary, transfers/s', ['spread', 'expectedTransfersPerS'],
      '/s', 0, 'higher'),
  ];
}

/** Change data out (bench/lib/cdc.ts): in one policy, the first of the run. */
function cdcRows(b: unknown, a: unknown): Row[] {
  const policy = String(at(a, 'cdc', 'appendfsync') ?? at(b, 'cdc', 'appendfsync') ?? '');
  const row = (figure: string, path: string[], unit: string, digits: number,
    better: Row['better']): Row => ({ figure: `change data: ${figure}`, policy,
    before: num(at(b, 'cdc', ...path)), after: num(at(a, 'cdc', ...path)), unit, digits,
    better });
  return [
    row('ratio publisher on ÷ off (single transfers/s)', ['single', 'onOverOff'], '×', 2,
      'higher'),
    row('single transfers/s, publisher on', ['single', 'on', 'median', 'transfersPerS'], '/s', 0,
      'higher'),
    row('ratio service CPU per single transfer, on ÷ off', ['single', 'serverCpuOnOverOff'], '×',
      2, 'lower'),
    row('batch peak, committed transfers/s', ['batch', 'peakTransfersPerS'], '/s', 0,
      'higher'),
    row('published/s while batches ran', ['batch', 'on', 'median', 'publishedPerS'], '/s', 0,
      'higher'),
    row('catch-up, records/s', ['catchUp', 'recordsPerS'], '/s', 0, 'higher'),
    row('ratio catch-up ÷ batch peak', ['catchUpOverPeak'], '×', 2, 'higher'),
  ];
}

const fmt = (v: number | null, digits: number) => (v === null ? '—'
  : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

/** The PostgreSQL archive (bench/lib/archive.ts): in one policy, the first of the run. */
function archiveRows(b: unknown, a: unknown): Row[] {
  const policy = String(at(a, 'archive', 'appendfsync') ?? at(b, 'archive', 'appendfsync')
    ?? '');
  const row = (figure: string, path: string[], unit: string, digits: number,
    better: Row['better']): Row => ({ figure: `archive: ${figure}`, policy,
    before: num(at(b, 'archive', ...path)), after: num(at(a, 'archive', ...path)), unit, digits,
    better });
  return [
    row('Redis memory per archived transfer', ['memory', 'afterBytesPerTransfer'], 'B', 1,
      'lower'),
    row('Redis memory per transfer, not archived', ['memory', 'beforeBytesPerTransfer'], 'B', 1,
      'lower'),
    row('catch-up, records/s copied and freed', ['catchUp', 'recordsPerS'], '/s', 0, 'higher'),
    row('ratio catch-up ÷ single transfers/s', ['catchUpOverSingle'], '×', 2, 'higher'),
    row('ratio archiver on ÷ off (single transfers/s)', ['hot', 'onOverOff'], '×', 2,
      'higher'),
  ];
}

/** The change column, and whether the 5% rule flags it. */
function change(r: Row): { text: string; flagged: boolean } {
  if (r.before === null && r.after === null) return { text: '—', flagged: false };
  if (r.before === null) return { text: 'new', flagged: false };
  if (r.after === null) return { text: 'gone', flagged: false };
  if (r.before === 0) return { text: '—', flagged: false };
  const percent = (r.after / r.before - 1) * 100;
  const worse = r.better === 'higher' ? percent < 0 : percent > 0;
  const flagged = r.ruled === true && -percent > SINGLE_DROP_ALLOWED_PERCENT;
  const sign = percent >= 0 ? '+' : '−';
  const text = `${sign}${Math.abs(percent).toFixed(1)}%${Math.abs(percent) < 0.05 ? ''
    : worse ? ' worse' : ' better'}`;
  return { text: flagged ? `**${text}: over the ${SINGLE_DROP_ALLOWED_PERCENT}% allowance**`
    : text, flagged };
}

function describe(run: unknown, file: string): string {
  const commit = at(run, 'git', 'commit');
  return `\`${basename(file)}\` (${String(at(run, 'startedAt') ?? 'no date')}` +
    (typeof commit === 'string' ? `, commit ${commit.slice(0, 12)}` : '') +
    (at(run, 'git', 'dirty') === true ? ' dirty' : '') +
    (at(run, 'parameters', 'quick') === true ? ', BENCH_QUICK' : '') + ')';
}

/** Parameters that differ between the runs: figures of unlike runs compare poorly. */
function parameterChanges(b: unknown, a: unknown): string[] {
  const pb = (at(b, 'parameters') ?? {}) as Json;
  const pa = (at(a, 'parameters') ?? {}) as Json;
  return [...new Set([...Object.keys(pb), ...Object.keys(pa)])]
    .filter((k) => JSON.stringify(pb[k]) !== JSON.stringify(pa[k]))
    .map((k) => `${k} ${JSON.stringify(pb[k]) ?? '—'} → ${JSON.stringify(pa[k]) ?? '—'}`);
}

/** The markdown section: a summary of the 5% rule, then every figure before → after. */
export function compareMarkdown(before: object, beforeFile: string, after: object,
  afterFile: string): string {
  const names = (run: object) => Object.keys(at(run, 'policies') as Json);
  const policies = names(after).filter((p) => names(before).includes(p));
  const unmatched = [...names(before), ...names(after)].filter((p) => !policies.includes(p));
  // A figure neither run has (a new baseline in a policy that did not run it) says nothing.
  const rows = [...policies.flatMap((p) => policyRows(before, after, p)),
    ...storageRows(before, after), ...holdsRows(before, after),
    ...replicationRows(before, after), ...clusterRows(before, after),
    ...cdcRows(before, after), ...archiveRows(before, after)]
    .filter((r) => r.before !== null || r.after !== null);
  const changes = rows.map(change);
  const flagged = rows.filter((_, i) => changes[i]?.flagged);
  const differs = parameterChanges(before, after);
  const out = [
    `## Change against an earlier run`, '',
    `Earlier: ${describe(before, beforeFile)}; later: ${describe(after, afterFile)}.`, '',
    `Rule: a later feature may cost at most ${SINGLE_DROP_ALLOWED_PERCENT}% of single-transfer ` +
      'throughput (reported, never enforced). Each run is a different minute on a shared ' +
      'machine, where absolute figures swing ~1.5×: the same-run ratio c/b is the steadier ' +
      'measure of the product, and is held to the same rule. ' + (flagged.length === 0
      ? `**No single-transfer figure dropped over ${SINGLE_DROP_ALLOWED_PERCENT}%.**`
      : `**Over the allowance: ${flagged.map((r) => `${r.figure} (${r.policy}) ` +
        `${fmt(r.before, r.digits)} → ${fmt(r.after, r.digits)}`).join('; ')}.**`),
  ];
  if (differs.length > 0) out.push('', `Parameters differ: ${differs.join('; ')}.`);
  if (unmatched.length > 0) {
    out.push('', `Not compared (in one run only): appendfsync ${unmatched.join(', ')}.`);
  }
  out.push('', '| figure | fsync | earlier | later | change |', '|---|---|--:|--:|---|');
  rows.forEach((r, i) => {
    const unit = r.unit === '/s' || r.unit === '×' || r.unit === '' ? r.unit : ` ${r.unit}`;
    const show = (v: number | null) => (v === null ? '—' : `${fmt(v, r.digits)}${unit}`);
    out.push(`| ${r.figure} | ${r.policy} | ${show(r.before)} | ${show(r.after)} | ` +
      `${changes[i]?.text ?? '—'} |`);
  });
  return `${out.join('\n')}\n`;
}
