import { type ApiKey, parseApiKeys } from '../auth/keys.js';
import { limits } from './limits.js';

/**
 * Configuration from the environment (docs/configuration.md's table), checked once at start-up:
 * a bad value stops the service with a message naming the variable, instead of surfacing later.
 */
export interface Config {
  port: number;
  host: string;
  /** Unset: start an embedded redis-server under `dataDir`. */
  redisUrl: string | undefined;
  /** CA bundle for a `rediss://` Redis whose certificate a private CA signed. */
  redisTlsCaFile: string | undefined;
  /** Read replicas of the REDIS_URL primary; GETs may be served there (empty: none). */
  replicaUrls: string[];
  /** Sentinels naming the primary (instead of REDIS_URL); empty: not in Sentinel mode. */
  sentinels: SentinelAddress[];
  /** The primary's name at the Sentinels. */
  sentinelName: string;
  /** Nodes of a Redis Cluster to start from (instead of REDIS_URL); empty: not in Cluster mode. */
  clusterNodes: SentinelAddress[];
  /** In Sentinel mode, the data nodes' ACL user and password (REDIS_URL carries them else). */
  redisUsername: string | undefined;
  redisPassword: string | undefined;
  /** The Sentinels' own password, when they require one. */
  sentinelPassword: string | undefined;
  /** Answer a write only once this many replicas have it (0: do not wait). */
  replicaAcks: number;
  /** Longest wait for those acks; short of them the write is answered 503 (unknown outcome). */
  replicaAckTimeoutMs: number;
  dataDir: string;
  keyPrefix: string;
  ledgerName: string;
  logLevel: string;
  /** fsync policy of the embedded Redis, and the weakest one readiness accepts of any Redis. */
  appendfsync: 'always' | 'everysec';
  /** `off`: readiness does not judge Redis's persistence settings (warned at start). */
  persistenceCheck: 'strict' | 'off';
  /** Parsed from LEDGER_API_KEYS; empty when unset. */
  apiKeys: ApiKey[];
  /** LEDGER_AUTH=off: no authentication at all (warned at every start). */
  authOff: boolean;
  ratePerSecond: number;
  /** Node processes serving the port (node:cluster); 1: this process alone, no primary. */
  workers: number;
  /** Single transfers arriving together share one script call (src/ledger/group-commit.ts). */
  groupCommit: boolean;
  /** Change data out to this AMQP broker (src/cdc/); undefined: not published. */
  cdcAmqpUrl: string | undefined;
  /** The topic exchange change data goes to. */
  cdcExchange: string;
  /** Archive decided records to this PostgreSQL (src/archive/); undefined: not archived. */
  archiveUrl: string | undefined;
  /** Archived records of each stream kept in Redis, the newest. */
  archiveKeep: number;
  /** While the service is busy, the archiver waits until its lag reaches this (0: never). */
  archiveYieldS: number;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface SentinelAddress {
  host: string;
  port: number;
}

/** `host:port,…` (an IPv6 host in brackets); undefined when any part is not an address. */
export function parseSentinels(text: string): SentinelAddress[] | undefined {
  const out: SentinelAddress[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$/.exec(part);
    const port = Number(match?.[2]);
    if (match === null || port < 1 || port > 65535) return undefined;
    out.push({ host: (match[1] as string).replace(/^\[|\]$/g, ''), port });
  }
  return out;
}

/** A whole number from `min` to `max`, or NaN. */
function wholeNumber(text: string, min: number, max: number): number {
  const value = /^[0-9]{1,9}$/.test(text) ? Number(text) : NaN;
  return value >= min && value <= max ? value : NaN;
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const problems: string[] = [];
  const port = Number(env.PORT ?? '3000');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    problems.push(`PORT=${env.PORT} is not a port`);
  }
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('REDIS_URL must start with redis:// or rediss://');
  }
  const redisTlsCaFile = env.REDIS_TLS_CA_FILE || undefined;
  if (redisTlsCaFile !== undefined && !redisUrl?.startsWith('rediss://')) {
    problems.push('REDIS_TLS_CA_FILE needs a rediss:// REDIS_URL');
  }
  const replicaUrls = (env.REDIS_REPLICA_URLS ?? '').split(',').map((u) => u.trim())
    .filter((u) => u !== '');
  if (replicaUrls.some((u) => !/^rediss?:\/\//.test(u))) {
    problems.push('REDIS_REPLICA_URLS must be comma-separated redis:// or rediss:// URLs');
  }
  if (replicaUrls.length > 0 && redisUrl === undefined && !env.REDIS_SENTINELS) {
    // The embedded Redis moves to a free port at every start: nothing can replicate it.
    problems.push('REDIS_REPLICA_URLS needs REDIS_URL (replicas of the embedded Redis make ' +
      'no sense)');
  }
  const sentinels = parseSentinels(env.REDIS_SENTINELS ?? '') ?? [];
  if (parseSentinels(env.REDIS_SENTINELS ?? '') === undefined) {
    problems.push('REDIS_SENTINELS must be comma-separated host:port');
  }
  const sentinelMode = sentinels.length > 0;
  if (sentinelMode && redisUrl !== undefined) {
    problems.push('set REDIS_SENTINELS or REDIS_URL, not both (the Sentinels name the primary)');
  }
  if (sentinelMode && replicaUrls.length > 0) {
    problems.push('REDIS_REPLICA_URLS cannot be used with REDIS_SENTINELS (replicas change ' +
      'roles at a failover; reads go to the primary the Sentinels name)');
  }
  const clusterNodes = parseSentinels(env.REDIS_CLUSTER_NODES ?? '') ?? [];
  if (parseSentinels(env.REDIS_CLUSTER_NODES ?? '') === undefined) {
    problems.push('REDIS_CLUSTER_NODES must be comma-separated host:port');
  }
  const clusterMode = clusterNodes.length > 0;
  if (clusterMode && (redisUrl !== undefined || sentinelMode || replicaUrls.length > 0)) {
    problems.push('REDIS_CLUSTER_NODES cannot be used with REDIS_URL, REDIS_SENTINELS or ' +
      'REDIS_REPLICA_URLS (the cluster names its own primaries and replicas)');
  }
  const sentinelName = env.REDIS_SENTINEL_NAME ?? 'ledger';
  if (!NAME.test(sentinelName)) {
    problems.push('REDIS_SENTINEL_NAME must be 1-64 of A-Z a-z 0-9 _ - .');
  }
  for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD']) {
    // The Sentinels' own password is for Sentinels only; the data nodes' credentials also for
    // a cluster's nodes (no URL carries them there either).
    const modes = name === 'REDIS_SENTINEL_PASSWORD' ? 'REDIS_SENTINELS'
      : 'REDIS_SENTINELS or REDIS_CLUSTER_NODES';
    const allowed = sentinelMode || (clusterMode && name !== 'REDIS_SENTINEL_PASSWORD');
    if (env[name] && !allowed) {
      problems.push(`${name} is for ${modes} only (put credentials in REDIS_URL)`);
    }
  }
  const acksText = env.LEDGER_REPLICA_ACKS || (sentinelMode ? '1' : '0');
  const replicaAcks = wholeNumber(acksText, 0, limits.REPLICA_ACKS_MAX);
  if (Number.isNaN(replicaAcks)) {
    problems.push(`LEDGER_REPLICA_ACKS=${acksText} must be an integer from 0 to ` +
      `${limits.REPLICA_ACKS_MAX}`);
  } else if (replicaAcks > 0 && !sentinelMode && !clusterMode && redisUrl === undefined) {
    problems.push('LEDGER_REPLICA_ACKS needs REDIS_SENTINELS, REDIS_CLUSTER_NODES or ' +
      'REDIS_URL (the embedded Redis has no replicas)');
  }
  const timeoutText = env.LEDGER_REPLICA_ACK_TIMEOUT_MS || String(limits.REPLICA_ACK_TIMEOUT_MS);
  const replicaAckTimeoutMs = wholeNumber(timeoutText, 1, limits.REPLICA_ACK_TIMEOUT_MS);
  if (Number.isNaN(replicaAckTimeoutMs)) {
    problems.push(`LEDGER_REPLICA_ACK_TIMEOUT_MS=${timeoutText} must be an integer from 1 to ` +
      `${limits.REPLICA_ACK_TIMEOUT_MS}`);
  }
  const keyPrefix = env.LEDGER_KEY_PREFIX ?? 'ledger';
  if (!NAME.test(keyPrefix)) problems.push('LEDGER_KEY_PREFIX must be 1-64 of A-Z a-z 0-9 _ - .');
  const ledgerName = env.LEDGER_NAME ?? 'main';
  if (!NAME.test(ledgerName)) problems.push('LEDGER_NAME must be 1-64 of A-Z a-z 0-9 _ - .');
  const logLevel = env.LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL=${logLevel} is not a pino level`);
  }
  const appendfsync = env.LEDGER_APPENDFSYNC ?? 'always';
  if (appendfsync !== 'always' && appendfsync !== 'everysec') {
    problems.push('LEDGER_APPENDFSYNC must be always or everysec');
  }
  const persistenceCheck = env.LEDGER_PERSISTENCE_CHECK ?? 'strict';
  if (persistenceCheck !== 'strict' && persistenceCheck !== 'off') {
    problems.push('LEDGER_PERSISTENCE_CHECK must be strict or off');
  }
  let apiKeys: ApiKey[] = [];
  try {
    apiKeys = parseApiKeys(env.LEDGER_API_KEYS ?? '');
  } catch (error) {
    problems.push(error instanceof Error ? error.message : String(error));
  }
  const auth = env.LEDGER_AUTH ?? 'on';
  if (auth !== 'on' && auth !== 'off') problems.push('LEDGER_AUTH must be on or off');
  const ratePerSecond = Number(env.LEDGER_RATE_LIMIT_PER_SECOND
    ?? limits.RATE_LIMIT_PER_KEY_PER_SECOND);
  if (!Number.isInteger(ratePerSecond) || ratePerSecond < 1) {
    problems.push('LEDGER_RATE_LIMIT_PER_SECOND must be a positive integer');
  }
  const workersText = env.LEDGER_WORKERS ?? '1';
  const workers = /^[0-9]{1,3}$/.test(workersText) ? Number(workersText) : NaN;
  if (!(workers >= 1 && workers <= limits.WORKERS_MAX)) {
    problems.push(`LEDGER_WORKERS=${env.LEDGER_WORKERS} must be an integer from 1 to ` +
      `${limits.WORKERS_MAX}`);
  }
  const groupCommit = env.LEDGER_GROUP_COMMIT ?? 'on';
  if (groupCommit !== 'on' && groupCommit !== 'off') {
    problems.push('LEDGER_GROUP_COMMIT must be on or off');
  }
  const cdcAmqpUrl = env.LEDGER_CDC_AMQP_URL || undefined;
  if (cdcAmqpUrl !== undefined && !/^amqps?:\/\/[^\s]+$/.test(cdcAmqpUrl)) {
    problems.push('LEDGER_CDC_AMQP_URL must be an amqp:// or amqps:// URL');
  }
  const cdcExchange = env.LEDGER_CDC_EXCHANGE || 'ledger.cdc';
  // AMQP's exchange names, less the `amq.` ones the broker reserves.
  if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(cdcExchange) || cdcExchange.startsWith('amq.')) {
    problems.push('LEDGER_CDC_EXCHANGE must be 1-200 of A-Z a-z 0-9 _ - . : and not start ' +
      'with amq.');
  }
  const archiveUrl = env.LEDGER_ARCHIVE_URL || undefined;
  if (archiveUrl !== undefined && !/^postgres(ql)?:\/\/[^\s]+$/.test(archiveUrl)) {
    problems.push('LEDGER_ARCHIVE_URL must be a postgres:// or postgresql:// URL');
  }
  const archiveKeep = Number(env.LEDGER_ARCHIVE_KEEP ?? limits.ARCHIVE_KEEP_RECORDS_DEFAULT);
  if (!Number.isSafeInteger(archiveKeep) || archiveKeep < 1) {
    problems.push('LEDGER_ARCHIVE_KEEP must be a whole number of records, 1 or more');
  }
  const archiveYieldS = Number(env.LEDGER_ARCHIVE_YIELD_S
    || limits.ARCHIVE_YIELD_LAG_S_DEFAULT);
  if (!Number.isSafeInteger(archiveYieldS) || archiveYieldS < 0
    || archiveYieldS > limits.ARCHIVE_YIELD_LAG_S_MAX) {
    problems.push('LEDGER_ARCHIVE_YIELD_S must be a whole number of seconds, 0 to ' +
      `${limits.ARCHIVE_YIELD_LAG_S_MAX}`);
  }
  if (problems.length > 0) throw new Error(`invalid configuration: ${problems.join('; ')}`);
  return {
    port,
    host: env.HOST ?? '127.0.0.1',
    redisUrl,
    redisTlsCaFile,
    replicaUrls,
    sentinels,
    sentinelName,
    clusterNodes,
    redisUsername: env.REDIS_USERNAME || undefined,
    redisPassword: env.REDIS_PASSWORD || undefined,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
    replicaAcks,
    replicaAckTimeoutMs,
    dataDir: env.LEDGER_DATA_DIR ?? './data',
    keyPrefix,
    ledgerName,
    logLevel,
    appendfsync: appendfsync as Config['appendfsync'],
    persistenceCheck: persistenceCheck as Config['persistenceCheck'],
    apiKeys,
    authOff: auth === 'off',
    ratePerSecond,
    workers,
    groupCommit: groupCommit === 'on',
    cdcAmqpUrl,
    cdcExchange,
    archiveUrl,
    archiveKeep,
    archiveYieldS,
  };
}

/** docs/configuration.md's configuration table, generated from here (test/readme.test.ts). */
export const CONFIG_DOC: ReadonlyArray<[string, string, string]> = [
  ['PORT', 'HTTP port', '`3000`'],
  ['HOST', 'bind address', '`127.0.0.1`'],
  ['REDIS_URL', 'Redis to use (`redis://` or `rediss://`)',
    'unset: the service starts its own `redis-server` with AOF under `LEDGER_DATA_DIR`'],
  ['REDIS_TLS_CA_FILE', 'PEM CA bundle for a `rediss://` `REDIS_URL` signed by a private CA',
    'unset'],
  ['REDIS_REPLICA_URLS', 'read replicas of `REDIS_URL`, comma-separated: `GET`s are served ' +
    'there round-robin (they may lag; header `Ledger-Read-From: primary` reads the primary), ' +
    'falling back to the primary while a replica is down; writes always go to the primary ' +
    '(see Read replicas)', 'unset: every read from the primary'],
  ['REDIS_SENTINELS', '`host:port,…` of Redis Sentinels: the service writes to the primary ' +
    'they name and follows it across failovers (instead of `REDIS_URL`; see High availability)',
    'unset'],
  ['REDIS_SENTINEL_NAME', 'the primary\'s name at the Sentinels', '`ledger`'],
  ['REDIS_CLUSTER_NODES', '`host:port,…` of Redis Cluster nodes to start from (instead of ' +
    '`REDIS_URL`): each ledger lives in the slot of its name, on the primary that owns it ' +
    '(see High availability, Redis Cluster)', 'unset'],
  ['REDIS_USERNAME', 'with `REDIS_SENTINELS` or `REDIS_CLUSTER_NODES`: the ACL user of the ' +
    'data nodes (with `REDIS_URL` it goes in the URL)', 'unset: `default`'],
  ['REDIS_PASSWORD', 'with `REDIS_SENTINELS` or `REDIS_CLUSTER_NODES`: that user\'s password',
    'unset'],
  ['REDIS_SENTINEL_PASSWORD', 'with `REDIS_SENTINELS`: the Sentinels\' password, if they ' +
    'require one', 'unset'],
  ['LEDGER_REPLICA_ACKS', 'answer a write (201, 422, or a replay) only once this many replicas ' +
    'have it (Redis `WAIT`, one per group of writes); short of them, 503 `UNAVAILABLE` ' +
    '(outcome unknown: retry with the same id)', '`1` with `REDIS_SENTINELS`, else `0`'],
  ['LEDGER_REPLICA_ACK_TIMEOUT_MS', 'longest wait for those acknowledgements (1 to ' +
    '`REPLICA_ACK_TIMEOUT_MS`)', '`REPLICA_ACK_TIMEOUT_MS` (500)'],
  ['LEDGER_DATA_DIR', 'where the embedded Redis keeps its files', '`./data`'],
  ['LEDGER_KEY_PREFIX', 'first part of every Redis key', '`ledger`'],
  ['LEDGER_NAME', 'the ledger; its keys share the hash tag `{LEDGER_NAME}` (one Cluster slot)',
    '`main`'],
  ['LOG_LEVEL', 'pino log level', '`info`'],
  ['LEDGER_APPENDFSYNC', '`always` or `everysec`: the embedded Redis\'s fsync policy, ' +
    'and the weakest one `/readyz` accepts of any Redis (see Guarantees)', '`always`'],
  ['LEDGER_API_KEYS', 'API keys, comma-separated `name:scope+scope:sha256hex` (SHA-256 of the ' +
    'secret); scopes `read`, `write` (implies read), `metrics`, `admin`',
    'unset: with the embedded Redis a development key under `LEDGER_DATA_DIR`; with ' +
    '`REDIS_URL` the service refuses to start'],
  ['LEDGER_AUTH', '`off` disables authentication (warned at every start)', '`on`'],
  ['LEDGER_RATE_LIMIT_PER_SECOND', 'requests per second per API key (bursts of ' +
    '`RATE_LIMIT_BURST_SECONDS` worth pass); above it, 429 with `Retry-After`', '`2000`'],
  ['LEDGER_PERSISTENCE_CHECK', '`strict`: `/readyz` is 503 while Redis\'s settings can lose ' +
    'acknowledged transfers; `off`: not checked (warned at every start)', '`strict`'],
  ['LEDGER_WORKERS', 'Node processes serving `PORT` (1 to `WORKERS_MAX`): above 1, a primary ' +
    'process runs the embedded Redis and forks that many workers, which share the port, the ' +
    'Redis and one `/metrics` (see Operations / Workers)', '`1`: one process, no primary'],
  ['LEDGER_GROUP_COMMIT', '`on`: single transfers that arrive together share one Redis ' +
    'script call, each keeping its own id and answer (see Performance); `off`: one call each',
    '`on`'],
  ['LEDGER_CDC_AMQP_URL', 'publish every committed record of every ledger to this AMQP ' +
    'broker (`amqp://` or `amqps://`), at least once, in seq order per ledger (see Change ' +
    'data out)', 'unset: nothing published'],
  ['LEDGER_CDC_EXCHANGE', 'the topic exchange records are published to (declared by the ' +
    'service, with `<exchange>.unrouted` for messages no binding routes)', '`ledger.cdc`'],
  ['LEDGER_ARCHIVE_URL', 'copy every decided record of every ledger, in order, to this ' +
    'PostgreSQL (`postgres://`), whose schema the service migrates at start (see History in ' +
    'PostgreSQL)', 'unset: nothing archived'],
  ['LEDGER_ARCHIVE_KEEP', 'archived records of each ledger kept in Redis as well, the newest ' +
    '(reads of them do not go to PostgreSQL; at least 1); older ones are freed from Redis',
    `\`${limits.ARCHIVE_KEEP_RECORDS_DEFAULT}\``],
  ['LEDGER_ARCHIVE_YIELD_S', 'while the service is busy (its event loop at least ' +
    `${limits.ARCHIVE_YIELD_BUSY * 100}% utilised), the archiver waits until the oldest record ` +
    'not yet copied is this many seconds old (0 to `ARCHIVE_YIELD_LAG_S_MAX`): transfers come ' +
    'first, and the archive catches up when the load eases; 0: it never waits',
    `\`${limits.ARCHIVE_YIELD_LAG_S_DEFAULT}\``],
];
