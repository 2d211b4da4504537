/**
 * The real-RabbitMQ harness the change-data-capture tests stand on: persistent messages in a
 * durable queue survive kill9() and start() (same node, same mnesia), the broker is gone
 * between the two, stop() leaves nothing behind, and the machine's own RabbitMQ (5672, epmd on
 * 4369) is never touched: never connected to, never signalled.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ConsumeMessage } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { listening, startBroker, TOPOLOGY_DURABLE_AFTER_MS, type TestBroker } from './rabbitmq.js';

const MACHINE_PORTS = [5672, 25672, 4369];
const EXCHANGE = 'ledger.changes.test';
const QUEUE = 'ledger.changes.test.all';

function environ(pid: number): Map<string, string> {
  const entries = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    .filter((e) => e.includes('='))
    .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as const);
  return new Map(entries);
}

/** Running (not a zombie): what a pid that kill -9 reached must no longer be. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.charAt(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Running processes with this environment variable, or any test broker's when value is absent. */
function carrying(name: string, value?: string): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try {
      const v = environ(pid).get(name);
      return running(pid) && v !== undefined && (value === undefined || v === value);
    } catch {
      return false; // gone, or not ours to read
    }
  });
}

/** The local addresses of the listening TCP sockets on a port (hex, as /proc/net/tcp* shows). */
function listenAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) =>
    readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/))
      .filter((f) => f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`))
      .map((f) => f[1]!.slice(0, f[1]!.indexOf(':'))));
}

const LOOPBACK = ['0100007F', '00000000000000000000000001000000'];

describe('test RabbitMQ broker (test/helpers/rabbitmq.ts)', () => {
  let broker: TestBroker | undefined;
  // The machine's own Erlang processes (its broker and epmd, if any), found, never connected to.
  const machine = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number)
    .filter((pid) => ['beam.smp', 'epmd'].includes(comm(pid) ?? '') && running(pid))
    .filter((pid) => {
      try {
        return !environ(pid).has('LEDGER_TEST_RABBITMQ');
      } catch {
        return true; // another user's: certainly not a test broker
      }
    });

  afterAll(async () => {
    await broker?.stop();
  });

  it('keeps confirmed persistent messages in a durable queue over kill -9 and start', async () => {
    broker = await startBroker();
    const b = broker;
    expect(b.url).toBe(`amqp://guest:guest@127.0.0.1:${b.port}`);
    const beam = b.pid();
    expect(beam).toBeDefined();
    expect(comm(beam!)).toBe('beam.smp');
    const env = environ(beam!);
    const epmdPort = Number(env.get('ERL_EPMD_PORT'));
    const distPort = Number(env.get('RABBITMQ_DIST_PORT'));
    expect(env.get('RABBITMQ_NODENAME')).toMatch(/^ledger-test-[0-9a-f]+@localhost$/);
    expect(env.get('HOME')?.startsWith(b.dir)).toBe(true);
    for (const port of [b.port, epmdPort, distPort]) {
      expect(MACHINE_PORTS).not.toContain(port);
      expect(listenAddresses(port).length).toBeGreaterThan(0);
      for (const address of listenAddresses(port)) expect(LOOPBACK).toContain(address);
    }

    const publisher = await connect(b.url);
    publisher.on('error', () => {});
    const channel = await publisher.createConfirmChannel();
    await channel.assertExchange(EXCHANGE, 'topic', { durable: true });
    await channel.assertQueue(QUEUE, { durable: true });
    await channel.bindQueue(QUEUE, EXCHANGE, '#');
    // Mnesia writes the topology's commit out within 2 s (see TOPOLOGY_DURABLE_AFTER_MS); the
    // messages below are on disk when confirmed.
    await sleep(TOPOLOGY_DURABLE_AFTER_MS);
    const bodies = ['change-1', 'change-2', 'change-3'];
    await Promise.all(bodies.map((body, i) => new Promise<void>((ok, fail) => {
      channel.publish(EXCHANGE, `ledger.l1.transfer.${i}`, Buffer.from(body),
        { persistent: true, mandatory: true }, (err) => (err ? fail(err) : ok()));
    })));
    await channel.waitForConfirms();
    await publisher.close();

    await b.kill9();
    expect(running(beam!)).toBe(false);
    expect(b.pid()).toBeUndefined();
    expect(await listening(b.port)).toBe(false);

    await b.start();
    const restarted = b.pid();
    expect(restarted).toBeDefined();
    expect(restarted).not.toBe(beam);
    expect(comm(restarted!)).toBe('beam.smp');

    const consumer = await connect(b.url);
    consumer.on('error', () => {});
    const reader = await consumer.createChannel();
    const got: ConsumeMessage[] = [];
    await new Promise<void>((ok) => {
      void reader.consume(QUEUE, (message) => {
        if (!message) return;
        got.push(message);
        reader.ack(message);
        if (got.length === bodies.length) ok();
      });
    });
    expect(got.map((m) => m.content.toString())).toEqual(bodies);
    expect(got.map((m) => m.properties.deliveryMode)).toEqual([2, 2, 2]);
    // The binding came back too: a new change is routed, not returned.
    const confirmed = await consumer.createConfirmChannel();
    let returned = false;
    confirmed.on('return', () => {
      returned = true;
    });
    confirmed.publish(EXCHANGE, 'ledger.l1.transfer.3', Buffer.from('change-4'),
      { persistent: true, mandatory: true });
    await confirmed.waitForConfirms();
    await expect.poll(() => got.length).toBe(4);
    expect(returned).toBe(false);
    await consumer.close();
  });

  it('stop() leaves no broker, epmd or dir; the machine\'s RabbitMQ is untouched', async () => {
    const b = broker;
    if (!b) throw new Error('the first test did not start the broker');
    const beam = b.pid()!;
    const env = environ(beam);
    const epmdPort = Number(env.get('ERL_EPMD_PORT'));
    const distPort = Number(env.get('RABBITMQ_DIST_PORT'));
    const epmd = carrying('LEDGER_TEST_RABBITMQ', b.dir).filter((pid) => comm(pid) === 'epmd');
    expect(epmd).toHaveLength(1);
    expect(await listening(epmdPort)).toBe(true);

    await b.stop();
    expect(carrying('LEDGER_TEST_RABBITMQ', b.dir)).toEqual([]);
    expect(running(beam)).toBe(false);
    expect(running(epmd[0]!)).toBe(false);
    for (const port of [b.port, distPort, epmdPort]) expect(await listening(port)).toBe(false);
    expect(existsSync(b.dir)).toBe(false);
    await b.stop(); // idempotent

    for (const pid of machine) expect(running(pid)).toBe(true);
  });
});
