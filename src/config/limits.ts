/**
 * Every limit of the service, named once. The HTTP schemas, the TypeScript checks and the Lua
 * scripts (the loader substitutes `{{NAME}}`) all read from here, and the limits table of
 * docs/configuration.md is checked against this module by test/readme.test.ts. Units are last in
 * each name.
 */
export const limits = {
  /** The contract: ids are 1–128 characters; a UUID (36) fits with room for prefixed ids. */
  ID_LENGTH_MAX: 128,
  /** ISO 4217 codes are 3 characters; asset codes such as `LOYALTY_POINTS` need more. */
  CURRENCY_LENGTH_MAX: 16,
  /** 2^128−1 has 39 decimal digits (TigerBeetle's u128 range). */
  AMOUNT_DIGITS_MAX: 39,
  /** API key names, recorded as `createdBy` on every account and transfer. */
  KEY_NAME_LENGTH_MAX: 64,
  /** Ledger names (the contract: 1–64 of a–z 0–9 _ -), each also its keys' hash tag. */
  LEDGER_NAME_LENGTH_MAX: 64,
  /**
   * Ledgers whose handles one instance keeps (an LRU; a handle is a few objects, and finding a
   * ledger again costs one read of its own slot). Ledgers are never deleted, so a kept handle
   * never goes stale.
   */
  LEDGERS_CACHED_MAX: 10_000,
  /** `GET /ledgers` page size. */
  LEDGERS_PAGE_LIMIT_MAX: 1000,
  LEDGERS_PAGE_LIMIT_DEFAULT: 100,
  /** Metadata is for correlation (order ids, references), not documents: small and flat. */
  METADATA_KEYS_MAX: 16,
  METADATA_KEY_LENGTH_MAX: 64,
  METADATA_VALUE_LENGTH_MAX: 256,
  /**
   * Bound on the stored (canonical JSON, UTF-8) metadata of one record, so that a record stays a
   * few hundred bytes and every script's work is bounded. Checked in TypeScript and again in Lua.
   */
  METADATA_JSON_BYTES_MAX: 4096,
  /**
   * Entries page size: 1000 entries is ~150 KB of JSON and the slowest script we run (~2 ms
   * inside Redis, measured; it sets SCRIPT_TIME_BUDGET_MS).
   */
  ENTRIES_PAGE_LIMIT_MAX: 1000,
  ENTRIES_PAGE_LIMIT_DEFAULT: 100,
  /** Largest request body. The largest valid body (metadata at its limits) is well below this. */
  BODY_BYTES_MAX: 32 * 1024,
  /**
   * Transfers in one `POST /transfers/batch`. An atomic batch is one script, so this also bounds
   * how long one script can hold Redis (`npm run bench` reports it; test/ops/script-budget.test.ts
   * bounds its work); 1000 typical transfers are ~200 KB of JSON.
   */
  BATCH_TRANSFERS_MAX: 1000,
  /**
   * Largest batch body: 1000 transfers with ids and some metadata fit with room; it also caps
   * the bytes one atomic script writes (metadata at its 4 KB limit on every item would not fit).
   */
  BATCH_BODY_BYTES_MAX: 1024 * 1024,
  /**
   * Transfers per script in a non-atomic batch (and in a group commit's call). Every other client
   * waits while a script runs, so the chunk is the trade-off between batch throughput (a call's
   * fixed cost and round trip are spread over the chunk) and everyone else's latency. At their
   * worst (longest ids and key names) 50 took 2.7 ms at the median and 3.7 ms at p95 inside
   * Redis on this machine class on a slow day (`npm run bench`, 2026-12-06), over
   * BATCH_CHUNK_BUDGET_MS; 25 take half that.
   */
  BATCH_CHUNK_TRANSFERS_MAX: 25,
  /**
   * Bytes of transfer fields (ids, amount, currency, metadata) per non-atomic chunk: a transfer
   * with 4 KB of metadata costs Redis ~3× a small one (it fills a stream node by itself).
   */
  BATCH_CHUNK_BYTES_MAX: 32 * 1024,
  /** Longest a non-atomic batch chunk may hold Redis at its worst (`npm run bench` reports it). */
  BATCH_CHUNK_BUDGET_MS: 2,
  /**
   * Transfers in one atomic batch. It is one script, so it must fit SCRIPT_TIME_BUDGET_MS at its
   * worst like every other script: at their worst (longest ids and keys, largest metadata) 100
   * took 6.8 ms at the median and 11.1 ms at p95 inside Redis on this machine class on a slow
   * day (`npm run bench`, 2026-12-06), so 50. Atomic batches are for linked legs (FX, splits:
   * tens of transfers); a larger set that need not be all-or-nothing goes as `atomic: false`.
   */
  BATCH_ATOMIC_TRANSFERS_MAX: 50,
  /**
   * Entries read per script call: a page of up to ENTRIES_PAGE_LIMIT_MAX is read in calls of
   * this many (each entry is a journal lookup, ~2–9 µs), so no read holds Redis past ~1 ms. The
   * calls together still give a consistent page: an account's chain never changes below its
   * newest entry.
   */
  ENTRIES_READ_CHUNK_MAX: 100,
  /** Records per `GET /journal` page (`limit`), and its default. */
  JOURNAL_PAGE_LIMIT_MAX: 1000,
  JOURNAL_PAGE_LIMIT_DEFAULT: 100,
  /**
   * Journal records read per script call (lua/read-journal-2.lua, lua/follow-5.lua): an XRANGE
   * step and two account-number lookups each, a few µs: 250 of the largest records took 1.7 ms
   * at the median and 2.4 ms at worst (`npm run bench`, 2026-12-06), a quarter of
   * SCRIPT_TIME_BUDGET_MS (test/ops/script-budget.test.ts bounds the work). A page takes several
   * calls; the journal only grows at its end, so together they are one consistent page.
   */
  JOURNAL_READ_CHUNK_MAX: 250,
  /** The longest long poll of `GET /journal` (`wait`, ms): the contract's 30 s. */
  JOURNAL_WAIT_MS_MAX: 30_000,
  /**
   * How often a long poll looks for a new record (one read of the journal's newest id per
   * ledger with waiters, shared by all of them): the contract answers within 100 ms.
   */
  JOURNAL_POLL_INTERVAL_MS: 20,
  /**
   * How often the change-data publisher looks for new records of each ledger (LEDGER_CDC_AMQP_URL):
   * with nothing new, a lock renewal and one read per ledger; a record reaches the broker
   * within this plus one publish.
   */
  CDC_INTERVAL_MS: 100,
  /**
   * Records the change-data publisher sends per page, then waits for the broker's confirms
   * and saves its position: one confirm wait and one save per page, so catching up on a
   * backlog goes as fast as pages are large (read in JOURNAL_READ_CHUNK_MAX chunks).
   */
  CDC_PAGE_RECORDS_MAX: 1000,
  /**
   * The publisher's lock (one publisher per ledger, src/redis/lock.ts) lives this long unless
   * renewed: a dead publisher's ledger is taken over after at most this.
   */
  CDC_LOCK_TTL_MS: 10_000,
  /**
   * Longest wait for the broker's confirms of one page of messages: past it the page counts as
   * not published (the connection is dropped and the page sent again: duplicates, never gaps).
   * Half the lock's lease, which is renewed between pages every third of it: a slow page does
   * not let the lease run out under it.
   */
  CDC_CONFIRM_TIMEOUT_MS: 5_000,
  /** Pause after a failed connection to the broker before the next attempt (doubles to 5 s). */
  CDC_RECONNECT_DELAY_MS: 250,
  /**
   * How often the archiver (LEDGER_ARCHIVE_URL) looks for new decided records of each ledger:
   * with nothing new, one script call per ledger (PostgreSQL's position is remembered while
   * the lock is held). A pass copies full pages until one is short: what comes in meanwhile
   * waits for the next pass, so under load a page holds this long's records, not a few.
   */
  ARCHIVE_INTERVAL_MS: 250,
  /**
   * Records (both streams) the archiver copies per PostgreSQL transaction, read in
   * JOURNAL_READ_CHUNK_MAX chunks: one commit, one WAL flush and one save in Redis per page.
   */
  ARCHIVE_PAGE_RECORDS_MAX: 2000,
  /**
   * Archived records of each stream that stay in Redis, the newest (LEDGER_ARCHIVE_KEEP):
   * reads of recent records never go to PostgreSQL. 10,000 UUID-keyed records are ~2 MB.
   */
  ARCHIVE_KEEP_RECORDS_DEFAULT: 10_000,
  /** The archiver's lock (one per ledger) lives this long unless renewed. */
  ARCHIVE_LOCK_TTL_MS: 10_000,
  /**
   * Open holds kept in Redis when the records around them were freed, looked at again per
   * pass (at most once a second): each closed one is then freed.
   */
  ARCHIVE_PINNED_CHECK_MAX: 50,
  /**
   * Ids of copied records not yet freed that the archiver keeps per ledger, so a free need not
   * read the records back from Redis: the default LEDGER_ARCHIVE_KEEP and two pages, about
   * 1 MB. With a larger keep, the oldest are read back from the stream instead.
   */
  ARCHIVE_KNOWN_IDS_MAX: 14_000,
  /**
   * The service counts as busy while its event loop is at least this utilised (the share of
   * time it spends working, not waiting: node's eventLoopUtilization, over the last
   * ARCHIVE_INTERVAL_MS). A busy service's archiver waits while its lag is under
   * LEDGER_ARCHIVE_YIELD_S: archiving is housekeeping, and transfers come first.
   */
  ARCHIVE_YIELD_BUSY: 0.5,
  /**
   * LEDGER_ARCHIVE_YIELD_S's default and most (seconds of lag): well under the lag alert's 300 s
   * (deploy/prometheus/alerts.yml), so an archiver that waited still catches up before it fires.
   * 30 s of single transfers at this machine's 8,000/s is ~40 MB of Redis.
   */
  ARCHIVE_YIELD_LAG_S_DEFAULT: 30,
  ARCHIVE_YIELD_LAG_S_MAX: 120,
  /** The archiver's thread, failed (or Redis down when it started), starts again after this. */
  ARCHIVE_THREAD_RESTART_MS: 1_000,
  /** At shutdown the archiver's thread finishes its page within this, or is ended. */
  ARCHIVE_THREAD_STOP_MS: 5_000,
  /** A hold's `timeoutSeconds`: 1 s … one year (365 days). */
  HOLD_TIMEOUT_SECONDS_MAX: 31_536_000,
  /**
   * Expired holds released per script call (lua/expire-holds-6.lua): each is its record's read
   * and both accounts' read and write, ~50 µs with no account shared (`npm run bench`,
   * 2026-12-06: 100 took 5.2 ms at the median, and 11.0 ms at p95 at their worst, longest ids,
   * over SCRIPT_TIME_BUDGET_MS). 50 keep the worst call near half the budget; a backlog takes
   * more calls, and other clients run between them.
   */
  HOLDS_EXPIRE_BATCH_MAX: 50,
  /**
   * How often the sweeper looks for expired holds: a hold is released within this (plus one
   * call) of its expiry; the contract promises 2 s.
   */
  HOLDS_SWEEP_INTERVAL_MS: 500,
  /**
   * The sweeper's lock lives this long unless renewed: long enough for a sweep of many calls,
   * short enough that another instance takes over soon after its holder dies.
   */
  HOLDS_SWEEP_LOCK_TTL_MS: 5_000,
  /**
   * A Redis command that has not answered by then is an unknown outcome: the client gets 503 and
   * retries with the same id, and the connection is reset (its replies may be lost). Our scripts
   * take tens of microseconds and an fsync milliseconds; a second means Redis or the path to it
   * is unwell, and a shorter wait brings the service back sooner after a stall.
   */
  REDIS_COMMAND_TIMEOUT_MS: 1000,
  /**
   * The longest any of our scripts may run inside Redis, worst case (largest metadata, amounts
   * of 2^128-1, a full entries page, a first EVAL that compiles the source). A script blocks
   * every Redis client while it runs. Measured on a shared 2-core machine: a transfer ~35 µs,
   * a first EVAL ~0.2 ms, a full entries page (1001 entries) ~2 ms, p95 ~3 ms, single calls up
   * to ~6 ms when the machine is busy: the page sets the budget, with room
   * (`npm run bench` reports the figures; test/ops/script-budget.test.ts bounds the work).
   */
  SCRIPT_TIME_BUDGET_MS: 10,
  /**
   * Redis's `busy-reply-threshold` (its default is 5000): past it, a running script makes Redis
   * answer every other command `BUSY` (503 UNAVAILABLE here) and accept `SCRIPT KILL`. 50x
   * the script budget, so no script of ours can reach it; below the command timeout, so a
   * stuck script shows as fast BUSY replies, not timeouts and connection resets, and an
   * operator can kill it within half a second. The embedded Redis sets it; `/readyz` reports
   * (never fails on) another value.
   */
  REDIS_BUSY_REPLY_THRESHOLD_MS: 500,
  /**
   * LEDGER_REPLICA_ACKS's ceiling: Sentinel deployments run two to five replicas; more acks
   * than replicas can never be met, and a typo (100) should fail at start, not at every write.
   */
  REPLICA_ACKS_MAX: 16,
  /**
   * LEDGER_REPLICA_ACK_TIMEOUT_MS's default and ceiling. A replica acknowledges within a round
   * trip and its event loop's turn (~0.2 ms here); half a second means it is gone or the link
   * is. At most half the command timeout: a WAIT blocks the writer connection, and a script
   * queued behind it must still answer within REDIS_COMMAND_TIMEOUT_MS.
   */
  REPLICA_ACK_TIMEOUT_MS: 500,
  /**
   * How long a Redis Cluster refusal that says nothing ran (TRYAGAIN while a slot migrates,
   * CLUSTERDOWN during a failover, redirections ioredis gave up on) is retried inside the
   * service, with the same id, before the answer is 503: a slot of a few thousand keys moves
   * in well under a second, and a failover's CLUSTERDOWN outlasts any request anyway.
   */
  CLUSTER_RETRY_BUDGET_MS: 1500,
  /** Pause between those retries (doubling up to 8x): the migration gets Redis's time. */
  CLUSTER_RETRY_DELAY_MS: 25,
  /** Connecting (TCP + handshake) to a healthy Redis on a LAN takes milliseconds. */
  REDIS_CONNECT_TIMEOUT_MS: 2000,
  /** Reconnect backoff cap: a restarted Redis is found again within this. */
  REDIS_RECONNECT_DELAY_MAX_MS: 500,
  /**
   * A burst of timeouts or foreign replies all stem from one bad connection: reset it at most
   * this often, so a still-bad new connection is reset again soon but not in a storm.
   */
  REDIS_CONNECTION_RESET_INTERVAL_MS: 250,
  /**
   * Whole-request budget; above the Redis timeout so that a stuck Redis answers 503, not a reset.
   */
  HTTP_REQUEST_TIMEOUT_MS: 10_000,
  /** Idle keep-alive sockets are closed after this (above typical client pools' 4–5 s). */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: 72_000,
  /** What 503 UNAVAILABLE tells clients to wait before retrying with the same id. */
  RETRY_AFTER_SECONDS: 1,
  /** Time the embedded redis-server gets to start (AOF load included) before we give up. */
  EMBEDDED_REDIS_START_TIMEOUT_MS: 30_000,
  /**
   * Pause before restarting an embedded Redis that exited on its own (e.g. a full disk under
   * appendfsync always): short enough to be back soon after space returns, long enough not to spin.
   */
  EMBEDDED_REDIS_RESTART_DELAY_MS: 1000,
  /**
   * Largest torn AOF tail cut automatically at start. A crash tears at most the script in
   * flight, whose MULTI block is the largest write: an atomic batch, at most
   * BATCH_BODY_BYTES_MAX of request data plus ~0.5 KB of journal fields, id and account updates
   * per transfer (< 2 MiB). More damage than this means something other than a torn tail, for
   * a human to inspect.
   */
  AOF_TORN_TAIL_BYTES_MAX: 4 * 1024 * 1024,
  /**
   * Default per-key request rate (LEDGER_RATE_LIMIT_PER_SECOND overrides it): far above one
   * service's normal traffic on this hardware (~10k transfers/s per instance), low enough that a
   * leaked key or a retry storm cannot take the whole instance.
   */
  RATE_LIMIT_PER_KEY_PER_SECOND: 2000,
  /** Bursts of this many seconds' worth of requests pass before the rate applies. */
  RATE_LIMIT_BURST_SECONDS: 2,
  /** Largest request header block (Node's default is 16 KB); ids and a bearer key need far less. */
  HTTP_HEADER_BYTES_MAX: 8 * 1024,
  /** Time to receive the headers: a slow-loris client trickling them is cut off after this. */
  HTTP_HEADERS_TIMEOUT_MS: 5_000,
  /**
   * The service's log lines are written to standard output in blocks of this many bytes (a
   * synchronous write per line was the largest single cost of a transfer in the CPU profile);
   * ~15 access lines a block.
   */
  LOG_BUFFER_BYTES: 4096,
  /** A partly filled log block is written at the latest this long after its first line. */
  LOG_FLUSH_INTERVAL_MS: 250,
  /** Graceful shutdown budget: in-flight requests finish, then Redis closes. */
  SHUTDOWN_GRACE_MS: 10_000,
  /**
   * Most Node processes LEDGER_WORKERS may ask for. They share one Redis, which runs one script
   * at a time: a few processes' worth of transfers saturate it (bench/ reports 1 vs 2 workers),
   * and each worker costs its own memory and Redis connection. 64 refuses a typo
   * (LEDGER_WORKERS=1000 would fork a thousand processes) without capping a large machine.
   */
  WORKERS_MAX: 64,
  /**
   * A worker that dies is replaced at once; one that keeps dying (a crash at start, a request
   * that crashes whichever worker gets it) must not make the primary fork in a tight loop. Past
   * this many replacements within WORKER_RESTART_WINDOW_MS, the next waits until the oldest of
   * them leaves the window: the service keeps serving on the workers it has meanwhile.
   */
  WORKER_RESTARTS_MAX: 10,
  WORKER_RESTART_WINDOW_MS: 60_000,
  /**
   * On SIGTERM the primary waits SHUTDOWN_GRACE_MS plus this for its workers (each ends itself at
   * SHUTDOWN_GRACE_MS, exit code 1, when requests have not finished). A worker still there is
   * wedged (its own timer cannot fire) and gets SIGKILL, so the embedded Redis, stopped last,
   * still stops in bounded time.
   */
  WORKER_EXIT_MARGIN_MS: 2_000,
} as const;

export type LimitName = keyof typeof limits;

/** 2^128 − 1: the largest amount, and the largest magnitude of any balance or total. */
export const AMOUNT_MAX = (1n << 128n) - 1n;
export const AMOUNT_MAX_STRING = AMOUNT_MAX.toString();

// Startup assertions on how limits relate (programmer errors, never user input).
if (AMOUNT_MAX_STRING.length !== limits.AMOUNT_DIGITS_MAX) {
  throw new Error('limits: AMOUNT_DIGITS_MAX must be the digit count of 2^128-1');
}
if (limits.HTTP_REQUEST_TIMEOUT_MS <= limits.REDIS_COMMAND_TIMEOUT_MS) {
  throw new Error('limits: the HTTP request timeout must exceed the Redis command timeout');
}
if (limits.AOF_TORN_TAIL_BYTES_MAX < 2 * limits.BATCH_BODY_BYTES_MAX
  + limits.BATCH_ATOMIC_TRANSFERS_MAX * 1024) {
  throw new Error('limits: the torn-tail bound must exceed the largest atomic batch\'s MULTI');
}
if (limits.BATCH_ATOMIC_TRANSFERS_MAX > limits.BATCH_TRANSFERS_MAX) {
  throw new Error('limits: an atomic batch larger than a batch');
}
if (limits.BATCH_CHUNK_BYTES_MAX < 2 * (4 * limits.ID_LENGTH_MAX
  + limits.METADATA_JSON_BYTES_MAX)) {
  throw new Error('limits: a batch chunk must hold at least two of the largest transfers');
}
if (limits.BATCH_CHUNK_TRANSFERS_MAX > limits.BATCH_TRANSFERS_MAX) {
  throw new Error('limits: a batch chunk larger than a batch');
}
if (limits.SCRIPT_TIME_BUDGET_MS * 10 > limits.REDIS_BUSY_REPLY_THRESHOLD_MS) {
  throw new Error('limits: a script within its budget must never reach busy-reply-threshold');
}
if (limits.REDIS_BUSY_REPLY_THRESHOLD_MS >= limits.REDIS_COMMAND_TIMEOUT_MS) {
  throw new Error('limits: Redis must answer BUSY before our command timeout gives up');
}
if (limits.REPLICA_ACK_TIMEOUT_MS * 2 > limits.REDIS_COMMAND_TIMEOUT_MS) {
  throw new Error('limits: a script queued behind a WAIT must still answer within the timeout');
}
if (limits.WORKERS_MAX < 1 || limits.WORKER_RESTARTS_MAX < 1) {
  throw new Error('limits: at least one worker, and at least one replacement per window');
}
if (limits.ENTRIES_PAGE_LIMIT_DEFAULT > limits.ENTRIES_PAGE_LIMIT_MAX) {
  throw new Error('limits: default page size above the maximum');
}
