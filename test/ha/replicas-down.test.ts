/**
 * Replica acknowledgements without a failover (LEDGER_REPLICA_ACKS=1, issue 14): with one
 * replica of two down a write is still acknowledged. With the other cut off, no write is: the
 * primary applies it, WAIT times out, 503 (outcome unknown); with it down too, the primary
 * refuses writes (min-replicas-to-write), 503 again. Once replicas are back, the same requests
 * retried with their ids are acknowledged exactly once each: the applied ones as replays, which
 * must wait for a replica too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../../src/redis/embedded.js';
import type { Attempt } from '../faults/bank/history.js';
import { ServiceProcess } from '../faults/bank/system.js';
import { post } from '../faults/bank/workload.js';
import { API_KEYS_ENV, AUTH_HEADER } from '../helpers/auth.js';
import { MASTER_NAME, type RedisNode } from './nodes.js';
import { Topology, until } from './topology.js';

/** Writes are sent this long with no replica acknowledging (past the ack timeout). */
const NO_ACK_MS = 1500;
const WRITE_PAUSE_MS = 50;
/** Liveness: a restarted replica syncs and acknowledges within seconds; generous here. */
const BACK_LIVENESS_MS = 60_000;
const TEST_TIMEOUT_MS = 120_000;

let topology: Topology;
let service: ServiceProcess;

beforeAll(async () => {
  topology = await Topology.start();
  service = ServiceProcess.spawn(await freePort(), { REDIS_URL: '',
    REDIS_SENTINELS: topology.sentinelsEnv, REDIS_SENTINEL_NAME: MASTER_NAME,
    LEDGER_REPLICA_ACKS: '1', LEDGER_API_KEYS: API_KEYS_ENV, LEDGER_NAME: 'replicas-down' });
  await service.waitReady();
  for (const body of [{ id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' },
    { id: 'alice', currency: 'USD' }]) {
    expect((await post(service.base, '/accounts', body)).status).toBe(201);
  }
}, TEST_TIMEOUT_MS);
afterAll(async () => {
  await service?.kill();
  await topology?.close();
});

const transfer = (id: string) => ({ id, from: 'cash', to: 'alice', amount: '1', metadata: {} });

async function balance(): Promise<string> {
  const res = await fetch(`${service.base}/accounts/alice`, { headers: AUTH_HEADER });
  return (await res.json() as { balance: string }).balance;
}

test('one replica down: still acknowledged; the other cut off, then down: never; back: ' +
  'each retried write applied once', async () => {
  const primary = await topology.waitHealthy();
  const [first, second] = topology.nodes.filter((n) => n !== primary) as [RedisNode, RedisNode];
  await first.kill();
  expect((await post(service.base, '/transfers', transfer('one-down'))).status).toBe(201);

  // The last replica's link cut: the primary applies each write, WAIT gets no ack.
  primary.proxy.setMode('replication', { kind: 'cut' });
  const cut = await writeFor('cut', NO_ACK_MS);
  // It goes down: the primary refuses writes at once (min-replicas-to-write, NOREPLICAS).
  await second.kill();
  primary.proxy.setMode('replication', { kind: 'pass' });
  const down = await writeFor('down', NO_ACK_MS);
  for (const [what, sent] of [['cut off', cut], ['down', down]] as const) {
    const answers = [...new Set(sent.map((a) => `${a.status} ${a.code ?? a.answer}`))];
    console.info(`last replica ${what}: ${sent.length} writes answered ${answers.join(', ')}`);
    expect(answers, `answers with the last replica ${what}`).toEqual(['503 UNAVAILABLE']);
  }

  const restarted = Date.now();
  await Promise.all([first.start(), second.start()]);
  const ids = [...cut.map((_, i) => `cut-${i}`), ...down.map((_, i) => `down-${i}`)];
  const replayed = await retryAll(ids);
  console.info(`replicas back: all ${ids.length} acknowledged ${Date.now() - restarted} ms ` +
    `later, ${replayed.length} as replays (the primary had applied them)`);
  expect(replayed.every((id) => id.startsWith('cut-')), 'refused writes were not applied')
    .toBe(true);
  expect(replayed.length, 'writes applied while cut off are replayed').toBeGreaterThan(0);
  expect(await balance(), 'each write applied once').toBe(String(1 + ids.length));
}, TEST_TIMEOUT_MS);

/** Transfers `<tag>-0`, `<tag>-1`, … one after another for `ms`; their answers. */
async function writeFor(tag: string, ms: number): Promise<Attempt[]> {
  const sent: Attempt[] = [];
  for (const end = Date.now() + ms; Date.now() < end;) {
    sent.push(await post(service.base, '/transfers', transfer(`${tag}-${sent.length}`)));
    await sleep(WRITE_PAUSE_MS);
  }
  return sent;
}

/**
 * Retries every id until it is acknowledged (a replay of what the primary applied, or new);
 * returns the ids acknowledged as replays.
 */
async function retryAll(ids: string[]): Promise<string[]> {
  const pending = new Set(ids);
  const replayed: string[] = [];
  await until('the writes to be acknowledged once a replica is back', async () => {
    for (const id of [...pending]) {
      const a = await post(service.base, '/transfers', transfer(id));
      if (a.status === 201) pending.delete(id);
      if (a.status === 201 && a.replayed) replayed.push(id);
      else if (a.status !== 503) return `${id}: ${a.status} ${a.text}`; // fails at the deadline
    }
    if (pending.size > 0) await sleep(100);
    return pending.size === 0 ? undefined : `${pending.size} not yet acknowledged`;
  }, BACK_LIVENESS_MS);
  return replayed;
}
