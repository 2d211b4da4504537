/**
 * LEDGER_REPLICA_ACKS on a real primary + replica pair: a write is answered only once the
 * replica has it; with the replica frozen or gone, writes answer 503 within the ack timeout and
 * nothing is acknowledged that only the primary holds; a replay on a fresh connection still
 * waits for the replica (the mark, src/redis/replica-acks.ts); when the replica returns, writes
 * resume without a restart; concurrent writes share WAITs (group commit).
 * What the replica holds is read from the replica itself, not from the service.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import {
  admin, type Answer, call, calls, metric, type OpsApp, opsApp, REPLICATION_ARGS, startRedis,
  startReplica, type TestRedis, until,
} from './helpers.js';

/** The service's default: on a busy machine a replica's acknowledgement can take 200 ms. */
const ACK_TIMEOUT_MS = 500;
/**
 * Liveness only: a write with its replica frozen answers 503 after about ACK_TIMEOUT_MS (one
 * WAIT, or two when it queued behind another); ten times that on a busy machine.
 */
const ANSWER_LIVENESS_MS = 10 * (2 * ACK_TIMEOUT_MS + limits.REDIS_COMMAND_TIMEOUT_MS);

let primary: TestRedis;
let replica: TestRedis;
let p: Redis;
let r: Redis;
let o: OpsApp;

const freeze = () => process.kill(replica.server.child.pid as number, 'SIGSTOP');
const thaw = () => process.kill(replica.server.child.pid as number, 'SIGCONT');
/** Committed records the replica holds (its copy of the journal). */
const onReplica = () => r.xlen(o.keys.journal());
const transfer = (id: string, amount = '1') =>
  call(o.base, 'POST', '/transfers', { id, from: 'cash', to: 'alice', amount });
/**
 * What a client does with a 503 (unknown outcome): the same request again, until it is decided.
 * Where a test needs a write acknowledged, a slow acknowledgement on a busy machine is a retry,
 * not a failure; liveness bounds it.
 */
async function decided(send: () => Promise<Answer>): Promise<Answer> {
  const deadline = Date.now() + ANSWER_LIVENESS_MS;
  for (;;) {
    const answer = await send();
    if (answer.status !== 503 || Date.now() > deadline) return answer;
  }
}

beforeAll(async () => {
  primary = await startRedis({ extraArgs: REPLICATION_ARGS });
  replica = await startReplica(primary);
  p = await admin(primary.url);
  r = await admin(replica.url);
  await until('the replica to sync', async () =>
    /master_link_status:up/.test(await r.info('replication')));
  o = await opsApp(primary.url, { replicaAcks: { required: 1, timeoutMs: ACK_TIMEOUT_MS } });
  for (const [id, overdraftLimit] of [['cash', 'unlimited'], ['alice', '0']]) {
    expect((await decided(() => call(o.base, 'POST', '/accounts',
      { id, currency: 'USD', overdraftLimit }))).status).toBe(201);
  }
});
afterAll(async () => {
  if (replica !== undefined) thaw();
  await o?.close();
  p?.disconnect();
  r?.disconnect();
  await replica?.dispose();
  await primary?.dispose();
});

test('every 201 is already on the replica when the client gets it', async () => {
  const before = await onReplica();
  for (let i = 0; i < 30; i++) {
    expect((await decided(() => transfer(`seq-${i}`))).status).toBe(201);
    // Read at once, no waiting: WAIT answered only after the replica had applied it.
    expect(await onReplica()).toBe(before + i + 1);
  }
});

test('replica frozen: writes answer 503 within the timeout, none is acknowledged', async () => {
  const failuresBefore = await metric(o.app, 'ledger_replica_ack_failures_total');
  const decidedBefore = await p.xlen(o.keys.journal());
  freeze();
  try {
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => transfer(`frozen-${i}`)));
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.code).toBe('UNAVAILABLE');
      expect(a.end - a.start).toBeLessThan(ANSWER_LIVENESS_MS);
    }
    // The primary did decide them: that is why the outcome is unknown, not rejected.
    expect(await p.xlen(o.keys.journal())).toBe(decidedBefore + 5);
    expect(await metric(o.app, 'ledger_replica_ack_failures_total'))
      .toBeGreaterThanOrEqual(failuresBefore + 5);
    await o.app.metrics.refresh();
    const ready = await call(o.base, 'GET', '/readyz');
    expect(ready.status).toBe(200); // the replica is frozen, not gone: the primary counts it
  } finally {
    thaw();
  }
  // Back: the same ids are replays now, and acknowledged only once the replica has them.
  for (let i = 0; i < 5; i++) {
    const again = await decided(() => transfer(`frozen-${i}`));
    expect(again.status).toBe(201);
    expect(again.replayed).toBe(true);
  }
  expect(await onReplica()).toBe(await p.xlen(o.keys.journal()));
});

test('a replay on a fresh connection waits for the replica too (the mark)', async () => {
  // Decided on the primary while the replica is frozen: answered 503.
  freeze();
  let fresh: OpsApp | undefined;
  try {
    expect((await transfer('marked')).status).toBe(503);
    // Another instance (new connections) gets the retry, a replay that writes nothing. What
    // is checked is the behaviour, not the mechanism: Redis 7.0.15 already lets a WAIT after
    // any command cover the primary's offset at that command (this passes without the mark,
    // measured), but WAIT is documented for the connection's own writes, and the mark
    // (replica-acks.ts) keeps a replay safe wherever that documented meaning is all there is.
    fresh = await opsApp(primary.url, { ledgerName: ledgerNameOf(o),
      replicaAcks: { required: 1, timeoutMs: ACK_TIMEOUT_MS } });
    const retry = await call(fresh.base, 'POST', '/transfers',
      { id: 'marked', from: 'cash', to: 'alice', amount: '1' });
    expect(retry.status).toBe(503);
  } finally {
    thaw();
  }
  const after = await decided(() => call((fresh as OpsApp).base, 'POST', '/transfers',
    { id: 'marked', from: 'cash', to: 'alice', amount: '1' }));
  expect(after.status).toBe(201);
  expect(after.replayed).toBe(true);
  await fresh.close();
});

function ledgerNameOf(app: OpsApp): string {
  return /\{(.+)\}/.exec(app.keys.tag)?.[1] as string;
}

test('a connection lost while its WAIT waits: 503, never a 201 the replica lacks', async () => {
  const writer = o.writer as Redis;
  const id = await writer.client('ID');
  freeze();
  try {
    const answer = transfer('killed-wait');
    // The transfer's script has run and its WAIT is blocked on the frozen replica.
    await until('the WAIT to block', async () =>
      /blocked_clients:[1-9]/.test(await p.info('clients')), ANSWER_LIVENESS_MS);
    await p.client('KILL', 'ID', String(id));
    // ioredis re-sends the WAIT on its new connection, which never wrote: under WAIT's
    // documented meaning it could answer at once, with the replica still frozen. (Redis 7.0.15
    // makes it wait anyway, measured; the epoch guard in replica-acks.ts does not rely on that.)
    const a = await answer;
    expect(a.status).toBe(503);
    expect(a.code).toBe('UNAVAILABLE');
  } finally {
    thaw();
  }
  expect((await decided(() => transfer('killed-wait'))).status).toBe(201);
});

test('replica gone: 503 and not ready; back: writes resume without a restart', async () => {
  await replica.stop();
  await until('the primary to see no replica', async () =>
    /connected_slaves:0/.test(await p.info('replication')));
  const gone = await transfer('gone-1');
  expect(gone.status).toBe(503);
  expect(gone.code).toBe('UNAVAILABLE');
  const ready = await call(o.base, 'GET', '/readyz');
  expect(ready.status).toBe(503);
  expect(ready.text).toContain('LEDGER_REPLICA_ACKS=1');
  await replica.restart();
  r.disconnect();
  r = await admin(replica.url);
  await until('the replica to sync again', async () =>
    /master_link_status:up/.test(await r.info('replication')));
  await until('writes to be acknowledged again', async () =>
    (await transfer('gone-1')).status === 201);
  expect((await decided(() => transfer('gone-2'))).status).toBe(201);
  const back = await call(o.base, 'GET', '/readyz');
  expect(back.status).toBe(200);
  expect(JSON.parse(back.text)).toMatchObject({ advisory: {
    primary: `127.0.0.1:${primary.port}`,
    replicas: expect.stringMatching(/^127\.0\.0\.1:\d+ online, lag \d+ s$/) } });
});

test('concurrent writes share WAITs (group commit)', async () => {
  const waitsBefore = await calls(p, 'wait');
  const count = 200;
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) => decided(() => transfer(`group-${i}`))));
  expect(answers.every((a) => a.status === 201)).toBe(true);
  const waits = (await calls(p, 'wait')) - waitsBefore;
  console.info(`group commit: ${count} transfers, ${waits} WAITs`);
  expect(waits).toBeGreaterThan(0);
  // One WAIT per transfer would be `count`. How many share one depends on how the requests
  // arrive (client and service share this process and two cores), so only sharing is asserted.
  expect(waits).toBeLessThan(count * 0.8);
  expect(await onReplica()).toBe(await p.xlen(o.keys.journal()));
});
