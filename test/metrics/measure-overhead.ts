/**
 * What metrics cost per transfer, measured two ways (until the bench harness exists):
 *   1. end to end: transfers through app.inject with metrics on and off (twice, for the noise
 *      floor), in rounds of random order, on one real redis-server of our own (a temp dir, a
 *      free port; never the shared 6379);
 *   2. the recorders alone: what one transfer adds (a script observation, a transfer count, an
 *      HTTP observation), a million times over.
 * Authentication is on in every app, as in production (the test key; rate limit out of the way),
 * so it costs all three alike and drops out of the differences.
 * Run: npx tsx test/metrics/measure-overhead.ts [rounds] [transfersPerRound]
 * Not a test (nothing asserts a number); it prints the figures the README quotes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/app.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { createLedgerMetrics } from '../../src/metrics/ledger-metrics.js';
import { decisionRecorder, httpRecorder, scriptRecorder } from '../../src/metrics/recorders.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { createRedis } from '../../src/redis/client.js';
import { startEmbeddedRedis } from '../../src/redis/embedded.js';
// Not ../helpers/ledger.js (authenticateInjects): it imports vitest, and this is a plain script.
import { AUTH_HEADER, TEST_KEYS } from '../helpers/auth.js';

const ROUNDS = Number(process.argv[2] ?? 10);
const PER_ROUND = Number(process.argv[3] ?? 1000);
const JSON_HEADERS = { 'content-type': 'application/json', ...AUTH_HEADER };

type Variant = Awaited<ReturnType<typeof variant>>;

async function variant(url: string, name: string, metrics: boolean) {
  const redis = createRedis(url);
  redis.on('error', () => {});
  await redis.connect();
  const appMetrics = metrics ? createLedgerMetrics() : false;
  const ledger = new Ledger({ redis, keys: ledgerKeys('bench', name),
    observer: appMetrics === false ? undefined : appMetrics.observer });
  await ledger.ensureScripts();
  const app = await buildApp({ ledger, redis, metrics: appMetrics,
    auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 1_000_000 } });
  await app.ready();
  for (const [id, overdraftLimit] of [['cash', 'unlimited'], ['a', '0']]) {
    await app.inject({ method: 'POST', url: '/accounts', headers: JSON_HEADERS,
      payload: JSON.stringify({ id, currency: 'USD', overdraftLimit }) });
  }
  let next = 0;
  return {
    name,
    /** Seconds per transfer over `count` sequential committed transfers. */
    async round(count: number): Promise<number> {
      const started = performance.now();
      for (let i = 0; i < count; i++) {
        const res = await app.inject({ method: 'POST', url: '/transfers', headers: JSON_HEADERS,
          payload: JSON.stringify({ id: `t${next++}`, from: 'cash', to: 'a', amount: '1' }) });
        if (res.statusCode !== 201) throw new Error(`transfer answered ${res.statusCode}`);
      }
      return (performance.now() - started) / 1000 / count;
    },
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const us = (seconds: number) => `${(seconds * 1e6).toFixed(1)} µs`;

async function endToEnd(url: string): Promise<void> {
  // Two apps without metrics: their difference is the noise floor the third is judged against.
  const variants = [await variant(url, 'off-a', false), await variant(url, 'off-b', false),
    await variant(url, 'on', true)];
  for (const v of variants) await v.round(PER_ROUND / 2); // warm-up: JIT, script cache, socket
  const times = variants.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    // A fresh random order each round, so drift (GC, disk, other load) hits all alike.
    const order = [0, 1, 2].sort(() => Math.random() - 0.5);
    for (const i of order) times[i]?.push(await (variants[i] as Variant).round(PER_ROUND));
  }
  for (const v of variants) await v.close();
  const base = times[0] as number[];
  console.log(`end to end, ${ROUNDS} rounds of ${PER_ROUND} transfers per app, in random order:`);
  for (const [i, v] of variants.entries()) {
    const own = times[i] as number[];
    // Paired by round: the apps of one round ran back to back under the same load.
    const paired = own.map((t, j) => t - (base[j] as number)).sort((a, b) => a - b);
    const quartile = (q: number) => paired[Math.floor(q * (paired.length - 1))] as number;
    console.log(`  ${v.name.padEnd(6)} median ${us(median(own))} per transfer; minus off-a, ` +
      `per round: median ${us(median(paired))}, quartiles ${us(quartile(0.25))} … ` +
      `${us(quartile(0.75))}`);
  }
}

function recordersAlone(): void {
  const m = createRegistry({ defaultMetrics: false });
  const script = scriptRecorder(m.scriptDuration, (e) => { throw e; });
  const transfers = decisionRecorder(m.transfers, m.accountCreations, m.batchRefusals,
    m.holds, m.holdSweepCalls);
  const http = httpRecorder(m.httpDuration);
  type Outcome = Parameters<typeof transfers.transferDecided>[0];
  const decided = { kind: 'decided', replayed: false,
    transfer: { status: 'committed' } } as unknown as Outcome;
  const n = 1_000_000;
  const once = () => {
    script.scriptCompleted?.('transfer', 'ok', 0.00012);
    transfers.transferDecided(decided);
    http.record('POST', '/transfers', 201, 0.0003);
  };
  for (let i = 0; i < 100_000; i++) once(); // warm-up
  const started = performance.now();
  for (let i = 0; i < n; i++) once();
  const perTransfer = (performance.now() - started) / 1000 / n;
  console.log(`recorders alone: ${(perTransfer * 1e9).toFixed(0)} ns per transfer ` +
    '(script observation + transfer count + HTTP observation)');
}

const dir = mkdtempSync(join(tmpdir(), 'ledger-metrics-bench-'));
// everysec: an fsync per transfer (always) would add a millisecond of disk noise to both sides
// of a difference of microseconds; what metrics cost does not depend on the fsync policy.
const redis = await startEmbeddedRedis({ dataDir: dir, appendfsync: 'everysec' });
try {
  recordersAlone();
  await endToEnd(redis.url);
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
