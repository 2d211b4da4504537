/**
 * REDIS_CLUSTER_NODES as src/config/env.ts reads it: the nodes, the settings that go with it,
 * and the combinations refused at start (each names the variable), so that a typo or a mix of
 * modes stops the service instead of writing to the wrong Redis.
 */
import { expect, test } from 'vitest';
import { loadConfig } from '../../src/config/env.js';

const NODES = '127.0.0.1:7000,[::1]:7001,redis-3:7002';

test('the nodes, with credentials and replica acks', () => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: NODES, REDIS_USERNAME: 'ledger',
    REDIS_PASSWORD: 'secret', LEDGER_REPLICA_ACKS: '1', LEDGER_AUTH: 'off' });
  expect(config.clusterNodes).toEqual([{ host: '127.0.0.1', port: 7000 },
    { host: '::1', port: 7001 }, { host: 'redis-3', port: 7002 }]);
  expect(config.redisUrl).toBeUndefined();
  expect([config.redisUsername, config.redisPassword, config.replicaAcks])
    .toEqual(['ledger', 'secret', 1]);
});

test('replica acks stay off unless asked for (the default with a cluster, as with a URL)', () => {
  expect(loadConfig({ REDIS_CLUSTER_NODES: NODES, LEDGER_AUTH: 'off' }).replicaAcks).toBe(0);
});

test.each([
  [{ REDIS_CLUSTER_NODES: '127.0.0.1' }, 'REDIS_CLUSTER_NODES must be comma-separated host:port'],
  [{ REDIS_CLUSTER_NODES: '127.0.0.1:70000' }, 'REDIS_CLUSTER_NODES must be'],
  [{ REDIS_CLUSTER_NODES: NODES, REDIS_URL: 'redis://127.0.0.1:6380' },
    'REDIS_CLUSTER_NODES cannot be used with REDIS_URL'],
  [{ REDIS_CLUSTER_NODES: NODES, REDIS_SENTINELS: '127.0.0.1:26379' },
    'REDIS_CLUSTER_NODES cannot be used with REDIS_URL, REDIS_SENTINELS'],
  [{ REDIS_CLUSTER_NODES: NODES, REDIS_SENTINEL_PASSWORD: 'x' },
    'REDIS_SENTINEL_PASSWORD is for REDIS_SENTINELS only'],
  [{ REDIS_USERNAME: 'ledger' }, 'REDIS_USERNAME is for REDIS_SENTINELS or REDIS_CLUSTER_NODES'],
])('refused: %j', (env, message) => {
  expect(() => loadConfig({ LEDGER_AUTH: 'off', ...env })).toThrow(message);
});
