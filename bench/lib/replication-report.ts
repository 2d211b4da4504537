/**
 * The replica acknowledgement figures (bench/lib/replication.ts) in latest.md, and their goal
 * (issue 14: single transfers with LEDGER_REPLICA_ACKS=1 at least 0.7× the same service without
 * acks, against the same primary and replica), reported like every other goal, never enforced.
 */
import { type AckFigures, REPLICATION_VARIANTS, type ReplicationResult,
  type ReplicationVariant } from './replication.js';
import { type Goal, goal, type Results } from './results.js';
import { fmt, times } from './stats.js';

/** The issue's bound: what waiting for one replica may cost a single transfer, at most. */
export const ACKS_OVER_NO_ACKS_MIN = 0.7;


const LABELS: Record<ReplicationVariant, string> = {
  acks0: 'product POST /transfers, LEDGER_REPLICA_ACKS=0',
  acks1: 'product POST /transfers, LEDGER_REPLICA_ACKS=1 (WAIT 1)',
};

/** Runs written before replica acks were measured have no `replication`: no goal then. */
export function replicationGoals(r: ReplicationResult | undefined): Goal[] {
  if (r === undefined) return [];
  return [goal(`single transfers with replica acks ≥ ${ACKS_OVER_NO_ACKS_MIN}× without ` +
    '(LEDGER_REPLICA_ACKS=1 ÷ 0, one replica, same pair)', r.appendfsync, r.acksOverNoAcks,
  '×', (v) => v >= ACKS_OVER_NO_ACKS_MIN)];
}

function acksText(a: AckFigures | null): string {
  if (a === null) return '—';
  return `${fmt(a.writesPerWait, 1)} writes per WAIT (${fmt(a.waits)} WAITs), WAIT mean ` +
    `${fmt(a.waitMeanMs, 2)} ms, p50 ~${fmt(a.waitP50Ms, 2)} ms` +
    (a.failures > 0 ? `, **${fmt(a.failures)} writes answered 503**` : '');
}

function table(r: ReplicationResult): string[] {
  const out = ['| server | transfers/s | p50 ms | p99 ms | half max: target/s | ' +
    'half max: paced p99 ms | cores server / primary / replica / load | other cores |',
  '|---|--:|--:|--:|--:|--:|--:|--:|'];
  for (const v of REPLICATION_VARIANTS) {
    const { median: m, halfRate: h } = r.variants[v];
    out.push(`| ${LABELS[v]} | ${fmt(m.transfersPerS)} | ${fmt(m.p50Ms, 2)} | ` +
      `${fmt(m.p99Ms, 2)} | ${fmt(h?.targetPerS)} | **${fmt(h?.p99Ms, 2)}** | ` +
      `${fmt(m.serverCores, 2)} / ${fmt(m.primaryCores, 2)} / ${fmt(m.replicaCores, 2)} / ` +
      `${fmt(m.loaderCores, 2)} | ${fmt(Math.max(0, m.machineCores - m.serverCores
        - m.primaryCores - m.replicaCores - m.loaderCores), 2)} |`);
  }
  return out;
}

/** Anything that makes a round's figure suspect, said once. */
function caveats(r: ReplicationResult): string[] {
  const segments = REPLICATION_VARIANTS.flatMap((v) => r.variants[v].rounds
    .map((x) => ({ v, x })));
  const notes: string[] = [];
  const bad = segments.filter(({ x }) => x.non2xx + x.errors > 0);
  if (bad.length > 0) {
    notes.push(`non-2xx or errors in ${bad.map(({ v, x }) => `${v} round ${x.round} ` +
      JSON.stringify(x.statusCodes)).join(', ')}`);
  }
  const rewrites = segments.filter(({ x }) => x.aofRewriteDuring).length;
  if (rewrites > 0) notes.push(`an AOF rewrite ran during ${rewrites} segment(s)`);
  const down = segments.filter(({ x }) => !x.linkUp).length;
  if (down > 0) notes.push(`**the replica's link was down after ${down} segment(s)**`);
  return notes.length === 0 ? [] : ['', `Note: ${notes.join('; ')}.`];
}

/** The replication section of latest.md; nothing for a run written before it was measured. */
export function replicationSection(results: Results): string[] {
  const r = results.replication;
  if (r === undefined) return [];
  const spread = REPLICATION_VARIANTS.map((v) => `${v} ` +
    r.variants[v].rounds.map((x) => fmt(x.transfersPerS)).join(' / '));
  const a1 = r.variants.acks1;
  const miss = r.acksOverNoAcks === null || r.acksOverNoAcks < ACKS_OVER_NO_ACKS_MIN;
  return ['', `## Replica acknowledgements (a primary and a replica of their own, ` +
    `appendfsync ${r.appendfsync})`, '',
  'The product twice against one primary and one replica on this machine (both with AOF, ' +
    `the replica's link up ${fmt(r.linkUpS, 1)} s after it started), ${r.connections} ` +
    'connections each: LEDGER_REPLICA_ACKS=0, and =1, which answers a write only once the ' +
    'replica has it (Redis WAIT, one for every write answered since the last: group commit). ' +
    'The replica applies the same stream in both, so the difference is the WAIT. Medians of ' +
    `${a1.rounds.length} interleaved round(s); half max: paced even arrivals at half of ` +
    'each variant\'s own maximum, measured just before. Loopback: a replica across a network ' +
    'adds its round trip to every WAIT.', '', ...table(r), '',
  `Ratio acks1 ÷ acks0 (single transfers/s, median of each round's ratio; goal ≥ ` +
    `${ACKS_OVER_NO_ACKS_MIN}×): ${miss ? `**${times(r.acksOverNoAcks)}**`
    : times(r.acksOverNoAcks)} · per round (transfers/s): ${spread.join(' · ')}`, '',
  `From the acks1 product's /metrics (ledger_replica_ack_writes_total ÷ ` +
    'ledger_replica_ack_wait_seconds_count; the p50 interpolated within the histogram\'s ' +
    `bucket): at max throughput ${acksText(r.acks)}; at half max ` +
    `${acksText(a1.halfRate?.acks ?? null)}.`, ...caveats(r)];
}
