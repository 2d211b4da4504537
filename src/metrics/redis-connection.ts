/**
 * Redis connection metrics from the client itself: up/down from its events, reconnection
 * attempts, and every failed command by kind.
 *
 * Failed commands are counted by wrapping this client's `sendCommand`, through which ioredis
 * sends every command (pipelines included), and watching the command's promise. ioredis's own
 * `ioredis:command` diagnostics channel was not used: it is process-wide (it would mix up two
 * apps' clients), misses commands rejected before the write (offline, not connected), and
 * copies every argument of every command once subscribed.
 */
import type { Command, Redis } from 'ioredis';
import { connectedAddress } from '../redis/client.js';
import type { Metrics } from './registry.js';

export const COMMAND_ERROR_KINDS = ['reply', 'busy', 'timeout', 'connection'] as const;
type ErrorKind = (typeof COMMAND_ERROR_KINDS)[number];

export function commandErrorKind(error: unknown): ErrorKind {
  if (error instanceof Error && error.name === 'ReplyError') {
    // A script has run past busy-reply-threshold: Redis refuses everything else meanwhile.
    return error.message.startsWith('BUSY') ? 'busy' : 'reply';
  }
  if (error instanceof Error && error.message === 'Command timed out') return 'timeout';
  return 'connection';
}

/** Starts watching `redis`; the returned function undoes everything (on app close). */
export function watchRedisConnection(redis: Redis, m: Metrics): () => void {
  const errors = new Map(COMMAND_ERROR_KINDS.map((kind) => {
    const child = m.redisCommandErrors.labels({ kind });
    child.inc(0);
    return [kind, child] as const;
  }));
  const countError = (error: unknown) => errors.get(commandErrorKind(error))?.inc();
  const original = redis.sendCommand;
  const counting = function (this: Redis, command: Command, stream?: unknown) {
    const result = original.call(this, command, stream as never);
    command.promise.catch(countError);
    return result;
  };
  redis.sendCommand = counting;

  // The primary's address at each (re)connect: with Sentinels, a new one is a failover.
  let primary = '';
  const found = () => {
    const address = connectedAddress(redis);
    if (address === '' || address === primary) return;
    if (primary !== '') m.redisFailovers.inc();
    primary = address;
    m.redisPrimary.reset();
    m.redisPrimary.labels({ address }).set(1);
  };
  const up = () => {
    m.redisUp.set(1);
    found();
  };
  const down = () => m.redisUp.set(0);
  const reconnecting = () => m.redisReconnects.inc();
  redis.on('ready', up);
  redis.on('close', down);
  redis.on('end', down);
  redis.on('reconnecting', reconnecting);
  m.redisUp.set(redis.status === 'ready' ? 1 : 0);
  m.redisFailovers.inc(0);
  found();

  return () => {
    // Only undo our own wrapper; if someone wrapped it after us, leave theirs in place.
    if (redis.sendCommand === counting) redis.sendCommand = original;
    redis.off('ready', up);
    redis.off('close', down);
    redis.off('end', down);
    redis.off('reconnecting', reconnecting);
  };
}
