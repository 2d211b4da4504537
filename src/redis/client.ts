/**
 * The service's Redis connection, every option explicit. A write whose reply we did not get is
 * an unknown outcome: we answer 503 and the client retries with the same id. ioredis re-sends
 * in-flight commands after a reconnect; our scripts are idempotent, so that is safe too.
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { SentinelAddress } from '../config/env.js';
import { limits } from '../config/limits.js';

export function redisOptions(): RedisOptions {
  return {
    lazyConnect: true,
    // Fail fast while disconnected instead of queueing without bound: callers get 503 at once.
    enableOfflineQueue: false,
    // Commands in flight when the connection drops are retried once on the new connection,
    // then rejected; the HTTP client sees 503 and decides with its own retry.
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: true,
    commandTimeout: limits.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: limits.REDIS_CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 50, limits.REDIS_RECONNECT_DELAY_MAX_MS),
    // A failover turns our primary into a replica: reconnect so DNS/sentinel can move us.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
    enableReadyCheck: true,
    connectionName: 'atomic-ledger',
    // CLIENT SETINFO is not in the least-privilege ACL (Redis 7.0 cannot even name it there).
    disableClientInfo: true,
  };
}

export interface ConnectionOptions {
  /** PEM CA bundle that signs the server's certificate, for `rediss://` to a private CA. */
  tlsCaFile?: string;
}

export function createRedis(url: string, connection: ConnectionOptions = {}): Redis {
  const options = redisOptions();
  if (url.startsWith('rediss://') && connection.tlsCaFile !== undefined) {
    // ioredis turns rediss:// into TLS; this adds the CA while keeping hostname verification.
    options.tls = { ca: readFileSync(connection.tlsCaFile) };
  }
  return watchHandshake(new Redis(url, options));
}

/**
 * A frozen Redis (SIGSTOP, a hung host) still accepts TCP connections (the kernel's backlog),
 * so connectTimeout, which covers only the TCP connect, never fires; ioredis then waits forever
 * for the handshake (CLIENT SETNAME, INFO), and every command meanwhile fails as not connected.
 * With Sentinels that means never reaching the promoted replica. A handshake that has not ended
 * within REDIS_CONNECT_TIMEOUT_MS drops the connection, and the next attempt asks again.
 */
function watchHandshake(redis: Redis): Redis {
  let timer: NodeJS.Timeout | undefined;
  const clear = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  redis.on('connect', () => {
    clear();
    timer = setTimeout(() => {
      timer = undefined;
      if (redis.status === 'connect') redis.disconnect(true);
    }, limits.REDIS_CONNECT_TIMEOUT_MS);
    timer.unref();
  });
  redis.on('ready', clear);
  redis.on('close', clear);
  return redis;
}

export interface SentinelTarget {
  sentinels: readonly SentinelAddress[];
  /** The primary's name at the Sentinels. */
  name: string;
  username?: string | undefined;
  password?: string | undefined;
  sentinelPassword?: string | undefined;
}

/**
 * A connection to the primary the Sentinels name, following it across failovers: ioredis asks
 * the Sentinels at every (re)connect and checks the node's role. A failover reaches us as a
 * closed connection (Sentinel kills the clients of the nodes it reconfigures), a READONLY reply
 * (redisOptions reconnects), or, for a frozen primary, a command timeout (the ledger's runner
 * resets the connection).
 * ioredis's `failoverDetector` (reconnect on `+switch-master`) stays off: measured here, a
 * `+switch-master` arriving while the client was reconnecting ended the client for good
 * (status `end`, every later command "Connection is closed") instead of reconnecting it.
 * src/redis/sentinel-watch.ts does that job, and drops only a connected client.
 */
export function createSentinelRedis(target: SentinelTarget): Redis {
  return reviveEnded(watchHandshake(new Redis({
    ...redisOptions(),
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.name,
    role: 'master',
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
    sentinelCommandTimeout: limits.REDIS_CONNECT_TIMEOUT_MS,
    // Asking the Sentinels again is cheap; a long back-off would only lengthen a failover.
    sentinelRetryStrategy: (attempt) => Math.min(attempt * 50, limits.REDIS_RECONNECT_DELAY_MAX_MS),
    failoverDetector: false,
  })));
}

/** Connections the service is closing on purpose (shutdown): reviveEnded leaves them ended. */
const closing = new WeakSet<Redis>();

/** Call before quitting or disconnecting a connection for good. */
export function markClosing(redis: Redis): void {
  closing.add(redis);
}

/**
 * A safety net under the guard in the ledger's runner: should a Sentinel client still end
 * (status `end`: ioredis stops reconnecting, and every command fails "Connection is closed"),
 * start it again, unless the service is shutting it down.
 */
function reviveEnded(redis: Redis): Redis {
  redis.on('end', () => {
    if (closing.has(redis)) return;
    setTimeout(() => {
      if (redis.status === 'end' && !closing.has(redis)) redis.connect().catch(() => {});
    }, limits.REDIS_RECONNECT_DELAY_MAX_MS).unref();
  });
  return redis;
}

/** Where the connection goes now, `host:port` (ioredis's socket; '' when not connected). */
export function connectedAddress(redis: Redis): string {
  const stream = (redis as unknown as { stream?: { remoteAddress?: string; remotePort?: number } })
    .stream;
  if (stream?.remoteAddress === undefined || redis.status !== 'ready') return '';
  const host = stream.remoteAddress.replace(/^::ffff:/, '');
  return `${host.includes(':') ? `[${host}]` : host}:${stream.remotePort ?? ''}`;
}
