/**
 * The metrics of one ledger and its app, created before either: the ledger is given `observer`
 * at construction and reports every script call, read and decided outcome to it; the app's
 * metrics plugin adds the HTTP histogram and the Redis poller to the same registry. Nothing is
 * attached or swapped later.
 */
import type { Registry } from 'prom-client';
import { ARCHIVE_ERROR_REASONS, type ArchiveObserver } from '../archive/archiver.js';
import { CDC_ERROR_REASONS, type CdcObserver } from '../cdc/amqp.js';
import type { LedgerObserver } from '../ledger/types.js';
import { CLUSTER_RETRY_REASONS } from '../redis/cluster.js';
import { METRICS_POLL_INTERVAL_MS } from './constants.js';
import { decisionRecorder, readRecorder, scriptRecorder } from './recorders.js';
import { createRegistry, type Metrics } from './registry.js';

export interface LedgerMetricsOptions {
  /** Redis INFO/SLOWLOG/readiness polling; default METRICS_POLL_INTERVAL_MS. */
  pollIntervalMs?: number;
  /** prom-client's process metrics (event loop, heap, GC); default true. */
  defaultMetrics?: boolean;
  /** Where a failure to record goes (never into a transfer); default: standard error. */
  onError?: (error: unknown) => void;
  /**
   * In a worker of LEDGER_WORKERS > 1: its slot (the `worker` label of its process metrics)
   * and how to get the whole service's exposition (src/workers.ts asks the primary).
   */
  cluster?: { worker: number; gather: () => Promise<string> };
}

export interface LedgerMetrics {
  readonly registry: Registry;
  readonly series: Metrics;
  /** Give this to the Ledger at construction. */
  readonly observer: LedgerObserver;
  /** Give this to the change-data publisher (src/cdc/). */
  readonly cdc: CdcObserver;
  /** Give this to the archiver (src/archive/). */
  readonly archive: ArchiveObserver;
  readonly pollIntervalMs: number;
  /** What `GET /metrics` serves: this registry, or in a cluster the whole service's. */
  readonly exposition: () => Promise<string>;
}

export function createLedgerMetrics(options: LedgerMetricsOptions = {}): LedgerMetrics {
  const cluster = options.cluster;
  const series = createRegistry({ defaultMetrics: options.defaultMetrics ?? true,
    ...(cluster === undefined ? {} : { worker: String(cluster.worker) }) });
  const onError = options.onError ??
    ((error: unknown) => console.error('metrics: recording a script call failed', error));
  const observer: LedgerObserver = {
    ...scriptRecorder(series.scriptDuration, onError),
    ...readRecorder(series.reads),
    ...decisionRecorder(series.transfers, series.accountCreations, series.batchRefusals,
      series.holds, series.holdSweepCalls),
    acksWaited: (seconds, writes, failed) => {
      try {
        series.replicaAckWait.observe(seconds);
        series.replicaAckWrites.inc(writes);
        if (failed > 0) series.replicaAckFailures.inc(failed);
      } catch (error) {
        onError(error);
      }
    },
    clusterRetried: (reason) => {
      try {
        series.clusterRetries.labels({ reason }).inc();
      } catch (error) {
        onError(error);
      }
    },
  };
  const guarded = <A extends unknown[]>(record: (...args: A) => void) => (...args: A) => {
    try {
      record(...args);
    } catch (error) {
      onError(error);
    }
  };
  const cdc: CdcObserver = {
    published: guarded((messages: number) => series.cdcPublished.inc(messages)),
    failed: guarded((reason) => series.cdcErrors.labels({ reason }).inc()),
    connected: guarded((up: boolean) => series.cdcBrokerUp.set(up ? 1 : 0)),
    lag: guarded((records: number, seconds: number) => {
      series.cdcLagRecords.set(records);
      series.cdcLagSeconds.set(seconds);
    }),
  };
  const archive: ArchiveObserver = {
    archived: guarded((records: number, rejections: number) => {
      series.archived.labels({ stream: 'journal' }).inc(records);
      series.archived.labels({ stream: 'rejections' }).inc(rejections);
    }),
    freed: guarded((records: number) => series.archiveFreed.inc(records)),
    yielded: guarded(() => series.archiveYields.inc()),
    error: guarded((reason) => series.archiveErrors.labels({ reason }).inc()),
    lag: guarded((records: number, seconds: number, decided: number) => {
      series.archiveLagRecords.set(records);
      series.archiveLagSeconds.set(seconds);
      series.archiveDecided.set(decided);
    }),
  };
  // Present at 0 from the start, so rate() and the dashboard see them.
  for (const reason of ARCHIVE_ERROR_REASONS) series.archiveErrors.labels({ reason }).inc(0);
  for (const stream of ['journal', 'rejections']) series.archived.labels({ stream }).inc(0);
  for (const reason of CLUSTER_RETRY_REASONS) series.clusterRetries.labels({ reason }).inc(0);
  for (const reason of CDC_ERROR_REASONS) series.cdcErrors.labels({ reason }).inc(0);
  return { registry: series.registry, series, observer, cdc, archive,
    pollIntervalMs: options.pollIntervalMs ?? METRICS_POLL_INTERVAL_MS,
    exposition: cluster?.gather ?? (() => series.registry.metrics()) };
}
