/**
 * Change data out to a real RabbitMQ (test/helpers/rabbitmq.ts starts its own): every committed
 * record, as `GET /journal` has it, published once per seq in seq order per ledger with the
 * contract's properties; unroutable messages kept; the broker killed with transfers going on
 * (the lag grows, the errors count, publishing resumes where it stopped); a crash between the
 * broker's confirm and the saved position repeats messages and never skips one; two instances
 * publish each ledger one at a time. The service's own crash (kill -9 of the process) is in
 * test/faults/cdc.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AmqpSink } from '../../src/cdc/amqp.js';
import { CDC_FOLLOWER } from '../../src/cdc/publisher.js';
import { limits } from '../../src/config/limits.js';
import { JournalFollower } from '../../src/ledger/follower.js';
import type { Transfer } from '../../src/ledger/types.js';
import { AUTH_HEADER } from '../helpers/auth.js';
import { type Fixture, fixture, uniqueLedgerName } from '../helpers/ledger.js';
import { startBroker, type TestBroker, TOPOLOGY_DURABLE_AFTER_MS } from '../helpers/rabbitmq.js';
import { consume, type TestConsumer } from './consumer.js';

let broker: TestBroker;
beforeAll(async () => { broker = await startBroker(); }, 120_000);
afterAll(async () => { await broker?.stop(); });

const unique = (what: string) => `${what}-${randomUUID().slice(0, 8)}`;

/** Each POST's answer as sent, by id: a message's body must be the same bytes. */
const answered = new Map<string, string>();

async function ok(f: Fixture, status: number, url: string, payload: object) {
  const res = await f.app.inject({ method: 'POST', url, payload,
    headers: { 'content-type': 'application/json' } });
  expect(res.statusCode, `${url}: ${res.body}`).toBe(status);
  const body = res.json() as Record<string, unknown>;
  if (typeof body.id === 'string') answered.set(`${url}#${body.id}`, res.body);
  return body;
}

async function journal(f: Fixture, prefix = ''): Promise<Array<Record<string, unknown>>> {
  const res = await f.app.inject({ method: 'GET', url: `${prefix}/journal?limit=1000` });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { records: Array<Record<string, unknown>> }).records;
}

async function metric(f: Fixture, name: string): Promise<number> {
  const res = await f.app.inject({ method: 'GET', url: '/metrics', headers: AUTH_HEADER });
  const line = res.body.split('\n')
    .find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? NaN : Number(line.split(' ').at(-1));
}

/** A ledger with cash, alice and bob in USD. */
async function accounts(f: Fixture, prefix = ''): Promise<void> {
  await ok(f, 201, `${prefix}/accounts`, { id: 'cash', currency: 'USD',
    overdraftLimit: 'unlimited' });
  for (const id of ['alice', 'bob']) {
    await ok(f, 201, `${prefix}/accounts`, { id, currency: 'USD' });
  }
}

/** Message ids a deduplicating consumer kept, for one ledger, are its seqs 1..n in order. */
function expectInOrder(received: TestConsumer['received'], ledger: string, n: number): void {
  const seen = new Set<string>();
  const seqs = received.filter((r) => r.messageId.startsWith(`${ledger}:`))
    .filter((r) => !seen.has(r.messageId) && seen.add(r.messageId))
    .map((r) => Number(r.messageId.slice(ledger.length + 1)));
  expect(seqs).toEqual(Array.from({ length: n }, (_v, i) => i + 1));
}

describe('change data to AMQP', () => {
  test('every committed record of every ledger, as GET /journal has it, once per seq, in ' +
    'order, with the contract\'s properties', async () => {
    const exchange = unique('cdc');
    const consumer = await consume(broker.url, exchange, unique('q'));
    const f = await fixture({ cdc: { url: broker.url, exchange } });
    try {
      const main = f.keys.ledger;
      await accounts(f);
      await ok(f, 201, '/transfers', { id: 'fund', from: 'cash', to: 'alice', amount: '100' });
      await ok(f, 201, '/transfers', { id: 'h', from: 'alice', to: 'bob', amount: '10',
        pending: true, timeoutSeconds: 60 });
      await ok(f, 201, '/transfers/h/post', { id: 'h-post', amount: '4' });
      await ok(f, 201, '/transfers/fund/reversals', { id: 'back', amount: '1' });
      await ok(f, 422, '/transfers', { id: 'no', from: 'bob', to: 'alice', amount: '999' });
      const other = uniqueLedgerName();
      await ok(f, 201, '/ledgers', { name: other });
      await accounts(f, `/ledgers/${other}`);
      await ok(f, 201, `/ledgers/${other}/transfers`, { id: 'fund', from: 'cash', to: 'bob',
        amount: '7' });
      await consumer.waitFor(5);
      const records = await journal(f);
      const theirs = await journal(f, `/ledgers/${other}`);
      expect(records).toHaveLength(4);
      const got = consumer.deduplicated();
      const mine = got.filter((m) => m.messageId.startsWith(`${main}:`));
      expect(mine.map((m) => m.body)).toEqual(records);
      expect(mine.map((m) => m.routingKey)).toEqual(
        ['transfer', 'hold', 'post', 'reversal'].map((k) => `${main}.${k}`));
      // The same bytes as the POST answered (one serializer for both).
      const sent = [...answered].filter(([k]) => k.startsWith('/transfers'))
        .map(([, raw]) => raw).filter((raw) => raw.includes('"status":"committed"'));
      expect(mine.map((m) => m.raw)).toEqual(sent);
      for (const m of mine) {
        expect(m).toMatchObject({ messageId: `${main}:${m.body.seq}`, persistent: true,
          contentType: 'application/json', type: m.body.kind });
      }
      expect(got.filter((m) => m.messageId.startsWith(`${other}:`)).map((m) => m.body))
        .toEqual(theirs);
      expect(consumer.received).toHaveLength(got.length); // no duplicate without a failure
      expect(await metric(f, 'ledger_cdc_published_total')).toBe(5);
      expect(await metric(f, 'ledger_cdc_broker_up')).toBe(1);
    } finally {
      await f.close();
      await consumer.close();
    }
  });

  test('a message no binding routes is kept in <exchange>.unrouted, not dropped', async () => {
    const exchange = unique('cdc');
    // Bound to holds only: transfers are unroutable for it.
    const holds = await consume(broker.url, exchange, unique('q'), { pattern: '*.hold' });
    const unrouted = await consume(broker.url, exchange, `${exchange}.unrouted`,
      { bind: false });
    const f = await fixture({ cdc: { url: broker.url, exchange } });
    try {
      await accounts(f);
      await ok(f, 201, '/transfers', { id: 't', from: 'cash', to: 'alice', amount: '5' });
      await ok(f, 201, '/transfers', { id: 'h', from: 'cash', to: 'alice', amount: '5',
        pending: true });
      await holds.waitFor(1);
      await unrouted.waitFor(1);
      expect(holds.deduplicated().map((m) => m.body.id)).toEqual(['h']);
      expect(unrouted.deduplicated().map((m) => m.body.id)).toEqual(['t']);
      expect(await metric(f, 'ledger_cdc_errors_total{reason="returned"}')).toBe(0);
    } finally {
      await f.close();
      await Promise.all([holds.close(), unrouted.close()]);
    }
  });

  test('the broker killed: transfers go on, the lag grows and the errors count; after its ' +
    'restart publishing resumes where it stopped', async () => {
    const exchange = unique('cdc');
    const queue = unique('q');
    const consumer = await consume(broker.url, exchange, queue);
    const f = await fixture({ cdc: { url: broker.url, exchange } });
    try {
      const main = f.keys.ledger;
      await accounts(f);
      let n = 0;
      const transfer = async () => ok(f, 201, '/transfers', { id: `t-${n++}`, from: 'cash',
        to: 'alice', amount: '1' });
      for (let i = 0; i < 20; i++) await transfer();
      await consumer.waitFor(20);
      // RabbitMQ writes a queue just declared to disk within ~2 s; a kill before could lose it.
      await sleep(TOPOLOGY_DURABLE_AFTER_MS);
      await broker.kill9();
      const killedAt = Date.now();
      for (let i = 0; i < 30; i++) await transfer(); // nobody waits for the broker
      await sleep(1_500);
      expect(await metric(f, 'ledger_cdc_lag_records')).toBe(30);
      expect(await metric(f, 'ledger_cdc_lag_seconds')).toBeGreaterThan(1);
      expect(await metric(f, 'ledger_cdc_broker_up')).toBe(0);
      expect(await metric(f, 'ledger_cdc_errors_total{reason="connect"}')).toBeGreaterThan(0);
      await broker.start();
      console.log(`cdc: broker down for ${Date.now() - killedAt} ms`);
      await consumer.reopen();
      for (let i = 0; i < 10; i++) await transfer();
      await consumer.waitFor(60, 30_000);
      expectInOrder(consumer.received, main, 60);
      expect((consumer.deduplicated()).map((m) => m.body)).toEqual(await journal(f));
      await sleep(limits.CDC_INTERVAL_MS * 3);
      expect(await metric(f, 'ledger_cdc_lag_records')).toBe(0);
      // Duplicates: pages sent again after the kill, and messages the broker delivered again
      // (the consumer's acks before the kill died with it).
      console.log(`cdc: broker kill: ${consumer.received.length - 60} duplicate(s)`);
    } finally {
      await f.close();
      await consumer.close();
    }
  }, 120_000);

  test('a crash after the broker confirmed a page and before its position was saved sends ' +
    'that page again: duplicates, never a gap', async () => {
    const exchange = unique('cdc');
    const consumer = await consume(broker.url, exchange, unique('q'));
    const f = await fixture(); // no publisher of its own: the followers below are the test's
    const sink = new AmqpSink({ url: broker.url, exchange });
    try {
      await accounts(f);
      for (let i = 0; i < 7; i++) {
        await ok(f, 201, '/transfers', { id: `t-${i}`, from: 'cash', to: 'bob', amount: '1' });
      }
      // The first follower's "process" dies right after the broker confirmed its first page.
      const crashing = new JournalFollower({ ledger: f.ledger, name: CDC_FOLLOWER,
        lockTtlMs: 300, pageSize: 3, sink: { deliver: async (ledger, records: readonly
        Transfer[]) => {
          await sink.deliver(ledger, records);
          throw new Error('crashed before saving the position');
        } } });
      await expect(crashing.runOnce()).rejects.toThrow(/crashed/);
      await consumer.waitFor(3);
      expect(await f.ledger.followPosition(CDC_FOLLOWER)).toBe('0');
      // Its lock is never released (the process died); a successor takes over after the lease.
      const successor = new JournalFollower({ ledger: f.ledger, name: CDC_FOLLOWER,
        lockTtlMs: 300, pageSize: 3, sink });
      expect(await successor.runOnce()).toBe(0); // the lease still runs
      await sleep(400);
      expect(await successor.runOnce()).toBe(7);
      await consumer.waitFor(7);
      expect(consumer.received.map((m) => m.messageId)).toEqual(
        [1, 2, 3, 1, 2, 3, 4, 5, 6, 7].map((s) => `${f.keys.ledger}:${s}`));
      expect(await f.ledger.followPosition(CDC_FOLLOWER)).toBe('7');
      // The crashed holder cannot move the position any more: its lease is gone.
      expect(await f.ledger.saveFollowPosition(crashing.lock, CDC_FOLLOWER, '7')).toBe(false);
    } finally {
      await sink.close();
      await f.close();
      await consumer.close();
    }
  });

  test('two instances: each ledger is published by one at a time, in order', async () => {
    const exchange = unique('cdc');
    const consumer = await consume(broker.url, exchange, unique('q'));
    const a = await fixture({ cdc: { url: broker.url, exchange } });
    const b = await fixture({ ledgerName: a.keys.ledger, cdc: { url: broker.url, exchange } });
    try {
      await accounts(a);
      const sends = [];
      for (let i = 0; i < 200; i++) {
        const f = i % 2 === 0 ? a : b;
        sends.push(ok(f, 201, '/transfers', { id: `t-${i}`, from: 'cash', to: 'alice',
          amount: '1' }));
      }
      await Promise.all(sends);
      await consumer.waitFor(200);
      expectInOrder(consumer.received, a.keys.ledger, 200);
      const duplicates = consumer.received.length - 200;
      console.log(`cdc: two instances: ${duplicates} duplicate(s)`);
      expect(duplicates).toBe(0); // the lock: no failure, so no page sent twice
    } finally {
      await Promise.all([a.close(), b.close()]);
      await consumer.close();
    }
  });
});
