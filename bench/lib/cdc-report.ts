/**
 * The change-data figures (bench/lib/cdc.ts) in latest.md, and their goals, reported like
 * every other goal, never enforced: single transfers with the publisher at least 0.9× without
 * it; publishing at least as fast as the batch endpoint commits at its peak.
 */
import type { CdcCores, CdcFigures, CdcResult, CdcSection, CdcSegment } from './cdc.js';
import { type Goal, goal, type Results } from './results.js';
import { fmt, times } from './stats.js';

/** What publishing change data may cost a single transfer, at most. */
export const CDC_ON_OVER_OFF_MIN = 0.9;
/** Publishing keeps up with the fastest way in: the batch endpoint at its peak. */
export const CDC_CATCH_UP_OVER_PEAK_MIN = 1;

const ON_OVER_OFF_GOAL = `single transfers with change data published ≥ ${CDC_ON_OVER_OFF_MIN}× ` +
  'without (LEDGER_CDC_AMQP_URL set ÷ unset, a Redis each)';
const CATCH_UP_GOAL = 'publishing keeps up with the batch endpoint\'s peak: catch-up records/s ' +
  `÷ batch committed transfers/s ≥ ${CDC_CATCH_UP_OVER_PEAK_MIN}×`;

/** Runs written before change data was measured have no `cdc`: no goal then. */
export function cdcGoals(r: CdcSection | undefined): Goal[] {
  if (r === undefined) return [];
  const ok = r.available ? r : undefined;
  return [
    goal(ON_OVER_OFF_GOAL, r.appendfsync, ok?.single.onOverOff, '×',
      (v) => v >= CDC_ON_OVER_OFF_MIN),
    goal(CATCH_UP_GOAL, r.appendfsync, ok?.catchUpOverPeak, '×',
      (v) => v >= CDC_CATCH_UP_OVER_PEAK_MIN),
  ];
}

const coresText = (f: CdcCores) => `${fmt(f.serverCores, 2)} / ${fmt(f.redisCores, 2)} / ` +
  `${fmt(f.brokerCores, 2)} / ${fmt(f.benchCores, 2)} | ${fmt(Math.max(0, f.machineCores
    - f.serverCores - f.redisCores - f.brokerCores - f.benchCores), 2)}`;

function row(label: string, f: CdcFigures, on: boolean): string {
  return `| ${label} | ${fmt(f.transfersPerS)} | ${fmt(f.p50Ms, 2)} | ${fmt(f.p99Ms, 2)} | ` +
    `${on ? fmt(f.publishedPerS) : '—'} | ${on ? fmt(f.lagRecords) : '—'} | ` +
    `${on ? fmt(f.drainS, 2) : '—'} | ${fmt(f.serverCpuUsPerTransfer, 1)} | ` +
    `${on ? fmt(f.brokerCpuUsPerTransfer, 1) : '—'} | ${coresText(f)} |`;
}

function table(c: CdcResult): string[] {
  return ['| load, publisher | transfers/s | p50 ms | p99 ms | published/s | ' +
    'unpublished at the end | caught up after s | service CPU µs/tr | broker CPU µs/tr | ' +
    'cores service / Redis / broker / bench | other cores |',
  '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  row('(c) POST /transfers, publisher on', c.single.on.median, true),
  row('(c) POST /transfers, publisher off', c.single.off.median, false),
  row(`(d) batch of ${fmt(c.batchSize)}, atomic:false, publisher on`, c.batch.on.median, true),
  row(`(d) batch of ${fmt(c.batchSize)}, atomic:false, publisher off`, c.batch.off.median,
    false)];
}

const verdict = (value: number | null, miss: boolean) => (value === null ? '**not available**'
  : miss ? '**not met**' : 'met');

/** Each round's figure, `′` where it ran second in its round. */
function perRound(rounds: readonly CdcSegment[], value: (x: CdcSegment) => string): string {
  return rounds.map((x) => `${value(x)}${x.position === 1 ? '' : '′'}`).join(' / ');
}

/** Anything that makes a figure suspect, said once. */
function caveats(c: CdcResult): string[] {
  const segments = (['single', 'batch'] as const).flatMap((load) => (['on', 'off'] as const)
    .flatMap((side) => c[load][side].rounds.map((x) => ({ at: `${load} ${side} round ` +
      `${x.round}`, x }))));
  const notes: string[] = [];
  const bad = segments.filter(({ x }) => x.non2xx + x.errors > 0
    || (x.itemStatuses !== undefined
      && Object.entries(x.itemStatuses).some(([k, v]) => k !== '201' && v > 0)));
  if (bad.length > 0) {
    notes.push(`**answers other than committed in ${bad.map((b) => `${b.at} ` +
      `${JSON.stringify(b.x.statusCodes)} ${JSON.stringify(b.x.itemStatuses ?? {})}`)
      .join(', ')}**`);
  }
  const errors = segments.filter(({ x }) => (x.cdcErrors ?? 0) > 0);
  if (errors.length > 0 || c.catchUp.cdcErrors > 0) {
    notes.push(`**publisher errors (ledger_cdc_errors_total) in ${[...errors.map((e) =>
      `${e.at}: ${e.x.cdcErrors}`), ...(c.catchUp.cdcErrors > 0
      ? [`the catch-up: ${c.catchUp.cdcErrors}`] : [])].join(', ')}**`);
  }
  const stuck = segments.filter(({ x }) => x.lagRecords !== null && x.drainS === null);
  if (stuck.length > 0) {
    notes.push(`**the publisher had not caught up 120 s after ${stuck.map((b) => b.at)
      .join(', ')}**`);
  }
  if (!c.catchUp.finished) notes.push('**the catch-up did not finish**');
  const rewrites = segments.filter(({ x }) => x.aofRewriteDuring).map((b) => b.at);
  if (rewrites.length > 0) notes.push(`an AOF rewrite ran during ${rewrites.join(', ')}`);
  if (c.queueDepth > 0) {
    notes.push(`${fmt(c.queueDepth)} messages were left in the bench's queue at the end`);
  }
  return notes.length === 0 ? [] : ['', `Note: ${notes.join('; ')}.`];
}

/** The change-data section of latest.md; nothing for a run written before it was measured. */
export function cdcSection(results: Results): string[] {
  return results.cdc === undefined ? [] : cdcMarkdown(results.cdc);
}

export function cdcMarkdown(c: CdcSection): string[] {
  const title = `## Change data out (a RabbitMQ of its own, appendfsync ${c.appendfsync})`;
  if (!c.available) return ['', title, '', c.reason];
  const miss = c.single.onOverOff === null || c.single.onOverOff < CDC_ON_OVER_OFF_MIN;
  const k = c.catchUp;
  const peak = c.batch.peakTransfersPerS;
  const catchUpMiss = c.catchUpOverPeak === null
    || c.catchUpOverPeak < CDC_CATCH_UP_OVER_PEAK_MIN;
  const lags = c.single.on.rounds.map((x) => `${fmt(x.lagRecords)} (gauge ` +
    `${fmt(x.lagRecordsMetric)})`);
  const batchLags = c.batch.on.rounds.map((x) => `${fmt(x.lagRecords)} (gauge ` +
    `${fmt(x.lagRecordsMetric)})`);
  return ['', title, '',
    `RabbitMQ ${c.brokerVersion}, the bench's own (test/helpers/rabbitmq.ts; up in ` +
    `${fmt(c.brokerStartS, 1)} s), on this machine. The product twice, each on a redis-server ` +
    'of its own started as (c)\'s: with LEDGER_CDC_AMQP_URL (every committed record published ' +
    `to the durable topic exchange \`${c.exchange}\`, persistent, publisher confirms, pages of ` +
    `up to ${c.pageSize} records, a pass every ${c.intervalMs} ms) and without. A consumer in ` +
    'the bench process drains a durable queue bound `#` (noAck). Medians of ' +
    `${c.single.on.rounds.length} interleaved round(s), alternating which goes first; ` +
    `${c.connections} connections for (c), ${c.batchConnections} for (d), ${fmt(c.accounts)} ` +
    'accounts. "unpublished at the end": the journal\'s head minus the publisher\'s saved ' +
    'position in Redis when the load stopped; "caught up after": until it had every record ' +
    '(the next segment waits for it). Cores: the service, its Redis, the broker (beam.smp), ' +
    'the bench (load generator and consumer).', '', ...table(c), '',
    `**1. Single transfers, publisher on ÷ off** (median of each round's ratio): ` +
    `${miss ? `**${times(c.single.onOverOff)}**` : times(c.single.onOverOff)}, goal ≥ ` +
    `${CDC_ON_OVER_OFF_MIN}× ${verdict(c.single.onOverOff, miss)} · per round ` +
    '(transfers/s; ′: it ran second in its round): on ' +
    `${perRound(c.single.on.rounds, (x) => fmt(x.transfersPerS))} · off ` +
    `${perRound(c.single.off.rounds, (x) => fmt(x.transfersPerS))}. Service CPU per transfer ` +
    `on ÷ off: ${times(c.single.serverCpuOnOverOff)} (per round, µs: on ` +
    `${perRound(c.single.on.rounds, (x) => fmt(x.serverCpuUsPerTransfer, 1))} · off ` +
    `${perRound(c.single.off.rounds, (x) => fmt(x.serverCpuUsPerTransfer, 1))}): on a ` +
    'machine whose cores are all busy, what the publisher and the broker take is taken from ' +
    'the service, so this says more of the publisher\'s own cost. Unpublished at the end ' +
    `of each on segment: ${lags.join(' / ')}; batches on ÷ off ${times(c.batch.onOverOff)}.`,
    '',
    `**2. Publishing against the batch endpoint's peak** (${fmt(peak)} committed transfers/s, ` +
    'the higher of the two medians above). While its batches ran, the publisher confirmed ' +
    `${fmt(c.batch.on.median.publishedPerS)} records/s (${times(c.batch.publishedOverPeak)} ` +
    `the peak) · per round: ${perRound(c.batch.on.rounds, (x) => `${fmt(x.publishedPerS)} of ` +
    `${fmt(x.transfersPerS)}`)}; unpublished at the end ${batchLags.join(' / ')}, caught up ` +
    `${perRound(c.batch.on.rounds, (x) => fmt(x.drainS, 2))} s later.`, '',
    `Catch-up, by the publishing product, after the rounds: ${fmt(k.backlog)} records ` +
    `committed before them (batches, ${fmt(k.fillS, 1)} s) to a ledger of its own, ` +
    `\`${k.ledger}\`, while the bench held that ledger's publisher lock (as another ` +
    'instance publishing it would); then let go: ' + (k.finished
      ? `all published ${fmt(k.totalS, 2)} s later, the first page after ` +
        `${fmt(k.firstPageS, 2)} s (the publisher tries a lock it found taken again only ` +
        `after a while), then **${fmt(k.recordsPerS)} records/s** ` +
        `(cores service / Redis / broker / bench ${coresText(k).replace(' |', ', other')})`
      : '**not all published within the bound**') +
    `. Catch-up ÷ peak: ${catchUpMiss ? `**${times(c.catchUpOverPeak)}**`
      : times(c.catchUpOverPeak)}, goal ≥ ${CDC_CATCH_UP_OVER_PEAK_MIN}× ` +
    `${verdict(c.catchUpOverPeak, catchUpMiss)}.`, '',
    `The bench's consumer received ${fmt(c.consumed)} messages; ${fmt(c.queueDepth)} left in ` +
    'its queue at the end.', ...caveats(c)];
}
