/**
 * The generated tables of the documentation: limits (from src/config/limits.ts) and
 * configuration (from CONFIG_DOC in src/config/env.ts), both in TABLES_FILE, which the README
 * links to. `npm run docs` rewrites them in place; test/readme.test.ts fails when that file
 * differs from what this generates.
 */
import { CONFIG_DOC } from '../src/config/env.js';
import { AMOUNT_MAX_STRING, type LimitName, limits } from '../src/config/limits.js';

/** Where the tables live, relative to the repository root. */
export const TABLES_FILE = 'docs/configuration.md';

/**
 * One line per limit for readers of the documentation; the why of each number is in limits.ts.
 * Typed by LimitName, so a limit added there without a line here fails the type check too.
 */
export const LIMIT_DOCS: Record<LimitName, string> = {
  ID_LENGTH_MAX: 'characters of an account or transfer id (a UUID is 36)',
  CURRENCY_LENGTH_MAX: 'characters of a currency or asset code',
  AMOUNT_DIGITS_MAX: 'decimal digits of an amount (2^128−1 has 39)',
  LEDGER_NAME_LENGTH_MAX: 'characters of a ledger name (`a–z 0–9 _ -`)',
  LEDGERS_CACHED_MAX: 'ledgers one instance keeps a handle for (least recently used go first)',
  LEDGERS_PAGE_LIMIT_MAX: 'largest `limit` of `GET /ledgers`',
  LEDGERS_PAGE_LIMIT_DEFAULT: '`limit` of `GET /ledgers` when omitted',
  METADATA_KEYS_MAX: 'metadata keys per account or transfer',
  METADATA_KEY_LENGTH_MAX: 'characters of a metadata key',
  METADATA_VALUE_LENGTH_MAX: 'characters of a metadata value',
  METADATA_JSON_BYTES_MAX: "bytes of one record's metadata as canonical JSON (UTF-8)",
  ENTRIES_PAGE_LIMIT_MAX: 'largest `limit` of `GET /accounts/{id}/entries`',
  ENTRIES_PAGE_LIMIT_DEFAULT: '`limit` of `GET /accounts/{id}/entries` when omitted',
  BODY_BYTES_MAX: 'largest request body; above it, 413 `PAYLOAD_TOO_LARGE`',
  BATCH_TRANSFERS_MAX:
    'transfers in one `POST /transfers/batch` (an atomic one: `BATCH_ATOMIC_TRANSFERS_MAX`)',
  BATCH_BODY_BYTES_MAX: 'largest `POST /transfers/batch` body; above it, 413',
  BATCH_CHUNK_TRANSFERS_MAX: 'transfers per Redis script in a non-atomic batch',
  BATCH_CHUNK_BUDGET_MS: 'longest one non-atomic batch chunk may hold Redis (measured)',
  BATCH_CHUNK_BYTES_MAX: 'bytes of transfer fields per Redis script in a non-atomic batch',
  BATCH_ATOMIC_TRANSFERS_MAX: 'transfers in one atomic batch (one script: it must fit ' +
    '`SCRIPT_TIME_BUDGET_MS` at its worst)',
  ENTRIES_READ_CHUNK_MAX: 'entries read per Redis script; a larger page takes several',
  JOURNAL_PAGE_LIMIT_MAX: 'largest `limit` of `GET /journal`',
  JOURNAL_PAGE_LIMIT_DEFAULT: '`limit` of `GET /journal` when omitted',
  JOURNAL_READ_CHUNK_MAX: 'journal records read per script call (a page takes several)',
  JOURNAL_WAIT_MS_MAX: 'longest long poll (`wait`) of `GET /journal`',
  JOURNAL_POLL_INTERVAL_MS: 'how often a long poll looks for a new record',
  CDC_INTERVAL_MS: 'how often the change-data publisher looks for new records of each ledger',
  CDC_PAGE_RECORDS_MAX: 'records the change-data publisher sends before it waits for confirms',
  CDC_LOCK_TTL_MS: "a ledger's publisher lock expires after this unless renewed",
  CDC_CONFIRM_TIMEOUT_MS: "longest wait for the broker's confirms of one page; then sent again",
  CDC_RECONNECT_DELAY_MS: 'first pause before reconnecting to the broker (doubles up to 5 s)',
  ARCHIVE_INTERVAL_MS: 'how often the archiver looks for new records of each ledger',
  ARCHIVE_PAGE_RECORDS_MAX: 'records the archiver copies per PostgreSQL transaction',
  ARCHIVE_LOCK_TTL_MS: "a ledger's archiver lock expires after this unless renewed",
  ARCHIVE_KEEP_RECORDS_DEFAULT: 'archived records of each stream kept in Redis (default)',
  ARCHIVE_PINNED_CHECK_MAX: 'open holds kept in Redis that the archiver looks at again per pass',
  ARCHIVE_KNOWN_IDS_MAX: 'ids of copied, not yet freed records the archiver keeps per ledger',
  ARCHIVE_THREAD_RESTART_MS: 'the archiver\'s thread, failed, starts again after this',
  ARCHIVE_THREAD_STOP_MS: 'at shutdown, the archiver\'s thread is ended after this',
  ARCHIVE_YIELD_BUSY: 'the event-loop utilisation at which the service counts as busy, and ' +
    'its archiver waits (LEDGER_ARCHIVE_YIELD_S)',
  ARCHIVE_YIELD_LAG_S_DEFAULT: 'LEDGER_ARCHIVE_YIELD_S\'s default (seconds of archive lag)',
  ARCHIVE_YIELD_LAG_S_MAX: 'LEDGER_ARCHIVE_YIELD_S\'s most: well under the lag alert\'s 300 s',
  HOLD_TIMEOUT_SECONDS_MAX: "largest `timeoutSeconds` of a hold (one year)",
  HOLDS_EXPIRE_BATCH_MAX: 'expired holds released per Redis script by the sweeper',
  HOLDS_SWEEP_INTERVAL_MS: 'how often the sweeper looks for expired holds',
  HOLDS_SWEEP_LOCK_TTL_MS: "the sweeper's lock expires after this unless renewed",
  REDIS_COMMAND_TIMEOUT_MS:
    'a Redis command unanswered by then is 503 `UNAVAILABLE` (outcome unknown)',
  SCRIPT_TIME_BUDGET_MS: 'the longest any of our Lua scripts may run inside Redis (worst case)',
  REDIS_BUSY_REPLY_THRESHOLD_MS: 'Redis `busy-reply-threshold` the embedded Redis sets; past it ' +
    'other commands get `BUSY` (503 `UNAVAILABLE`); `/readyz` reports another value',
  REDIS_CONNECT_TIMEOUT_MS: 'connecting to Redis',
  CLUSTER_RETRY_BUDGET_MS: 'with Redis Cluster: how long a refusal that ran nothing ' +
    '(`TRYAGAIN`, `CLUSTERDOWN`, redirections) is retried with the same id before 503',
  CLUSTER_RETRY_DELAY_MS: 'first pause between those retries (doubling up to 8x)',
  REPLICA_ACKS_MAX: 'largest `LEDGER_REPLICA_ACKS`',
  REPLICA_ACK_TIMEOUT_MS: 'default and largest `LEDGER_REPLICA_ACK_TIMEOUT_MS`: a write waits ' +
    'this long for its replica acknowledgements, then answers 503',
  REDIS_RECONNECT_DELAY_MAX_MS: 'longest wait between reconnection attempts',
  REDIS_CONNECTION_RESET_INTERVAL_MS: 'after a command timeout or a reply that is not the ' +
    'command\'s own, the Redis connection is reset, at most this often',
  HTTP_REQUEST_TIMEOUT_MS:
    'whole-request budget (above the Redis timeout, so a stuck Redis is a 503)',
  HTTP_KEEP_ALIVE_TIMEOUT_MS: 'idle keep-alive connections are closed after this',
  RETRY_AFTER_SECONDS: '`Retry-After` sent with a 503',
  EMBEDDED_REDIS_START_TIMEOUT_MS:
    'time the embedded redis-server gets to start (AOF load included)',
  EMBEDDED_REDIS_RESTART_DELAY_MS: 'pause before restarting an embedded redis-server ' +
    'that exited on its own (full disk under `always`)',
  AOF_TORN_TAIL_BYTES_MAX: 'largest torn AOF tail the embedded Redis / entrypoint ' +
    'cuts automatically at start',
  RATE_LIMIT_PER_KEY_PER_SECOND:
    'default requests per second per API key (`LEDGER_RATE_LIMIT_PER_SECOND`); above it, 429',
  RATE_LIMIT_BURST_SECONDS: 'seconds of requests a key may send in a burst before the rate applies',
  HTTP_HEADER_BYTES_MAX: 'largest request header block; above it the connection gets 431',
  HTTP_HEADERS_TIMEOUT_MS: 'time a client gets to send its headers (slow-loris defence)',
  KEY_NAME_LENGTH_MAX: 'characters of an API key name (recorded as `createdBy`)',
  LOG_BUFFER_BYTES: 'the log is written to standard output in blocks of this many bytes',
  LOG_FLUSH_INTERVAL_MS: 'a partly filled log block is written at the latest after this long',
  SHUTDOWN_GRACE_MS: 'graceful-shutdown budget on SIGTERM/SIGINT: in-flight requests, then Redis',
  WORKERS_MAX: 'largest `LEDGER_WORKERS` (Node processes sharing the port)',
  WORKER_RESTARTS_MAX: 'workers replaced at once within `WORKER_RESTART_WINDOW_MS`; ' +
    'past it, the next replacement waits',
  WORKER_RESTART_WINDOW_MS: 'the window of `WORKER_RESTARTS_MAX`',
  WORKER_EXIT_MARGIN_MS: 'on shutdown, how long past `SHUTDOWN_GRACE_MS` the primary waits for ' +
    'its workers before `SIGKILL`',
};

const cell = (text: string) => text.replaceAll('|', '\\|');

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** Throws when a limit has no line in `docs`, or `docs` names a limit that does not exist. */
export function limitsTable(
  source: Readonly<Record<string, number>> = limits,
  docs: Readonly<Record<string, string>> = LIMIT_DOCS,
): string {
  const undocumented = Object.keys(source).filter((name) => docs[name] === undefined);
  const unknown = Object.keys(docs).filter((name) => source[name] === undefined);
  if (undocumented.length > 0 || unknown.length > 0) {
    throw new Error(`scripts/readme-tables.ts LIMIT_DOCS: add ${undocumented.join(', ') || '-'}; ` +
      `remove ${unknown.join(', ') || '-'}`);
  }
  const rows = Object.entries(source).map(([name, value]) =>
    [`\`${name}\``, `\`${value}\``, docs[name] as string]);
  rows.unshift(['`AMOUNT_MAX`', `\`${AMOUNT_MAX_STRING}\``,
    'largest amount (2^128−1), and largest magnitude of a balance, debits or credits']);
  return table(['limit', 'value', 'what it bounds'], rows);
}

export function configTable(
  doc: ReadonlyArray<readonly [string, string, string]> = CONFIG_DOC,
): string {
  return table(['variable', 'meaning', 'default'],
    doc.map(([name, meaning, fallback]) => [`\`${name}\``, meaning, fallback]));
}

export const TABLES = { limits: limitsTable, config: configTable } as const;
export type TableName = keyof typeof TABLES;

function markers(name: TableName): [string, string] {
  return [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];
}

/** The text between the markers, without the newlines that frame it. */
export function readSection(text: string, name: TableName): string {
  const [start, end] = markers(name);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from || text.indexOf(start, from + 1) >= 0) {
    throw new Error(`${TABLES_FILE}: expected one ${start} … ${end} section`);
  }
  return text.slice(from + start.length, to).trim();
}

export function writeSection(text: string, name: TableName, body: string): string {
  readSection(text, name); // same checks on the markers
  const [start, end] = markers(name);
  const from = text.indexOf(start) + start.length;
  return `${text.slice(0, from)}\n${body}\n${text.slice(text.indexOf(end))}`;
}
