/**
 * The process: configuration, the embedded Redis when REDIS_URL is unset, listening, signals
 * and graceful shutdown (in-flight requests finish, then Redis closes). The only file that
 * touches `process`.
 */
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import type { AuthOptions } from './plugins/auth.js';
import { devKey } from './auth/dev-key.js';
import { type Config, loadConfig } from './config/env.js';
import { limits } from './config/limits.js';
import { ledgerKeys } from './ledger/keys.js';
import { Ledger } from './ledger/ledger.js';
import { createLedgerMetrics } from './metrics/ledger-metrics.js';
import { createRedis } from './redis/client.js';
import { type SupervisedRedis, superviseEmbeddedRedis } from './redis/embedded.js';

let embedded: SupervisedRedis | undefined;

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
  if (config.redisUrl !== undefined) {
    throw new Error('LEDGER_API_KEYS is empty: set it (see the README), or set LEDGER_AUTH=off ' +
      'to run without authentication');
  }
  const dev = devKey(config.dataDir);
  const notice = dev.created === undefined
    ? [`development API key (write, metrics, admin) in ${dev.path}`]
    : [`created a development API key (write, metrics, admin), kept in ${dev.path}:`,
      `  ${dev.created}`,
      `  curl -H "Authorization: Bearer $(cat ${dev.path})" ` +
        `http://${config.host}:${config.port}/accounts/cash`];
  return { auth: { mode: 'keys', keys: [dev.key], ratePerSecond: config.ratePerSecond }, notice };
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const { auth, notice } = authFor(config);
  if (config.redisUrl === undefined) {
    embedded = await superviseEmbeddedRedis(
      { dataDir: config.dataDir, appendfsync: config.appendfsync },
      (message) => console.warn(`embedded redis: ${message}`));
    for (const line of embedded.current().repairs) console.warn(`torn AOF tail repaired: ${line}`);
    console.log(`embedded redis-server on ${embedded.url}, ` +
      `AOF (appendfsync ${config.appendfsync}) under ${config.dataDir}`);
  }
  const redis = createRedis(config.redisUrl ?? (embedded as SupervisedRedis).url,
    { tlsCaFile: config.redisTlsCaFile });
  redis.on('error', () => {}); // each failed command reports its own error; avoid log floods
  await redis.connect();
  // A replica that is down at start must not stop the service: reads fall back to the primary
  // and ioredis keeps reconnecting.
  const replicas = config.replicaUrls.map((url) => {
    const replica = createRedis(url, { tlsCaFile: config.redisTlsCaFile });
    replica.on('error', () => {});
    replica.connect().catch(() => {});
    return replica;
  });
  const metrics = createLedgerMetrics();
  const ledger = new Ledger({ redis, replicas, observer: metrics.observer,
    keys: ledgerKeys(config.keyPrefix, config.ledgerName) });
  await ledger.ensureScripts();
  const persistence = { appendfsync: config.appendfsync, check: config.persistenceCheck };
  const app = await buildApp({ ledger, redis, persistence, auth, metrics,
    logger: { level: config.logLevel } });
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

  closeWithGrace({ delay: limits.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'shutting down after an error');
    else app.log.info({ signal }, 'shutting down');
    await app.close(); // stops accepting, lets in-flight requests finish
    // QUIT needs a live connection; with Redis gone, just drop the socket.
    for (const r of [redis, ...replicas]) {
      if (r.status === 'ready') await r.quit().catch(() => r.disconnect());
      else r.disconnect();
    }
    await embedded?.stop();
  });

  await app.listen({ port: config.port, host: config.host });
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await embedded?.stop(); // never leave our redis-server running without us
  process.exit(1);
});
