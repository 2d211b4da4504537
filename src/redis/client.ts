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
  return new Redis(url, options);
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
 * the Sentinels at every (re)connect, checks the node's role, and reconnects on READONLY (the
 * node was demoted, redisOptions) or when a Sentinel announces `+switch-master`
 * (failoverDetector), so writes reach the new primary without waiting for a timeout.
 */
export function createSentinelRedis(target: SentinelTarget): Redis {
  return new Redis({
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
    failoverDetector: true,
  });
}

/** Where the connection goes now, `host:port` (ioredis's socket; '' when not connected). */
export function connectedAddress(redis: Redis): string {
  const stream = (redis as unknown as { stream?: { remoteAddress?: string; remotePort?: number } })
    .stream;
  if (stream?.remoteAddress === undefined || redis.status !== 'ready') return '';
  const host = stream.remoteAddress.replace(/^::ffff:/, '');
  return `${host.includes(':') ? `[${host}]` : host}:${stream.remotePort ?? ''}`;
}
