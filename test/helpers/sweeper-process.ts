/**
 * A hold sweeper in a process of its own (test/ops/sweeper-lock.test.ts freezes one with
 * SIGSTOP): `tsx sweeper-process.ts <redisUrl> <ledger> <lockTtlMs>`. Prints one JSON line per
 * event: { token } at start, { released: [seq, …] } per sweep that released something,
 * { stopped, released } when SIGTERM stopped it (after releasing its lock if it still held it).
 */
import { Ledger } from '../../src/ledger/ledger.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { loadScripts, type Script } from '../../src/ledger/scripts.js';
import { HoldSweeper } from '../../src/ledger/sweeper.js';
import { createRedis } from '../../src/redis/client.js';
import { RedisLock } from '../../src/redis/lock.js';

const [url, name, ttl] = process.argv.slice(2);
if (!url || !name || !ttl) throw new Error('usage: sweeper-process <redisUrl> <ledger> <ttlMs>');
const redis = createRedis(url);
redis.on('error', () => {});
await redis.connect();
const keys = ledgerKeys('test', name);
const scripts = loadScripts();
const released: string[] = [];
const ledger = new Ledger({ redis, keys, scripts, observer: {
  holdsExpired(outcome) {
    if (outcome.released.length === 0) return;
    const seqs = outcome.released.map((r) => r.seq);
    released.push(...seqs);
    console.log(JSON.stringify({ released: seqs }));
  },
} });
await ledger.ensureScripts();
const lock = new RedisLock(redis, scripts.get('lock') as Script, keys.lock('sweeper'),
  Number(ttl));
const sweeper = new HoldSweeper({ ledger, lock, intervalMs: 50,
  onError: (error) => console.log(JSON.stringify({ error: String(error) })) });
sweeper.start();
console.log(JSON.stringify({ token: lock.token }));
process.once('SIGTERM', () => {
  void sweeper.stop().then(() => {
    console.log(JSON.stringify({ stopped: true, released }));
    redis.disconnect();
  });
});
