/**
 * Keeps the service's Sentinel-mode connections on the primary the Sentinels name now. ioredis
 * asks the Sentinels once per connection attempt and checks only that the node calls itself a
 * primary, which two kinds of stale connection pass (both seen in test/ha):
 * - an attempt that asked while the old primary was frozen and completed when it was thawed:
 *   the thawed node still calls itself primary until Sentinel demotes it (~10 s later);
 * - a connection to an old primary that stays alive (a planned failover, or a replication cut
 *   followed by one): nothing closes it until that demotion.
 * So each connection is checked against the Sentinels when it becomes ready, and again whenever
 * a Sentinel announces `+switch-master`; one on another node than the named primary is dropped,
 * and ioredis asks the Sentinels again. (ioredis's own `failoverDetector` is off: see client.ts.)
 *
 * Only a connected client is dropped (never one still connecting: client.ts says why), and at
 * most once per RECHECK_INTERVAL_MS, so a node the Sentinels name by an address this service
 * does not see (a NAT) cannot make it reconnect in a loop; that mismatch is reported instead.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import { connectedAddress, type SentinelTarget } from './client.js';

const SWITCH_CHANNEL = '+switch-master';
/** One drop per connection per this long: enough for a reconnect to ask the Sentinels again. */
const RECHECK_INTERVAL_MS = 1000;

export class SentinelWatch {
  private readonly sentinels: Redis[];
  private readonly subscribers: Redis[];
  private readonly watched = new Set<Redis>();
  private readonly lastDrop = new WeakMap<Redis, number>();

  constructor(private readonly target: SentinelTarget,
    private readonly warn: (message: string) => void = () => {}) {
    const connect = () => target.sentinels.map((s) => {
      const redis = new Redis({ host: s.host, port: s.port, lazyConnect: true,
        enableOfflineQueue: false, maxRetriesPerRequest: 1,
        commandTimeout: limits.REDIS_COMMAND_TIMEOUT_MS,
        connectTimeout: limits.REDIS_CONNECT_TIMEOUT_MS,
        retryStrategy: (n) => Math.min(n * 50, limits.REDIS_RECONNECT_DELAY_MAX_MS),
        ...(target.sentinelPassword === undefined ? {} : { password: target.sentinelPassword }),
      });
      redis.on('error', () => {});
      return redis;
    });
    this.sentinels = connect();
    this.subscribers = connect();
  }

  /** Connects to the Sentinels and listens for failovers; never fails (each retries alone). */
  start(): void {
    for (const s of this.sentinels) s.connect().catch(() => {});
    for (const s of this.subscribers) {
      s.on('message', (channel: string, message: string) => {
        if (channel !== SWITCH_CHANNEL) return;
        // "<name> <old ip> <old port> <new ip> <new port>"
        const [name, , , host, port] = message.split(' ');
        if (name !== this.target.name || host === undefined || port === undefined) return;
        for (const redis of this.watched) void this.verify(redis, { host, port });
      });
      // Re-subscribes after a reconnect by itself (ioredis keeps the subscription).
      s.connect().then(() => s.subscribe(SWITCH_CHANNEL)).catch(() => {});
    }
  }

  /** Checks `redis` now and at every reconnection. */
  watch(redis: Redis): void {
    this.watched.add(redis);
    redis.on('ready', () => void this.verify(redis));
  }

  stop(): void {
    this.watched.clear();
    for (const s of [...this.sentinels, ...this.subscribers]) s.disconnect();
  }

  /** The primary the first Sentinel that answers names; undefined when none does. */
  private async named(): Promise<{ host: string; port: string } | undefined> {
    for (const s of this.sentinels) {
      if (s.status !== 'ready') continue;
      try {
        const reply = await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.target.name);
        if (Array.isArray(reply) && typeof reply[0] === 'string' && typeof reply[1] === 'string') {
          return { host: reply[0], port: reply[1] };
        }
      } catch { /* the next Sentinel */ }
    }
    return undefined;
  }

  private async verify(redis: Redis, known?: { host: string; port: string }): Promise<void> {
    try {
      const named = known ?? await this.named();
      if (named === undefined || redis.status !== 'ready') return;
      const ip = isIP(named.host) !== 0 ? named.host : (await lookup(named.host)).address;
      const want = `${ip.includes(':') ? `[${ip}]` : ip}:${named.port}`;
      const have = connectedAddress(redis);
      if (have === '' || have === want || redis.status !== 'ready') return;
      const now = Date.now();
      if (now - (this.lastDrop.get(redis) ?? 0) < RECHECK_INTERVAL_MS) {
        this.warn(`connected to ${have}, but the Sentinels name ${want} as the primary`);
        return;
      }
      this.lastDrop.set(redis, now);
      redis.disconnect(true);
    } catch { /* a Sentinel or DNS failing: the connection stays; the next event checks again */ }
  }
}
