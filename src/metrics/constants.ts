/**
 * The numbers behind the metrics, each named once with why it is that number. Units last. They
 * tune observation, not what the service accepts, so they live here rather than in limits.ts
 * (whose table docs/configuration.md documents as the service's limits).
 */

/**
 * How often Redis's INFO, SLOWLOG and readiness are read into gauges. Below Prometheus's usual
 * 15 s scrape so each scrape sees fresh values; one poll is ~6 cheap commands, so 5 s costs
 * Redis nothing measurable.
 */
export const METRICS_POLL_INTERVAL_MS = 5_000;

/**
 * Script latency, measured around EVALSHA (so it includes the loopback or LAN round trip):
 * our scripts run in tens of microseconds, a LAN adds a few hundred, and anything near the
 * top bucket means Redis is blocked for every client. 25 µs … 0.5 s.
 */
export const SCRIPT_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
];

/**
 * Whole-request latency: a transfer is well under a millisecond in process plus the script;
 * the top bucket is the request timeout (HTTP_REQUEST_TIMEOUT_MS, 10 s).
 */
export const HTTP_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * The script p99 above which `LedgerScriptLatencyHigh` fires (deploy/prometheus/alerts.yml
 * records it as `ledger:script_duration_p99_threshold:seconds`; a test keeps the two equal).
 * A script blocks all of Redis while it runs: 10 ms at p99 is ~100x our normal latency and
 * means every other client waits behind it. It is a bucket bound, so the quantile is exact there.
 */
export const SCRIPT_P99_THRESHOLD_SECONDS = 0.01;

/**
 * SLOWLOG entries read per poll to find the slowest recent one: Redis keeps 128 by default,
 * and the most recent 10 are what "recent" means at a 5 s poll.
 */
export const SLOWLOG_RECENT_ENTRIES = 10;

/**
 * With LEDGER_WORKERS > 1, how long the primary waits for each worker's metrics when one worker
 * serves `GET /metrics`. A worker answers in about a millisecond (its registry as JSON); one
 * that takes a second has a blocked event loop, and waiting longer would only make the scrape
 * late too (Prometheus gives up at 10 s by default). A late worker is reported by
 * `ledger_workers{state="late"}`, and its counters by their last answer (src/metrics/cluster.ts).
 */
export const METRICS_GATHER_TIMEOUT_MS = 1_000;

// Startup assertions on how these relate (programmer errors).
if (!SCRIPT_DURATION_BUCKETS_SECONDS.includes(SCRIPT_P99_THRESHOLD_SECONDS)) {
  throw new Error('metrics: SCRIPT_P99_THRESHOLD_SECONDS must be a script-duration bucket bound');
}
for (const buckets of [SCRIPT_DURATION_BUCKETS_SECONDS, HTTP_DURATION_BUCKETS_SECONDS]) {
  if (buckets.some((b, i) => i > 0 && b <= (buckets[i - 1] as number))) {
    throw new Error('metrics: bucket bounds must increase');
  }
}

/**
 * Currencies are the clients' own strings: a `currency` label takes at most this many values
 * (the largest by open holds), the rest summed as "other", so no client can grow the series.
 */
export const METRICS_CURRENCIES_MAX = 16;

/**
 * WAIT for replica acknowledgements: ~0.2 ms on loopback, a LAN round trip in a real
 * deployment, up to LEDGER_REPLICA_ACK_TIMEOUT_MS (at most 0.5 s) when replicas are missing.
 */
export const REPLICA_ACK_WAIT_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] as const;
