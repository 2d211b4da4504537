/**
 * Redis Cluster mode (REDIS_CLUSTER_NODES). Every key of one ledger shares its hash tag, so a
 * ledger lives in one slot, on one primary, and each script stays atomic there.
 *
 * ioredis's Cluster client routes keyed commands by slot and follows MOVED and ASK, but it gives
 * up after `maxRedirections` (TRYAGAIN lasts as long as a busy slot's migration), and it does not
 * say which node ran a command. The ledger needs both: a refusal that ran nothing is retried
 * here, with the same id, for CLUSTER_RETRY_BUDGET_MS (then 503, outcome unknown, retry safe:
 * our scripts are idempotent), and a replica acknowledgement (WAIT) must be asked of the node
 * that took the write. So scripts are sent by `runOnSlot` to the primary that owns their slot,
 * on that node's own connection of ioredis's pool; everything else goes through the client.
 */
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type Redis } from 'ioredis';
import type { SentinelAddress } from '../config/env.js';
import { limits } from '../config/limits.js';
import {
  ensureScriptsLoaded, runScript, type Script, type ScriptArg, type ScriptObserver,
} from '../ledger/scripts.js';
import { redisOptions } from './client.js';

/** CRC16 of the hash tag mod 16384: the package ioredis routes with (it has no types). */
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

/** Why a script was sent again: the refusals that prove it did not run. */
export const CLUSTER_RETRY_REASONS =
  ['moved', 'ask', 'tryagain', 'clusterdown', 'unrouted'] as const;
export type ClusterRetryReason = (typeof CLUSTER_RETRY_REASONS)[number];

export interface ClusterTarget {
  nodes: readonly SentinelAddress[];
  username?: string | undefined;
  password?: string | undefined;
}

/**
 * The client, typed as the single-node client the ledger's modules take: they use keyed
 * commands only (routed by slot), and the node-wide ones (SCRIPT, INFO, CONFIG, WAIT) go through
 * `primariesOf` and `runOnSlot` below.
 */
export function createClusterRedis(target: ClusterTarget): Redis {
  const {
    lazyConnect: _lazy, enableOfflineQueue: _offline, retryStrategy: _retry, ...node
  } = redisOptions();
  const cluster = new Cluster(target.nodes.map((n) => ({ host: n.host, port: n.port })), {
    lazyConnect: true,
    // Primaries only: a replica lags (asynchronous replication), and the ledger reads its writes.
    scaleReads: 'master',
    // Commands wait while the client loads the slot map, as they must after a failover; each
    // one's own commandTimeout still bounds the wait.
    enableOfflineQueue: true,
    enableReadyCheck: true,
    maxRedirections: 16,
    retryDelayOnMoved: 0,
    retryDelayOnTryAgain: limits.CLUSTER_RETRY_DELAY_MS,
    retryDelayOnClusterDown: 4 * limits.CLUSTER_RETRY_DELAY_MS,
    retryDelayOnFailover: 4 * limits.CLUSTER_RETRY_DELAY_MS,
    slotsRefreshTimeout: limits.REDIS_CONNECT_TIMEOUT_MS,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 50, limits.REDIS_RECONNECT_DELAY_MAX_MS),
    redisOptions: { ...node,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }) },
  });
  cluster.on('error', () => {}); // each failed command reports its own error
  cluster.on('node error', () => {});
  return cluster as unknown as Redis;
}

export function asCluster(redis: Redis): Cluster | undefined {
  return (redis as unknown) instanceof Cluster ? redis as unknown as Cluster : undefined;
}

/** The primaries to run node-wide commands on: every one in a cluster, else `redis` itself. */
export function primariesOf(redis: Redis): Redis[] {
  const cluster = asCluster(redis);
  return cluster === undefined ? [redis] : cluster.nodes('master');
}

/** `host:port` of a node's connection, as a slot map names it. */
export function nodeKey(node: Redis): string {
  return `${node.options.host ?? ''}:${node.options.port ?? ''}`;
}

function nodeAt(cluster: Cluster, key: string | undefined): Redis | undefined {
  if (key === undefined) return undefined;
  return cluster.nodes('master').find((n) => nodeKey(n) === key);
}

/** Loads the scripts on every primary (a new one gets them on first use too: NOSCRIPT → EVAL). */
export async function ensureScriptsEverywhere(redis: Redis, scripts: Iterable<Script>):
  Promise<boolean> {
  const list = [...scripts];
  const all = await Promise.all(primariesOf(redis).map((n) => ensureScriptsLoaded(n, list)));
  return all.every(Boolean);
}

/** A refusal that proves the command did not run, by its reason; undefined for anything else. */
export function refusal(error: unknown): { reason: ClusterRetryReason; target?: string }
  | undefined {
  if (!(error instanceof Error)) return undefined;
  const message = error.message;
  const redirect = /^(MOVED|ASK) [0-9]+ (\S+)/.exec(message);
  if (redirect !== null) {
    return { reason: redirect[1] === 'MOVED' ? 'moved' : 'ask', target: redirect[2] as string };
  }
  if (message.startsWith('TRYAGAIN')) return { reason: 'tryagain' };
  if (message.startsWith('CLUSTERDOWN')) return { reason: 'clusterdown' };
  // ioredis refused to send it: offline, or its own redirections ran out on one of the above.
  if (/enableOfflineQueue|Too many Cluster redirections|Cluster isn't ready/.test(message)) {
    return { reason: 'unrouted' };
  }
  return undefined;
}

/** Not sent at all: no primary is known for the slot yet (the slot map is loading). */
class Unrouted extends Error {
  override readonly name = 'ClusterUnroutedError';
}

export interface SlotRun {
  reply: unknown;
  /** The primary's connection that ran it: a WAIT for this write must go there. */
  node: Redis;
  /**
   * It ran after ASKING: `node` is importing the slot, and a later command there on its keys
   * (the replica acks' mark) needs ASKING too, or it is answered MOVED.
   */
  asked: boolean;
}

/**
 * Runs a script on the primary that owns the slot of its keys (all of one ledger: one slot),
 * retrying the refusals that prove it did not run until CLUSTER_RETRY_BUDGET_MS is spent; then
 * the last refusal is thrown (503, as every unavailable error). Anything else is thrown at once.
 */
export async function runOnSlot(cluster: Cluster, script: Script, keys: readonly string[],
  args: readonly ScriptArg[], observer: ScriptObserver | undefined,
  onRetry?: (reason: ClusterRetryReason) => void): Promise<SlotRun> {
  const slot = calculateSlot(keys[0] as string);
  const deadline = performance.now() + limits.CLUSTER_RETRY_BUDGET_MS;
  let delay: number = limits.CLUSTER_RETRY_DELAY_MS;
  let asking: Redis | undefined;
  for (;;) {
    const node = asking ?? nodeAt(cluster, cluster.slots[slot]?.[0]);
    try {
      if (node === undefined) throw new Unrouted(`no primary known for slot ${slot} yet`);
      if (asking !== undefined) {
        // ASKING applies to the next command on the connection: the script's EVALSHA, queued in
        // this same turn. Loaded first, so that no NOSCRIPT → EVAL comes between them.
        await ensureScriptsLoaded(node, [script]);
        void node.asking().catch(() => {});
      }
      return { reply: await runScript(node, script, keys, args, observer), node,
        asked: asking !== undefined };
    } catch (error) {
      const refused = error instanceof Unrouted ? { reason: 'unrouted' as const }
        : refusal(error);
      if (refused === undefined || performance.now() + delay > deadline) throw error;
      onRetry?.(refused.reason);
      asking = undefined;
      if (refused.reason === 'ask') {
        asking = nodeAt(cluster, refused.target);
        if (asking !== undefined) continue;
      }
      if (refused.reason === 'moved') {
        // ioredis does this on a MOVED it sees itself: the slot's new owner, now.
        const owner = nodeAt(cluster, refused.target);
        if (owner !== undefined && refused.target !== undefined) {
          cluster.slots[slot] = [refused.target];
          continue;
        }
      }
      if (refused.reason !== 'tryagain') cluster.refreshSlotsCache();
      await sleep(delay);
      delay = Math.min(delay * 2, 8 * limits.CLUSTER_RETRY_DELAY_MS);
    }
  }
}
