/**
 * One run of the bank workload (test/faults/bank: ten clients, every unknown outcome retried
 * with the same id, the invariant checker at the end) against the service as its own process in
 * Sentinel mode (REDIS_SENTINELS), on a fresh HA topology (topology.ts), while a scenario
 * injects its faults. Returns what the checker found and the failover's timings; the tests
 * assert on them (failover.test.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/redis/embedded.js';
import { type CheckResult, checkInvariants } from '../faults/bank/checker.js';
import { type Attempt, History, isAmbiguous, seededRandom } from '../faults/bank/history.js';
import { ServiceProcess } from '../faults/bank/system.js';
import { figures, type ScenarioFigures, scenarioTable } from '../faults/bank/table.js';
import { BankLoad, bankSpec, resolveAll, setupBank } from '../faults/bank/workload.js';
import { API_KEYS_ENV } from '../helpers/auth.js';
import { MASTER_NAME } from './nodes.js';
import { ReadProbe } from './read-probe.js';
import { Topology } from './topology.js';

/** Load before the first fault, so faults hit a running bank. */
const WARMUP_MS = 1000;
/** Load after the faults, on whatever primary the Sentinels name then. */
const COOLDOWN_MS = 1000;
/** Every request still ambiguous when the load stops gets this long to be decided. */
const RESOLVE_BUDGET_MS = 15_000;
/** Enough of the logs to see why, not a flood of identical warnings. */
const FAILURE_LOG_CHARS = 4000;
/** For a run expected to lose writes: its checker's wait, and the violations listed. */
const LOSSY_PENDING_SETTLE_MS = 2000;
const LOSSY_VIOLATIONS_LISTED = 3;

export interface HaContext {
  topology: Topology;
  history: History;
  service: ServiceProcess;
}

/** What a scenario's fault did: when it began, and the failover it caused. */
export interface FailoverMark {
  /** The kill, the SIGSTOP, or the SENTINEL FAILOVER request. */
  faultAt: number;
  /** The first +switch-master after it (topology.ts). */
  switchAt: number;
  from: string;
  to: string;
  /** From the old primary's restart (or SIGCONT) to a healthy topology again. */
  rejoinMs?: number;
}

export interface HaOptions {
  /** LEDGER_REPLICA_ACKS. */
  acks: number;
  /** After the check: stop the service and wait until all three nodes hold the same data. */
  identical: boolean;
  /**
   * A run made to lose writes (no replica acks): the checker waits less for the pending sums
   * (they will not match) and the table lists only the first violations.
   */
  lossesExpected?: boolean;
}

export interface HaRun {
  name: string;
  acks: number;
  check: CheckResult;
  history: History;
  figures: ScenarioFigures;
  mark: FailoverMark;
  /** Fault → the first 201 of a request sent after it (so answered by the new primary). */
  first201Ms: number | undefined;
  digest?: string;
  /** Acknowledged writes read back during the run; `stale`: reads that did not find them. */
  probe: ReadProbe;
}

const baseSeed = Number(process.env.BANK_SEED ?? Math.floor(Math.random() * 2 ** 31));

function scenarioSeed(name: string): number {
  let h = baseSeed >>> 0;
  for (const c of name) h = (Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0);
  return h;
}

export function first201After(history: History, at: number): number | undefined {
  const ends = history.ops.flatMap((op) => op.attempts)
    .filter((a) => a.answer === '201' && a.start >= at).map((a) => a.end);
  return ends.length === 0 ? undefined : Math.min(...ends) - at;
}

/** 5xx answers other than 503 UNAVAILABLE / PERSISTENCE_FAILED: in the API, "a bug is 500". */
export function otherServerErrors(history: History): Attempt[] {
  return history.ops.flatMap((op) => op.attempts).filter((a) => a.answer === '5xx other');
}

/** The 500s and their first logged causes, for the run's output; '' when there were none. */
function serverErrors(history: History, service: ServiceProcess): string {
  const other = otherServerErrors(history);
  if (other.length === 0) return '';
  const kinds = new Map<string, number>();
  for (const a of other) {
    const kind = `${a.status} ${a.code ?? ''}`;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const causes = [...new Set(service.log.split('\n').filter((l) => /"level":5\d/.test(l))
    .map((l) => /"message":"([^"]*)"/.exec(l)?.[1] ?? l.slice(0, 300)))].slice(0, 5);
  return `${[...kinds].map(([k, n]) => `${n}× ${k}`).join(', ')}; logged: ${causes.join(' | ')}`;
}

/** Attempts that overlapped a fault window and got an unknown outcome (the fault bit). */
export function ambiguousInFaults(history: History): number {
  return history.ops.flatMap((op) => op.attempts)
    .filter((a) => isAmbiguous(a.answer) && history.inFault(a.start, a.end)).length;
}

export async function haScenario(name: string, options: HaOptions,
  inject: (ctx: HaContext) => Promise<FailoverMark>): Promise<HaRun> {
  const started = Date.now();
  const seed = scenarioSeed(name);
  const history = new History();
  const spec = bankSpec();
  const topology = await Topology.start();
  const service = ServiceProcess.spawn(await freePort(), {
    REDIS_URL: '', REDIS_SENTINELS: topology.sentinelsEnv, REDIS_SENTINEL_NAME: MASTER_NAME,
    LEDGER_REPLICA_ACKS: String(options.acks), LEDGER_API_KEYS: API_KEYS_ENV,
    LEDGER_NAME: `ha-${seed}`,
  });
  let load: BankLoad | undefined;
  let probe: ReadProbe | undefined;
  try {
    await service.waitReady();
    await setupBank(service.base, spec, history);
    load = BankLoad.start(service.base, spec, history, seededRandom(seed), `s${seed}`);
    probe = ReadProbe.start(service.base, history);
    await sleep(WARMUP_MS);
    const mark = await inject({ topology, history, service });
    await sleep(COOLDOWN_MS);
    await load.stop();
    await probe.stop();
    await resolveAll(service.base, history, RESOLVE_BUDGET_MS);
    const check = await checkInvariants(service.base, spec, history, { sweeper: true,
      pendingSettleMs: options.lossesExpected ? LOSSY_PENDING_SETTLE_MS : undefined });
    let digest: string | undefined;
    if (options.identical) {
      await service.kill(); // no writer left: the nodes can be compared
      digest = await topology.waitIdentical();
    }
    const x = figures(name, 'always', seed, started, history, check);
    const listed = options.lossesExpected
      ? check.violations.slice(0, LOSSY_VIOLATIONS_LISTED) : check.violations;
    console.info(scenarioTable(x, { ...check, violations: listed }));
    const errors = serverErrors(history, service);
    if (errors !== '') console.info(`${name}: answers a client must not get\n${errors}`);
    const stale = probe.stale.map((r) => r.at - mark.faultAt);
    if (stale.length > 0) {
      console.info(`${name}: ${stale.length} reads of acknowledged writes answered 404, from ` +
        `${Math.min(...stale)} to ${Math.max(...stale)} ms after the fault`);
    }
    return { name, acks: options.acks, check, history, figures: x, mark, digest,
      first201Ms: first201After(history, mark.faultAt), probe };
  } catch (error) {
    console.info(`${name} failed; ${serviceState(service)}\n` +
      `${await topology.describe().catch(String)}\n` +
      `s0's log (tail):\n${topology.sentinels[0]?.log.slice(-FAILURE_LOG_CHARS)}`);
    throw error;
  } finally {
    await load?.stop();
    await probe?.stop();
    await service.kill();
    await topology.close();
  }
}

/**
 * The service's exit, its errors (level 50 and up, and anything not a JSON log line: a
 * crash's stack) and the tail of the rest.
 */
function serviceState(service: ServiceProcess): string {
  const { exitCode, signalCode } = service.child;
  const lines = service.log.split('\n');
  const errors = lines.filter((l) => !l.startsWith('{') || /"level":(5|6)\d/.test(l));
  return `service ${service.exited ? `exited (${exitCode ?? signalCode})` : 'running'}; ` +
    `its errors:\n${errors.join('\n').slice(-FAILURE_LOG_CHARS)}\n` +
    `its output (tail):\n${service.log.slice(-FAILURE_LOG_CHARS / 2)}`;
}

const ms = (v: number | undefined) => (v === undefined ? '—' : `${v} ms`);

/** Every run, one row each: the failover's timings beside what the checker found. */
export function failoverTable(runs: readonly HaRun[]): string {
  const head = ['scenario', 'acks', 'failover', 'fault→+switch-master', 'fault→first 201',
    'rejoin', 'ops', 'committed', '503', '500', 'stale reads', 'lost', 'double', 'violations',
    's'];
  const rows = runs.map((r) => [r.name, String(r.acks), `${r.mark.from}→${r.mark.to}`,
    ms(r.mark.switchAt - r.mark.faultAt), ms(r.first201Ms), ms(r.mark.rejoinMs),
    String(r.figures.ops), String(r.figures.committed),
    String(Object.entries(r.figures.answers).filter(([k]) => k.startsWith('503'))
      .reduce((s, [, n]) => s + n, 0)),
    String(otherServerErrors(r.history).length), `${r.probe.stale.length}/${r.probe.reads}`,
    String(r.check.lost), String(r.check.doubleApplied), String(r.figures.violations),
    r.figures.seconds.toFixed(1)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [`HA failover suite (BANK_SEED=${baseSeed})`, fmt(head), rule, ...rows.map(fmt)]
    .join('\n');
}
