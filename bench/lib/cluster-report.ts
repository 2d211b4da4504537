/**
 * The Redis Cluster figures (bench/lib/cluster.ts): each segment's figures from the CPU
 * readings around it, their medians, and the section of latest.md. No goal is enforced or
 * listed: figure 1's ratio comes with a proposed bound, figure 2 is reported as measured.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { LoadResult } from './load.js';
import { machineBusySeconds, treeCpuSeconds } from './processes.js';
import type { RedisSnapshot } from './redis-stats.js';
import { medianOf, type Results } from './results.js';
import { fmt, median, ratio, times } from './stats.js';

/**
 * Proposed (not adopted, so not in the goals table): the cluster's Redis CPU per transfer,
 * every node summed, at most this many times one redis-server's. Its idle primaries' cron and
 * gossip, and Redis's per-slot key bookkeeping, are what it may cost.
 */
export const PROPOSED_CLUSTER_CPU_OVER_SINGLE_MAX = 1.25;

/**
 * CPU seconds so far: each node's (INFO), the service's tree, the machine's, ours; and the
 * seconds the service's and each node's main thread waited, runnable, for a core.
 */
export interface CpuTotals {
  nodes: RedisSnapshot[];
  serverS: number;
  machineS: number;
  loaderS: number;
  atMs: number;
  serverWaitS: number;
  nodeWaitS: number[];
}

export interface CpuSample { before: CpuTotals; after: CpuTotals }

/** From /proc/<pid>/schedstat (run ns, run-queue wait ns, slices) of a main thread. */
function runQueueWaitSeconds(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return Number.NaN; // not Linux, or no scheduler statistics: the figure is null
  }
}

export function cpuTotals(serverPid: number, nodes: RedisSnapshot[],
  nodePids: ReadonlyArray<number | undefined>): CpuTotals {
  const own = process.cpuUsage();
  return { nodes, serverS: treeCpuSeconds(serverPid), machineS: machineBusySeconds(),
    loaderS: (own.user + own.system) / 1e6, atMs: performance.now(),
    serverWaitS: runQueueWaitSeconds(serverPid), nodeWaitS: nodePids.map(runQueueWaitSeconds) };
}

/**
 * CPU cores busy on average, as run.ts's Figures; and "wait" cores: seconds per second the
 * service's main thread (its event loop), and every node's summed, were runnable but had no
 * core. A wait near 0 with a core not saturated means the bound is a wait of another kind.
 */
interface Cores { serverCores: number; redisCores: number; loaderCores: number;
  machineCores: number; serverWaitCores: number; redisWaitCores: number }

export interface CpuFigures extends Cores {
  transfersPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** used_cpu_sys + used_cpu_user, summed over every node, ÷ transfers committed. */
  redisCpuUsPerTransfer: number | null;
  /** Of which the nodes that do not hold the ledger (0 for one redis-server). */
  idleNodesCpuUsPerTransfer: number | null;
  redisScriptUsPerTransfer: number | null;
  serverCpuUsPerTransfer: number | null;
}

const CORE_KEYS: ReadonlyArray<keyof Cores> = ['serverCores', 'redisCores', 'loaderCores',
  'machineCores', 'serverWaitCores', 'redisWaitCores'];
const CPU_KEYS: ReadonlyArray<keyof CpuFigures> = ['transfersPerS', 'p50Ms', 'p99Ms',
  'redisCpuUsPerTransfer', 'idleNodesCpuUsPerTransfer', 'redisScriptUsPerTransfer',
  'serverCpuUsPerTransfer', ...CORE_KEYS];

export interface CpuSegment extends CpuFigures,
  Pick<LoadResult, 'durationS' | 'transfers' | 'non2xx' | 'errors' | 'statusCodes'> {
  round: number;
  /** A node rewrote its AOF meanwhile (a fork, and a child busy on a core). */
  aofRewriteDuring: boolean;
}

/** One primary in figure 2. */
export interface NodeFigures {
  name: string;
  ledgers: number;
  transfersPerS: number;
  redisCores: number;
  waitCores: number;
  /** Its ledgers' committed transfers ÷ its CPU seconds: what a core of its own would do. */
  transfersPerRedisCpuS: number | null;
}

export interface SpreadFigures extends Cores {
  transfersPerS: number;
  /** The worst ledger's p99 of batch requests. */
  p99Ms: number;
  redisCpuUsPerTransfer: number | null;
}

const SPREAD_KEYS: ReadonlyArray<keyof SpreadFigures> = ['transfersPerS', 'p99Ms',
  'redisCpuUsPerTransfer', ...CORE_KEYS];

export interface SpreadSegment extends SpreadFigures {
  round: number;
  durationS: number;
  /** Items answered status 201 (committed); anything else is counted in nonCommitted. */
  transfers: number;
  nonCommitted: number;
  statusCodes: Record<string, number>;
  itemStatuses: Record<string, number>;
  aofRewriteDuring: boolean;
  nodes: NodeFigures[];
}

export interface ClusterSetup {
  appendfsync: string;
  /** Figure 1's, as (c)'s. */
  connections: number;
  batchConnectionsPerLedger: number;
  batchSize: number;
  accountsPerLedger: number;
  primaries: number;
  /** Figure 1's ledger. */
  cpuLedger: string;
  /** Figure 2's ledgers: slot of the hash tag, index of the primary of the 3 that owns it. */
  ledgers: Array<{ name: string; slot: number; primary: number }>;
}

export interface ClusterResult extends ClusterSetup {
  cpu: {
    redis: { rounds: CpuSegment[]; median: CpuFigures };
    cluster3: { rounds: CpuSegment[]; median: CpuFigures };
    /** Median over rounds of cluster3 ÷ redis Redis CPU per transfer. */
    clusterOverSingleCpu: number | null;
  };
  spread: {
    cluster3: { rounds: SpreadSegment[]; median: SpreadFigures; nodes: NodeFigures[] };
    cluster1: { rounds: SpreadSegment[]; median: SpreadFigures; nodes: NodeFigures[] };
    /** Median over rounds of 3 primaries ÷ 1 primary transfers/s. */
    threeOverOne: number | null;
    /** The median of the 3 primaries' transfers per Redis CPU second. */
    perPrimaryTransfersPerRedisCpuS: number | null;
    /** That × primaries: with a core per primary (and enough service to feed them). */
    expectedTransfersPerS: number | null;
  };
}

function rewrote(x: CpuSample): boolean {
  return x.after.nodes.some((a, i) => {
    const b = x.before.nodes[i] as RedisSnapshot;
    return a.aofRewriting || b.aofRewriting || a.aofRewrites !== b.aofRewrites;
  });
}

function nodeDelta(x: CpuSample, key: 'cpuSeconds' | 'scriptUsec' | 'waitS'): number[] {
  if (key === 'waitS') return x.after.nodeWaitS.map((a, i) => a - (x.before.nodeWaitS[i] ?? 0));
  return x.after.nodes.map((a, i) => a[key] - (x.before.nodes[i] as RedisSnapshot)[key]);
}

const sum = (values: readonly number[]) => values.reduce((t, v) => t + v, 0);

function cores(x: CpuSample): Cores & { wallS: number; redisS: number; serverS: number } {
  const wallS = (x.after.atMs - x.before.atMs) / 1000;
  const redisS = sum(nodeDelta(x, 'cpuSeconds'));
  const serverS = x.after.serverS - x.before.serverS;
  return { wallS, redisS, serverS, serverCores: serverS / wallS, redisCores: redisS / wallS,
    loaderCores: (x.after.loaderS - x.before.loaderS) / wallS,
    machineCores: (x.after.machineS - x.before.machineS) / wallS,
    serverWaitCores: (x.after.serverWaitS - x.before.serverWaitS) / wallS,
    redisWaitCores: sum(nodeDelta(x, 'waitS')) / wallS };
}

/** `owner`: the index of the node that holds the ledger. */
export function cpuSegment(round: number, load: LoadResult, owner: number,
  x: CpuSample): CpuSegment {
  const { wallS: _, redisS, serverS, ...c } = cores(x);
  const idleS = sum(nodeDelta(x, 'cpuSeconds').filter((__, i) => i !== owner));
  const n = load.transfers;
  const per = (value: number) => (n === 0 ? null : value / n);
  return { round, durationS: load.durationS, transfers: n, non2xx: load.non2xx,
    errors: load.errors, statusCodes: load.statusCodes, transfersPerS: n / load.durationS,
    p50Ms: load.p50Ms, p99Ms: load.p99Ms, redisCpuUsPerTransfer: per(redisS * 1e6),
    idleNodesCpuUsPerTransfer: per(idleS * 1e6),
    redisScriptUsPerTransfer: per(sum(nodeDelta(x, 'scriptUsec'))),
    serverCpuUsPerTransfer: per(serverS * 1e6), ...c, aofRewriteDuring: rewrote(x) };
}

export function spreadSegment(round: number,
  loads: Array<{ ledger: string; node: number; load: LoadResult }>, nodeNames: string[],
  x: CpuSample): SpreadSegment {
  const { wallS: _, redisS, serverS: __, ...c } = cores(x);
  // A batch item's `status` is the one POST /transfers would answer: 201 is committed.
  const committed = (l: LoadResult) => l.itemStatuses?.['201'] ?? 0;
  const rate = (l: LoadResult) => committed(l) / l.durationS;
  const transfers = sum(loads.map((l) => committed(l.load)));
  const [cpu, wait] = [nodeDelta(x, 'cpuSeconds'), nodeDelta(x, 'waitS')];
  const wallS = (x.after.atMs - x.before.atMs) / 1000;
  const add = (into: Record<string, number>, from: Record<string, number> | undefined) => {
    for (const [k, v] of Object.entries(from ?? {})) into[k] = (into[k] ?? 0) + v;
    return into;
  };
  const itemStatuses = loads.reduce((t, l) => add(t, l.load.itemStatuses), {});
  return { round, durationS: median(loads.map((l) => l.load.durationS)) ?? Number.NaN,
    transfers, nonCommitted: sum(Object.values(itemStatuses)) - transfers
      + sum(loads.map((l) => l.load.non2xx + l.load.errors)),
    statusCodes: loads.reduce((t, l) => add(t, l.load.statusCodes), {}), itemStatuses,
    transfersPerS: sum(loads.map((l) => rate(l.load))),
    p99Ms: Math.max(...loads.map((l) => l.load.p99Ms)),
    redisCpuUsPerTransfer: transfers === 0 ? null : redisS * 1e6 / transfers, ...c,
    aofRewriteDuring: rewrote(x),
    nodes: nodeNames.map((name, i) => {
      const mine = loads.filter((l) => l.node === i);
      const perS = sum(mine.map((l) => rate(l.load)));
      return { name, ledgers: mine.length, transfersPerS: perS,
        redisCores: (cpu[i] ?? 0) / wallS, waitCores: (wait[i] ?? 0) / wallS,
        transfersPerRedisCpuS: ratio(sum(mine.map((l) => committed(l.load))), cpu[i]) };
    }) };
}

/** Each primary's figures, median over rounds. */
function nodeMedians(rounds: readonly SpreadSegment[]): NodeFigures[] {
  return (rounds[0]?.nodes ?? []).map((n, i) => ({ ...medianOf(rounds.map((r) =>
    r.nodes[i] as NodeFigures), ['transfersPerS', 'redisCores', 'waitCores',
    'transfersPerRedisCpuS']),
  name: n.name, ledgers: n.ledgers }));
}

const perRound = <T>(a: readonly T[], b: readonly T[], key: (x: T) => number | null) =>
  median(a.map((x, i) => ratio(key(x), b[i] === undefined ? null : key(b[i] as T))));

export function summarise(setup: ClusterSetup,
  cpu: Record<'redis' | 'cluster3', CpuSegment[]>,
  spread: Record<'cluster3' | 'cluster1', SpreadSegment[]>): ClusterResult {
  const variant = (rounds: SpreadSegment[]) => ({ rounds,
    median: medianOf(rounds, SPREAD_KEYS), nodes: nodeMedians(rounds) });
  const three = variant(spread.cluster3);
  const perPrimary = median(three.nodes.map((n) => n.transfersPerRedisCpuS));
  return { ...setup,
    cpu: { redis: { rounds: cpu.redis, median: medianOf(cpu.redis, CPU_KEYS) },
      cluster3: { rounds: cpu.cluster3, median: medianOf(cpu.cluster3, CPU_KEYS) },
      clusterOverSingleCpu: perRound(cpu.cluster3, cpu.redis, (x) => x.redisCpuUsPerTransfer) },
    spread: { cluster3: three, cluster1: variant(spread.cluster1),
      threeOverOne: perRound(spread.cluster3, spread.cluster1, (x) => x.transfersPerS),
      perPrimaryTransfersPerRedisCpuS: perPrimary,
      expectedTransfersPerS: perPrimary === null ? null : perPrimary * setup.primaries } };
}

// ---------------------------------------------------------------------------------------------
// latest.md

const coresText = (f: Cores, redis: number) => `${fmt(f.serverCores, 2)} / ${fmt(redis, 2)} / ` +
  `${fmt(f.loaderCores, 2)} | ${fmt(Math.max(0, f.machineCores - f.serverCores - f.redisCores
    - f.loaderCores), 2)}`;

function cpuTable(c: ClusterResult): string[] {
  const rows: Array<[string, CpuFigures]> = [['one redis-server', c.cpu.redis.median],
    [`cluster, ${c.primaries} primaries`, c.cpu.cluster3.median]];
  return ['| Redis | transfers/s | p50 ms | p99 ms | Redis CPU µs/tr (Σ nodes) | ' +
    'of which idle nodes | Redis script µs/tr | server CPU µs/tr | ' +
    'cores server / Redis / load | other cores |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|', ...rows.map(([label, f]) => `| ${label} | ` +
    `${fmt(f.transfersPerS)} | ${fmt(f.p50Ms, 2)} | ${fmt(f.p99Ms, 2)} | ` +
    `**${fmt(f.redisCpuUsPerTransfer, 1)}** | ${fmt(f.idleNodesCpuUsPerTransfer, 1)} | ` +
    `${fmt(f.redisScriptUsPerTransfer, 1)} | ` +
    `${fmt(f.serverCpuUsPerTransfer, 1)} | ${coresText(f, f.redisCores)} |`)];
}

function spreadTable(c: ClusterResult): string[] {
  const rows = [[`${c.primaries} primaries`, c.spread.cluster3] as const,
    ['1 primary (every slot)', c.spread.cluster1] as const];
  return ['| cluster | transfers/s | p99 ms (worst ledger) | Redis CPU µs/tr | ' +
    'Redis cores per primary | transfers per Redis CPU second, per primary | ' +
    'cores server / Redis Σ / load | other cores |', '|---|--:|--:|--:|--:|--:|--:|--:|',
  ...rows.map(([label, v]) => `| ${label} | **${fmt(v.median.transfersPerS)}** | ` +
    `${fmt(v.median.p99Ms, 0)} | ${fmt(v.median.redisCpuUsPerTransfer, 1)} | ` +
    `${v.nodes.map((n) => fmt(n.redisCores, 2)).join(' / ')} | ` +
    `${v.nodes.map((n) => fmt(n.transfersPerRedisCpuS)).join(' / ')} | ` +
    `${coresText(v.median, v.median.redisCores)} |`)];
}

/**
 * What held one variant of figure 2 back on this machine. A thread running or waiting for a
 * core (runnable) nearly all the time is the bottleneck, however little CPU it got.
 */
function bound(label: string, v: ClusterResult['spread']['cluster1'], machineCores: number,
  appendfsync: string): string {
  const m = v.median;
  const busiest = v.nodes.reduce((a, n) => (n.redisCores + n.waitCores
    > a.redisCores + a.waitCores ? n : a));
  const other = Math.max(0, m.machineCores - m.serverCores - m.loaderCores - m.redisCores);
  const [service, primary] = [m.serverCores + m.serverWaitCores,
    busiest.redisCores + busiest.waitCores];
  const limit = Math.max(service, primary) >= 0.9 ? `${service >= primary
    ? 'the service\'s event loop' : `the main thread of ${busiest.name}`}, runnable ` +
      `${fmt(Math.max(service, primary), 2)} s/s` : m.machineCores >= 0.9 * machineCores
    ? `the machine's ${machineCores} cores, all busy` : `no core: a wait (round trips${
      appendfsync === 'always' ? ', each primary\'s fsync before it answers' : ''})`;
  return `- ${label}: ${limit}. Busy: ${fmt(m.machineCores, 2)} cores, the service ` +
    `${fmt(m.serverCores, 2)}, the load generator ${fmt(m.loaderCores, 2)}, Redis ` +
    `${fmt(m.redisCores, 2)}, other processes ${fmt(other, 2)}. Waiting for a core: the ` +
    `service's event loop ${fmt(m.serverWaitCores, 2)} s/s, each primary's main thread ` +
    `${v.nodes.map((n) => fmt(n.waitCores, 2)).join(' / ')} s/s.`;
}

function caveats(c: ClusterResult): string[] {
  const segments = [...(['redis', 'cluster3'] as const).flatMap((v) => c.cpu[v].rounds.map(
    (x) => ({ at: `${v} single round ${x.round}`, bad: x.non2xx + x.errors, x }))),
  ...(['cluster3', 'cluster1'] as const).flatMap((v) => c.spread[v].rounds.map(
    (x) => ({ at: `${v} batches round ${x.round}`, bad: x.nonCommitted, x })))];
  const notes: string[] = [];
  const bad = segments.filter((g) => g.bad > 0).map((g) => g.at);
  if (bad.length > 0) notes.push(`**answers other than committed in ${bad.join(', ')}** (JSON)`);
  const rewrites = segments.filter((g) => g.x.aofRewriteDuring).map((g) => g.at);
  if (rewrites.length > 0) {
    notes.push(`an AOF rewrite (a forked child, counted in other processes) ran during ` +
      rewrites.join(', '));
  }
  return notes.length === 0 ? [] : ['', `Note: ${notes.join('; ')}.`];
}

/** The cluster section of latest.md; nothing for a run written before it was measured. */
export function clusterSection(r: Results): string[] {
  return r.cluster === undefined ? [] : clusterMarkdown(r.cluster, r.machine.cores);
}

export function clusterMarkdown(c: ClusterResult, machineCores: number): string[] {
  const s = c.spread;
  const miss = c.cpu.clusterOverSingleCpu === null
    || c.cpu.clusterOverSingleCpu > PROPOSED_CLUSTER_CPU_OVER_SINGLE_MAX;
  const perRoundCpu = (['redis', 'cluster3'] as const).map((v) => `${v} ` +
    c.cpu[v].rounds.map((x) => fmt(x.redisCpuUsPerTransfer, 1)).join(' / '));
  return ['', `## Ledgers on Redis Cluster (appendfsync ${c.appendfsync}, no replicas)`, '',
    'Every node is started as (c)\'s Redis, plus `cluster-enabled yes`; the product with ' +
    'REDIS_CLUSTER_NODES (or REDIS_URL for one redis-server), each variant its own, on this ' +
    `machine. Medians of ${c.cpu.redis.rounds.length} interleaved round(s).`, '',
    `**1. Redis CPU per single transfer.** POST /ledgers/${c.cpuLedger}/transfers, ` +
    `${c.connections} connections, ${fmt(c.accountsPerLedger)} accounts, as (c): one ` +
    `redis-server against a cluster of ${c.primaries} primaries (the ledger on one of them; ` +
    'INFO cpu summed over every node, idle ones too).', '', ...cpuTable(c), '',
    `Ratio cluster ÷ one redis-server (Redis CPU per transfer, median of each round's ratio; ` +
    `proposed goal ≤ ${PROPOSED_CLUSTER_CPU_OVER_SINGLE_MAX}×, not adopted): ` +
    `${miss ? `**${times(c.cpu.clusterOverSingleCpu)}**` : times(c.cpu.clusterOverSingleCpu)}` +
    ` · per round (µs): ${perRoundCpu.join(' · ')}`, '',
    `**2. Batches on ${c.ledgers.length} ledgers at once.** POST /ledgers/<l>/transfers/batch ` +
    `(${c.batchSize} transfers, atomic:false), ${c.batchConnectionsPerLedger} connections per ` +
    `ledger, on ${c.ledgers.map((l) => `${l.name} (slot ${l.slot}, primary ${l.primary})`)
      .join(', ')}: against ${c.primaries} primaries, and against 1 primary holding every ` +
    'slot (the same client and cluster-enabled Redis, so that only the number of primaries ' +
    'differs). Transfers are items answered 201 (committed).', '', ...spreadTable(c), '',
    `Ratio ${c.primaries} primaries ÷ 1 (transfers/s, median of each round's ratio): ` +
    `**${times(s.threeOverOne)}** · per round: ${(['cluster3', 'cluster1'] as const).map((v) =>
      `${v} ${s[v].rounds.map((x) => fmt(x.transfersPerS)).join(' / ')}`).join(' · ')}`, '',
    'What bounds it here (medians; runnable = running + waiting for a core):',
    bound(`${c.primaries} primaries`, s.cluster3, machineCores, c.appendfsync),
    bound('1 primary', s.cluster1, machineCores, c.appendfsync), '',
    `With a core per primary: a primary here did ${fmt(s.perPrimaryTransfersPerRedisCpuS)} ` +
    `transfers per second of its CPU (median of the ${c.primaries}; 1 primary: ` +
    `${fmt(s.cluster1.nodes[0]?.transfersPerRedisCpuS)}), so ${c.primaries} primaries on a ` +
    `core each would take **~${fmt(s.expectedTransfersPerS)} transfers/s**, given service ` +
    'instances and clients enough to feed them: an estimate from CPU alone' +
    (c.appendfsync === 'always' ? ' (under `appendfsync always` a primary also waits for its ' +
      'fsyncs, which a busy one shares among more writes).' : '.'), ...caveats(c)];
}
