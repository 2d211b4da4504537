/**
 * Every metric of the service, on a registry of its own (never prom-client's global one), so
 * two apps in one process (tests) do not collide. Names follow Prometheus practice: base units,
 * `_seconds`, `_bytes`, `_total`, and label values from closed sets only (never an id).
 * docs/operations.md's metrics table lists them; test/metrics/metrics.test.ts checks that.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  HTTP_DURATION_BUCKETS_SECONDS, METRICS_CURRENCIES_MAX, REPLICA_ACK_WAIT_BUCKETS_SECONDS,
  SCRIPT_DURATION_BUCKETS_SECONDS,
} from './constants.js';
import { LeanCounter, LeanHistogram } from './lean.js';

/**
 * How each metric combines across the workers of LEDGER_WORKERS > 1 (src/metrics/cluster.ts
 * applies it; with one process it is unused). Counters and histograms count this worker's own
 * work: `sum`. The Redis gauges are the same Redis seen by every worker's poller, at slightly
 * different moments: never summed. Health bits take `min`, so one worker that cannot reach
 * Redis or is not ready (and fails its share of the requests) shows 0; levels take `max`.
 */
type Aggregator = 'sum' | 'min' | 'max';

export interface RegistryOptions {
  defaultMetrics: boolean;
  /** A worker's slot (1…LEDGER_WORKERS): a `worker` label on its process metrics. */
  worker?: string;
}

export function createRegistry(options: RegistryOptions) {
  const registry = new Registry();
  // Event-loop lag, heap, GC, CPU, file descriptors: prom-client's standard process metrics.
  // They describe one process, so in a cluster each worker's keep its own `worker` label.
  if (options.defaultMetrics) {
    collectDefaultMetrics({ register: registry,
      ...(options.worker === undefined ? {} : { labels: { worker: options.worker } }) });
  }
  const registers = [registry];
  const gauge = (name: string, help: string, aggregator: Aggregator) =>
    new Gauge({ name, help, registers, aggregator });
  return {
    registry,
    // The three metrics recorded on every transfer are lean (see lean.ts); the rest prom-client's.
    scriptDuration: new LeanHistogram('ledger_script_duration_seconds',
      'Lua script calls, timed around EVALSHA (round trip included), by script and outcome ' +
        '(the script status lower-cased, ok for a read, or unavailable / persistence_failed / ' +
        'error when the call failed)',
      ['script', 'outcome'] as const, SCRIPT_DURATION_BUCKETS_SECONDS, registry),
    transfers: new LeanCounter('ledger_transfers_total',
      'Transfers (alone or in a batch) by outcome (committed, replayed, rejected, conflict, ' +
        'unknown, persistence_failed, error); reason is the rejection code for rejected',
      ['outcome', 'reason'] as const, registry),
    accountCreations: new LeanCounter('ledger_account_creations_total',
      'POST /accounts by outcome (created, replayed, conflict, unknown, persistence_failed, ' +
        'error)',
      ['outcome'] as const, registry),
    batchRefusals: new LeanCounter('ledger_batch_refusals_total',
      'Atomic batches refused whole, nothing applied, by kind: rejected (a transfer would be ' +
        'rejected, 422) or exists (a transfer id decided before, 409)',
      ['kind'] as const, registry),
    httpDuration: new LeanHistogram('ledger_http_request_duration_seconds',
      'HTTP requests by method, route pattern (never the raw URL) and status class (1xx … 5xx; ' +
        '422, a business rejection and not an error, is a class of its own)',
      ['method', 'route', 'status_class'] as const, HTTP_DURATION_BUCKETS_SECONDS, registry),
    reads: new LeanCounter('ledger_reads_total',
      'Reads (GET of an account, its entries, a transfer) by where they were served: primary ' +
        '(no replicas configured, or Ledger-Read-From: primary), replica, fallback_down (no ' +
        'replica connection ready) or fallback_error (a replica failed the read); both ' +
        'fallbacks were served by the primary',
      ['route'] as const, registry),
    ready: gauge('ledger_ready', '1 when the readiness checks of /readyz pass, read on a timer',
      'min'),
    redisUp: gauge('ledger_redis_up', '1 while the Redis connection is ready and answers INFO',
      'min'),
    redisCommandErrors: new Counter({
      name: 'ledger_redis_command_errors_total',
      help: 'Redis commands that failed, by kind: reply (an error reply), busy (a BUSY reply: ' +
        'a script ran past busy-reply-threshold), timeout (no answer within the command ' +
        'timeout), connection (not connected or connection lost)',
      labelNames: ['kind'] as const,
      registers,
    }),
    redisReconnects: new Counter({
      name: 'ledger_redis_reconnects_total',
      help: 'Reconnection attempts to Redis after a lost connection',
      registers,
    }),
    aofEnabled: gauge('ledger_redis_aof_enabled', 'INFO aof_enabled (1: append-only file on)',
      'min'),
    aofLastWriteOk: gauge('ledger_redis_aof_last_write_ok',
      'INFO aof_last_write_status is ok (0: Redis cannot write its AOF and refuses writes)',
      'min'),
    aofDelayedFsync: new Counter({
      name: 'ledger_redis_aof_delayed_fsync_total',
      help: 'INFO aof_delayed_fsync increases seen by this process (fsyncs Redis had to delay ' +
        'because the disk was slow; only with appendfsync everysec)',
      registers,
      // Every worker's poller sees the same increases of the same Redis: the longest-lived
      // worker's count is the service's, so `max`, not a sum that would count each N times.
      aggregator: 'max',
    }),
    aofRewriteInProgress: gauge('ledger_redis_aof_rewrite_in_progress',
      'INFO aof_rewrite_in_progress (1: an AOF rewrite is running)', 'max'),
    slowlogLength: gauge('ledger_redis_slowlog_length', 'SLOWLOG LEN: commands in the slow log',
      'max'),
    slowlogSlowest: gauge('ledger_redis_slowlog_slowest_seconds',
      'Duration of the slowest of the most recent slow-log entries (0 when the log is empty)',
      'max'),
    usedMemory: gauge('ledger_redis_used_memory_bytes', 'INFO used_memory', 'max'),
    holds: new LeanCounter('ledger_holds_total',
      'Holds by event: opened, posted, voided, expired (released by the sweeper; a post or ' +
        'void that finds a hold expired first releases it too, and counts as its rejection ' +
        'PENDING_TRANSFER_EXPIRED in ledger_transfers_total)',
      ['event'] as const, registry),
    holdSweepCalls: new Counter({
      name: 'ledger_hold_sweep_calls_total',
      help: 'Calls of the expired-hold sweep script (each releases up to HOLDS_EXPIRE_BATCH_MAX)',
      registers,
    }),
    openHolds: new Gauge({ name: 'ledger_open_holds',
      help: `Open holds by currency (at most ${METRICS_CURRENCIES_MAX} currencies, the rest ` +
        'as "other")', labelNames: ['currency'] as const, registers, aggregator: 'max' }),
    openHoldAmount: new Gauge({ name: 'ledger_open_hold_amount',
      help: 'Sum of open holds by currency, in minor units (a double: exact up to 2^53, ' +
        'approximate above; the API has the exact figure)',
      labelNames: ['currency'] as const, registers, aggregator: 'max' }),
    redisPrimary: new Gauge({ name: 'ledger_redis_primary',
      help: '1 for the Redis node (host:port) this service reads from and writes to now; ' +
        'with REDIS_SENTINELS it moves at a failover', labelNames: ['address'] as const,
      registers, aggregator: 'max' }),
    redisFailovers: new Counter({ name: 'ledger_redis_failovers_total',
      help: 'Times the service found its Redis primary at another address than before ' +
        '(a Sentinel failover)', registers,
      // Every worker sees the same failover: the service's count is one worker's, not a sum.
      aggregator: 'max' }),
    replicasConnected: gauge('ledger_redis_replicas_connected',
      'Replicas the primary reports online (INFO replication)', 'min'),
    replicaLag: new Gauge({ name: 'ledger_redis_replica_lag_seconds',
      help: 'Per replica (ip:port as the primary sees it): seconds since its last ' +
        'acknowledgement (INFO replication lag; replicas acknowledge every second)',
      labelNames: ['replica'] as const, registers, aggregator: 'max' }),
    replicaAcksRequired: gauge('ledger_replica_acks_required',
      'LEDGER_REPLICA_ACKS: replicas that must have a write before it is answered', 'max'),
    replicaAckFailures: new Counter({ name: 'ledger_replica_ack_failures_total',
      help: 'Writes answered 503 UNAVAILABLE because fewer than LEDGER_REPLICA_ACKS replicas ' +
        'acknowledged them within LEDGER_REPLICA_ACK_TIMEOUT_MS (or the connection dropped ' +
        'before they did)', registers }),
    replicaAckWrites: new Counter({ name: 'ledger_replica_ack_writes_total',
      help: 'Writes covered by a WAIT for replica acknowledgements (divided by the WAIT ' +
        'count: the average group size)', registers }),
    replicaAckWait: new Histogram({ name: 'ledger_replica_ack_wait_seconds',
      help: 'One observation per WAIT (one WAIT covers every write answered since the last)',
      buckets: [...REPLICA_ACK_WAIT_BUCKETS_SECONDS], registers }),
    clusterRetries: new Counter({ name: 'ledger_redis_cluster_retries_total',
      help: 'Scripts sent again, with the same id, after a Redis Cluster refusal that proves ' +
        'they did not run (moved, ask, tryagain while a slot migrates, clusterdown during a ' +
        'failover, unrouted while the slot map loads); past CLUSTER_RETRY_BUDGET_MS the ' +
        'answer is 503', labelNames: ['reason'] as const, registers }),
    cdcPublished: new Counter({ name: 'ledger_cdc_published_total',
      help: 'Change-data messages the broker confirmed (LEDGER_CDC_AMQP_URL); a message sent ' +
        'again after a failure counts again', registers }),
    cdcErrors: new Counter({ name: 'ledger_cdc_errors_total',
      help: 'Pages of change data the broker did not take, by reason: connect (broker ' +
        'unreachable), publish, confirm (no or negative confirms in time), returned ' +
        '(unroutable; the alternate exchange is missing); each page is sent again later',
      labelNames: ['reason'] as const, registers }),
    cdcBrokerUp: gauge('ledger_cdc_broker_up',
      '1 while the change-data publisher has a channel open to the broker', 'min'),
    cdcLagRecords: gauge('ledger_cdc_lag_records',
      'Committed records not yet published, summed over the ledgers this instance publishes',
      'sum'),
    cdcLagSeconds: gauge('ledger_cdc_lag_seconds',
      'Age of the oldest committed record not yet published (0 when none), over the ledgers ' +
        'this instance publishes', 'max'),
    archived: new Counter({ name: 'ledger_archive_records_total',
      help: 'Decided records copied to the PostgreSQL archive (LEDGER_ARCHIVE_URL), by ' +
        'stream: journal (committed) or rejections', labelNames: ['stream'] as const,
      registers }),
    archiveFreed: new Counter({ name: 'ledger_archive_freed_total',
      help: 'Archived records freed from Redis (PostgreSQL has them; their ids stay indexed)',
      registers }),
    archiveErrors: new Counter({ name: 'ledger_archive_errors_total',
      help: 'Archiver passes that failed, by reason: postgres (unreachable, refused or timed ' +
        'out), redis, mismatch (the archive disagrees with Redis: it stops until an operator ' +
        'looks; npm run audit names the divergence)', labelNames: ['reason'] as const,
      registers }),
    archiveYields: new Counter({ name: 'ledger_archive_yields_total',
      help: 'Archiver passes that copied nothing because the service was busy and the archive ' +
        'lag under LEDGER_ARCHIVE_YIELD_S: transfers first; the archive catches up when the ' +
        'load eases', registers }),
    archiveDecided: gauge('ledger_archive_decided_records',
      'Decided records (committed and rejected), archived or not, of the ledgers this ' +
        'instance archives: Redis memory per stored record is ledger_redis_used_memory_bytes ' +
        'divided by it', 'sum'),
    archiveLagRecords: gauge('ledger_archive_lag_records',
      'Decided records not yet archived, summed over the ledgers this instance archives',
      'sum'),
    archiveLagSeconds: gauge('ledger_archive_lag_seconds',
      'Age of the oldest decided record not yet archived (0 when none), over the ledgers ' +
        'this instance archives', 'max'),
    oldestExpiredHoldAge: gauge('ledger_oldest_expired_hold_age_seconds',
      'Age past its expiry of the oldest hold not yet released (0 when none): the sweeper ' +
        'should keep it under 2 s', 'max'),
  };
}

export type Metrics = ReturnType<typeof createRegistry>;
