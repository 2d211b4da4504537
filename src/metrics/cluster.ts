/**
 * One `/metrics` for the whole service when LEDGER_WORKERS > 1: what the primary makes of its
 * workers' registries (src/workers.ts carries them over IPC; nothing here touches node:cluster).
 *
 * - Service metrics (`ledger_*`) combine by each metric's `aggregator` (registry.ts): counters
 *   and histograms are summed, the Redis gauges take min or max.
 * - Process metrics carry a `worker` label (registry.ts) and are kept per worker: a sum of
 *   event-loop lags or of file-descriptor limits would mean nothing, and prom-client's own
 *   cluster choice (an average of lags) would hide the one worker that is stuck.
 * - A summed counter must never go backwards, or Prometheus reads a reset and `rate()` counts
 *   the whole total again. So the primary keeps each worker's last counters and histograms: a
 *   worker late for one scrape is counted by its last answer, and a worker that exits leaves
 *   its counts behind (`retired`), in every later scrape. Only what it counted after its last
 *   scrape is lost when it dies: an undercount, never a reset.
 */
import { Counter, Gauge, type Metric, Registry } from 'prom-client';

/** One sample as prom-client's `getMetricsAsJSON` gives it. */
export interface SampleJson {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** One metric as prom-client's `getMetricsAsJSON` gives it (its typings say less). */
export interface MetricJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: SampleJson[];
}

/** The label process metrics carry in a worker: its slot, 1…LEDGER_WORKERS. */
export const WORKER_LABEL = 'worker';

type Combine = (a: number, b: number) => number;

const COMBINE: Readonly<Record<string, Combine>> = {
  sum: (a, b) => a + b,
  min: Math.min,
  max: Math.max,
};
const keepFirst: Combine = (a) => a;

const isPerWorker = (m: MetricJson) => m.values.some((s) => WORKER_LABEL in s.labels);

/** Counters and histograms of the service: what must not go backwards when a worker is gone. */
const counting = (m: MetricJson) =>
  (m.type === 'counter' || m.type === 'histogram') && !isPerWorker(m);

function seriesKey(sample: SampleJson): string {
  const labels = Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([sample.metricName ?? '', labels]);
}

/** One metric from its copies in several parts, series by series. */
function combine(copies: readonly MetricJson[]): MetricJson {
  const first = copies[0] as MetricJson;
  // Per-worker series differ by their `worker` label: each is kept as its worker reported it.
  const fn = copies.some(isPerWorker) ? keepFirst : COMBINE[first.aggregator];
  // A metric with no samples yet (a process metric before its first reading) has no label to
  // tell, and nothing to combine.
  if (fn === undefined && copies.some((c) => c.values.length > 0)) {
    throw new Error(`metrics: ${first.name} has aggregator ${first.aggregator}, not sum/min/max`);
  }
  const series = new Map<string, SampleJson>();
  for (const copy of copies) {
    for (const sample of copy.values) {
      const key = seriesKey(sample);
      const seen = series.get(key);
      series.set(key, seen === undefined ? { ...sample }
        : { ...seen, value: (fn as Combine)(seen.value, sample.value) });
    }
  }
  const { name, help, type, aggregator } = first;
  return { name, help, type, aggregator, values: [...series.values()] };
}

/** Several registries' JSON as one: metrics by name, in the order they first appear. */
export function combineParts(parts: ReadonlyArray<readonly MetricJson[]>): MetricJson[] {
  const byName = new Map<string, MetricJson[]>();
  for (const part of parts) {
    for (const metric of part) {
      const copies = byName.get(metric.name);
      if (copies === undefined) byName.set(metric.name, [metric]);
      else copies.push(metric);
    }
  }
  return [...byName.values()].map(combine);
}

/** The Prometheus text of combined metrics, rendered by prom-client like any registry. */
export async function exposition(metrics: readonly MetricJson[]): Promise<string> {
  const registry = new Registry();
  for (const metric of metrics) {
    registry.registerMetric({ ...metric, get: async () => metric } as unknown as Metric);
  }
  return registry.metrics();
}

/** The primary's own metrics: about its workers, in every scrape of a cluster. */
export function createClusterRegistry() {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    workers: new Gauge({
      name: 'ledger_workers',
      help: 'Workers in this scrape, by state: answered (their metrics are fresh), late (no ' +
        'answer in time: their counters and histograms are their last answer, their gauges ' +
        'and process metrics left out); only with LEDGER_WORKERS > 1',
      labelNames: ['state'] as const,
      registers,
    }),
    restarts: new Counter({
      name: 'ledger_worker_restarts_total',
      help: 'Workers that exited unexpectedly and were replaced by the primary; only with ' +
        'LEDGER_WORKERS > 1',
      registers,
    }),
  };
}

/** Each worker is named by a number that is never reused (node:cluster's worker id). */
export class ClusterMetrics {
  private readonly own = createClusterRegistry();
  /** Per worker: its newest answer (by gathering number), counters and histograms only. */
  private readonly lastKnown = new Map<number, { seq: number; metrics: MetricJson[] }>();
  private retired: MetricJson[] = [];

  /** A worker exited: what it counted stays in every later scrape. */
  retire(worker: number): void {
    const last = this.lastKnown.get(worker);
    this.lastKnown.delete(worker);
    if (last !== undefined) this.retired = combineParts([this.retired, last.metrics]);
  }

  /** The primary replaced a worker that exited unexpectedly. */
  restarted(): void {
    this.own.restarts.inc();
  }

  /**
   * The whole service's exposition for gathering number `seq` (they increase): the answers of
   * the workers that answered (by worker), and the workers asked that did not answer in time.
   */
  async render(seq: number, answers: ReadonlyMap<number, MetricJson[]>, late: readonly number[]):
    Promise<string> {
    for (const [worker, metrics] of answers) {
      // Two scrapes at once may finish out of order: keep the newer answer, or a late worker's
      // counters could go back to an older one.
      if ((this.lastKnown.get(worker)?.seq ?? -1) < seq) {
        this.lastKnown.set(worker, { seq, metrics: metrics.filter(counting) });
      }
    }
    const stale = late.flatMap((worker) => this.lastKnown.get(worker)?.metrics ?? []);
    // Taken now: a worker that exits during the awaits below is retired into a new array, so
    // this scrape counts it once (by its answer), not also by what it left.
    const parts = [...answers.values(), stale, this.retired];
    this.own.workers.set({ state: 'answered' }, answers.size);
    this.own.workers.set({ state: 'late' }, late.length);
    const own = (await this.own.registry.getMetricsAsJSON()) as unknown as MetricJson[];
    return exposition(combineParts([...parts, own]));
  }
}
