/**
 * The process: configuration, the data dir and port it claims (src/instance.ts), the embedded
 * Redis when REDIS_URL is unset, listening, signals and graceful shutdown (in-flight requests
 * finish, then Redis closes). The only file that touches `process`. With LEDGER_WORKERS > 1
 * this process is the primary (src/workers.ts): it runs the embedded Redis, makes the development
 * key, forks the workers, stops them on SIGTERM and stops Redis last; each worker runs `serve`
 * below on the shared port.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import closeWithGrace from 'close-with-grace';
import { type DestinationStream, pino } from 'pino';
import { ArchiveStore } from './archive/store.js';
import { ArchiverThread } from './archive/thread.js';
import type { Redis } from 'ioredis';
import { type App, buildApp } from './app.js';
import type { AuthOptions } from './plugins/auth.js';
import { devKey } from './auth/dev-key.js';
import { type Config, loadConfig } from './config/env.js';
import { limits } from './config/limits.js';
import { type DataDirLock, ensurePortFree, lockDataDir } from './instance.js';
import { ledgerKeys } from './ledger/keys.js';
import { Ledger } from './ledger/ledger.js';
import { createLedgerMetrics } from './metrics/ledger-metrics.js';
import { createRedis, markClosing } from './redis/client.js';
import { primaryConnection } from './redis/connect.js';
import { SentinelWatch } from './redis/sentinel-watch.js';
import { type SupervisedRedis, superviseEmbeddedRedis } from './redis/embedded.js';
import { type WorkerChannel, startPrimary, workerChannel, workerContext } from './workers.js';

let embedded: SupervisedRedis | undefined;
let dataDirLock: DataDirLock | undefined;

/** Which keys guard the API; refuses an open service unless LEDGER_AUTH=off says so. */
function authFor(config: Config): { auth: AuthOptions; notice: string[] } {
  if (config.authOff) {
    return { auth: { mode: 'off' }, notice: ['LEDGER_AUTH=off: anyone who can reach this ' +
      'service can move money; every request is recorded as createdBy "anonymous"'] };
  }
  if (config.apiKeys.length > 0) {
    return { auth: { mode: 'keys', keys: config.apiKeys, ratePerSecond: config.ratePerSecond },
      notice: [] };
  }
  if (config.redisUrl !== undefined || config.sentinels.length > 0
    || config.clusterNodes.length > 0) {
    throw new Error('LEDGER_API_KEYS is empty: set it (see docs/api.md, Authentication), or ' +
      'set LEDGER_AUTH=off to run without authentication');
  }
  const dev = devKey(config.dataDir);
  const notice = dev.created === undefined
    ? [`development API key (write, metrics, admin) in ${dev.path}`]
    : [`created a development API key (write, metrics, admin), kept in ${dev.path}:`,
      `  ${dev.created}`, 'try it (creates the account "cash"):',
      ...tryIt(config, dev.path)];
  return { auth: { mode: 'keys', keys: [dev.key], ratePerSecond: config.ratePerSecond }, notice };
}

/** A first request that succeeds on an empty ledger, as typed into a shell. */
function tryIt(config: Config, keyPath: string): string[] {
  // A wildcard address accepts connections, but is not one to connect to.
  const host = ['0.0.0.0', '::', ''].includes(config.host) ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
  const path = /^[\w./-]+$/.test(keyPath) ? keyPath : `'${keyPath.replaceAll("'", "'\\''")}'`;
  return [`  curl -s -X POST ${url}/accounts -H "Authorization: Bearer $(cat ${path})" \\`,
    `    -H 'content-type: application/json' ` +
      `-d '{"id":"cash","currency":"USD","overdraftLimit":"unlimited"}'`];
}

/** In a worker: its slot and the way to the primary. */
interface InCluster {
  slot: number;
  channel: WorkerChannel;
}

interface Connections {
  redis: Redis;
  /** With REDIS_SENTINELS: keeps both connections on the primary the Sentinels name. */
  watch: SentinelWatch | undefined;
  /** The writes' own connection when replica acks are on (a WAIT blocks its connection). */
  writer: Redis | undefined;
  replicas: Redis[];
}

async function connect(config: Config, url: string): Promise<Connections> {
  const redis = primaryConnection(config, url);
  await redis.connect();
  let writer: Redis | undefined;
  if (config.replicaAcks > 0) {
    writer = primaryConnection(config, url);
    await writer.connect();
  }
  // A replica that is down at start must not stop the service: reads fall back to the primary
  // and ioredis keeps reconnecting.
  const replicas = config.replicaUrls.map((replicaUrl) => {
    const replica = createRedis(replicaUrl, { tlsCaFile: config.redisTlsCaFile });
    replica.on('error', () => {});
    replica.connect().catch(() => {});
    return replica;
  });
  let watch: SentinelWatch | undefined;
  if (config.sentinels.length > 0) {
    watch = new SentinelWatch({ sentinels: config.sentinels, name: config.sentinelName,
      sentinelPassword: config.sentinelPassword },
    (message) => console.warn(`sentinel watch: ${message}`));
    watch.start();
    for (const r of writer === undefined ? [redis] : [redis, writer]) watch.watch(r);
  }
  return { redis, watch, writer, replicas };
}

/** The service in this process: the app on HOST:PORT (shared by the workers of a cluster). */
async function serve(config: Config, url: string, auth: AuthOptions, notice: string[],
  inCluster?: InCluster): Promise<void> {
  const { redis, watch, writer, replicas } = await connect(config, url);
  const metrics = createLedgerMetrics(inCluster === undefined ? {}
    : { cluster: { worker: inCluster.slot, gather: inCluster.channel.gather } });
  inCluster?.channel.answerCollects(() => metrics.registry.getMetricsAsJSON());
  // One pool for the archiver's writes and the ledger's reads of archived records.
  let logPoolError: ((err: Error) => void) | undefined;
  let logWarn: ((message: string, error: string) => void) | undefined;
  const archiveStore = config.archiveUrl === undefined ? undefined
    : new ArchiveStore(config.archiveUrl, { onError: (err) => logPoolError?.(err) });
  const ledger = new Ledger({ redis, replicas, observer: metrics.observer,
    ...(archiveStore === undefined ? {} : { archiveReader: archiveStore }),
    keys: ledgerKeys(config.keyPrefix, config.ledgerName), groupCommit: config.groupCommit,
    ...(writer === undefined ? {} : { writer }),
    replicaAcks: { required: config.replicaAcks, timeoutMs: config.replicaAckTimeoutMs } });
  await ledger.ensureScripts();
  const persistence = { appendfsync: config.appendfsync, check: config.persistenceCheck };
  const app = await buildApp({ ledger, redis, persistence, auth, metrics, sweepHolds: true,
    ...(config.cdcAmqpUrl === undefined ? {}
      : { cdc: { url: config.cdcAmqpUrl, exchange: config.cdcExchange } }),
    ...(archiveStore === undefined ? {} : { archive: { store: archiveStore,
      keepRecords: config.archiveKeep,
      // The archiver on a thread of its own: its CPU work off the requests' event loop.
      runner: new ArchiverThread({ config, url, observer: metrics.archive,
        scripts: metrics.observer,
        warn: (message, error) => logWarn?.(message, error) }) } }),
    logger: { level: config.logLevel, stream: logDestination() } });
  logPoolError = (err) => app.log.warn({ err },
    'archive: a PostgreSQL connection failed; the pool replaces it');
  logWarn = (message, error) => app.log.warn({ err: { message: error } }, message);
  // A stuck script is named by its SHA-1 in Redis's log ("Slow script detected"): ours, listed.
  app.log.info({ scripts: Object.fromEntries([...ledger.scripts.values()]
    .map((script) => [script.name, script.sha])) }, 'scripts loaded');
  for (const line of notice) {
    if (auth.mode === 'off') app.log.warn(line);
    else console.log(line);
  }
  if (persistence.check === 'off') {
    app.log.warn('LEDGER_PERSISTENCE_CHECK=off: Redis settings that can lose acknowledged ' +
      'transfers are not reported by /readyz');
  }
  closeOnSignals(app, [redis, ...(writer === undefined ? [] : [writer]), ...replicas], watch);
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  if (typeof address === 'object' && address !== null) dataDirLock?.setPort(address.port);
}

/**
 * Standard output, buffered: a synchronous write per log line was the largest single cost of a
 * transfer in the CPU profile (bench/). Lines are written in LOG_BUFFER_BYTES blocks, at the
 * latest every LOG_FLUSH_INTERVAL_MS, and flushed when the process exits; a kill -9 can lose the
 * last block's lines (never a transfer: the log records no money).
 */
function logDestination(): DestinationStream {
  const stream = pino.destination({ dest: 1, sync: false, minLength: limits.LOG_BUFFER_BYTES });
  setInterval(() => stream.flush(), limits.LOG_FLUSH_INTERVAL_MS).unref();
  return stream;
}

function closeOnSignals(app: App, connections: Redis[], watch?: SentinelWatch): void {
  let signalled: string | undefined;
  let closing = false;
  const close = async ({ signal, err }: { signal?: string; err?: Error }) => {
    closing = true;
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal: signal ?? signalled }, 'shutting down');
    await app.close(); // stops accepting, lets in-flight requests finish
    watch?.stop();
    // QUIT needs a live connection; with Redis gone, just drop the socket.
    for (const r of connections) {
      markClosing(r);
      if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r.disconnect();
    }
    await embedded?.stop(); // last: the in-flight requests needed it
    await dataDirLock?.release();
  };
  // One Ctrl-C arrives more than once: the terminal signals the whole foreground process group
  // (npm, tsx's CLI when it runs us, this process), and npm and tsx each relay what they got;
  // a SIGTERM to the group likewise, and a worker also hears from its primary. close-with-grace
  // would take the second copy for an impatient user and exit 1 ("second SIGTERM, exiting")
  // mid-drain: here every copy means the one graceful close. SHUTDOWN_GRACE_MS still bounds it;
  // the forced stop is kill -9 (a worker's primary decides it; the embedded Redis then stops by
  // itself, src/redis/embedded.ts).
  const grace = closeWithGrace({ delay: limits.SHUTDOWN_GRACE_MS, skip: ['SIGINT', 'SIGTERM'] },
    close);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) return;
      signalled = signal;
      void grace.close();
    });
  }
}

/** LEDGER_WORKERS > 1, the primary: forks the workers and stops them, then Redis, on a signal. */
async function runPrimary(config: Config, redisUrl: string): Promise<void> {
  const cpus = availableParallelism();
  if (config.workers > cpus) {
    console.warn(`LEDGER_WORKERS=${config.workers} is more than the ${cpus} CPUs here: the ` +
      'workers will compete for them');
  }
  // The same command line as this process: under `npm start` its execArgv is tsx's loader.
  const primary = startPrimary({ workers: config.workers, exec: process.argv[1] as string,
    execArgv: process.execArgv, args: process.argv.slice(2), redisUrl,
    log: (message) => console.warn(message) });
  let stopping = false;
  const stop = async (signal: string) => {
    // A signal often comes twice (the terminal signals the whole process group, and tsx relays
    // what it gets): a repeat changes nothing, and the stop below is bounded anyway.
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping the workers, then Redis`);
    const clean = await primary.stop(limits.SHUTDOWN_GRACE_MS + limits.WORKER_EXIT_MARGIN_MS);
    await embedded?.stop(); // last: the workers' in-flight requests needed it
    await dataDirLock?.release();
    process.exit(clean ? 0 : 1);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop(signal));
  try {
    await primary.listening;
  } catch (error) {
    await primary.stop(limits.WORKER_EXIT_MARGIN_MS);
    throw error;
  }
  console.log(`${config.workers} workers serving http://${config.host}:${config.port}`);
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  if (cluster.isWorker) {
    // The primary made the development key (once: workers would race to create it), printed
    // the notices and runs the embedded Redis.
    const { slot, redisUrl } = workerContext(process.env);
    await serve(config, redisUrl, authFor(config).auth, [], { slot, channel: workerChannel() });
    return;
  }
  // No REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES: this process runs its own Redis.
  const ownRedis = config.redisUrl === undefined && config.sentinels.length === 0
    && config.clusterNodes.length === 0;
  if (ownRedis) {
    // Before anything else touches the data dir (the development key, Redis).
    dataDirLock = await lockDataDir(config.dataDir, config.port);
  }
  await ensurePortFree(config.host, config.port);
  const { auth, notice } = authFor(config);
  if (ownRedis) {
    embedded = await superviseEmbeddedRedis(
      { dataDir: config.dataDir, appendfsync: config.appendfsync, avoidPorts: [config.port] },
      (message) => console.warn(`embedded redis: ${message}`));
    for (const line of embedded.current().repairs) console.warn(`torn AOF tail repaired: ${line}`);
    console.log(`embedded redis-server on ${embedded.url}, ` +
      `AOF (appendfsync ${config.appendfsync}) under ${config.dataDir}`);
  }
  // With REDIS_SENTINELS or REDIS_CLUSTER_NODES the URL is unused.
  const redisUrl = config.redisUrl ?? embedded?.url ?? '';
  if (config.workers === 1) {
    await serve(config, redisUrl, auth, notice);
    return;
  }
  for (const line of notice) (auth.mode === 'off' ? console.warn : console.log)(line);
  await runPrimary(config, redisUrl);
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await embedded?.stop(); // never leave our redis-server running without us
  process.exit(1);
});
