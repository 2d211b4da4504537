/**
 * The service's connection to the Redis primary, as configured: a Redis Cluster's nodes, the
 * primary the Sentinels name, or a URL. Used by the service (src/server.ts) and by the
 * archiver's thread (src/archive/thread-main.ts), which keeps a connection of its own.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/env.js';
import { createRedis, createSentinelRedis } from './client.js';
import { createClusterRedis } from './cluster.js';

/** A connection to the primary: the cluster's, the one REDIS_SENTINELS name, or `url`. */
export function primaryConnection(config: Config, url: string): Redis {
  if (config.clusterNodes.length > 0) {
    return createClusterRedis({ nodes: config.clusterNodes, username: config.redisUsername,
      password: config.redisPassword });
  }
  const redis = config.sentinels.length > 0
    ? createSentinelRedis({ sentinels: config.sentinels, name: config.sentinelName,
      username: config.redisUsername, password: config.redisPassword,
      sentinelPassword: config.sentinelPassword })
    : createRedis(url, { tlsCaFile: config.redisTlsCaFile });
  redis.on('error', () => {}); // each failed command reports its own error; avoid log floods
  return redis;
}
