/**
 * The consumer of docs/change-data.md, run as its reader would run it: the page's TypeScript,
 * as a process of its own, against a real broker (test/helpers/rabbitmq.ts) and the service
 * publishing ledger `main`. With a duplicate of a message thrown in, it handles each record
 * once. The README's consumer is that code's core: each of its lines is one of the page's.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect } from 'amqplib';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Fixture, fixture, uniqueLedgerName } from '../helpers/ledger.js';
import { startBroker, type TestBroker } from '../helpers/rabbitmq.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The first ```ts block after `heading` in a markdown file. */
function tsBlock(file: string, heading: string): string {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const from = text.indexOf(heading);
  expect(from, `${file}: ${heading}`).toBeGreaterThanOrEqual(0);
  const match = /```ts\n([\s\S]*?)```/.exec(text.slice(from));
  expect(match, `${file}: a ts block after ${heading}`).not.toBeNull();
  return (match as RegExpExecArray)[1] as string;
}

const lines = (code: string) => code.split('\n').map((l) => l.trim()).filter((l) => l !== '');

let broker: TestBroker;
let f: Fixture | undefined;
let consumer: ChildProcess | undefined;
let dir: string | undefined;
beforeAll(async () => { broker = await startBroker(); }, 120_000);
afterAll(async () => {
  consumer?.kill('SIGKILL');
  await f?.close();
  await broker?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test("the README's consumer is the core of the documented one", () => {
  const documented = new Set(lines(tsBlock('docs/change-data.md', '### Consuming')));
  const readme = lines(tsBlock('README.md', '## Change data out'));
  expect(readme.length).toBeGreaterThan(8);
  expect(readme.filter((l) => !documented.has(l))).toEqual([]);
});

test('the documented consumer handles every record once, a duplicate message included',
  async () => {
    // The service declares the exchange; the example binds to it, so the service starts first.
    f = await fixture({ keyPrefix: uniqueLedgerName(), ledgerName: 'main',
      cdc: { url: broker.url, exchange: 'ledger.cdc' } });
    const amqp = await connect(broker.url);
    amqp.on('error', () => {});
    // A failed check closes its channel (AMQP): a channel per attempt.
    const check = async (what: (c: Awaited<ReturnType<typeof amqp.createChannel>>) =>
      Promise<unknown>) => {
      const c = await amqp.createChannel();
      c.on('error', () => {});
      const result = await what(c).catch(() => undefined);
      await c.close().catch(() => {});
      return result;
    };
    for (;;) {
      const probe = await amqp.createChannel();
      probe.on('error', () => {});
      const exists = await probe.checkExchange('ledger.cdc').then(() => true, () => false);
      if (exists) {
        await probe.close();
        break;
      }
      await sleep(50);
    }
    dir = mkdtempSync(join(tmpdir(), 'ledger-consumer-'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const code = tsBlock('docs/change-data.md', '### Consuming')
      .replace("'amqp://localhost'", JSON.stringify(broker.url));
    writeFileSync(join(dir, 'consumer.mts'), code);
    let output = '';
    consumer = spawn(process.execPath, ['--import', 'tsx', 'consumer.mts'],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    consumer.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    consumer.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    // Its queue exists once it consumes: wait for that before anything is published.
    for (let i = 0; ; i++) {
      const queue = await check((c) => c.checkQueue('payments')) as
        { consumerCount: number } | undefined;
      if (queue !== undefined && queue.consumerCount > 0) break;
      expect(i, `the consumer did not start: ${output}`).toBeLessThan(600);
      await sleep(50);
    }
    const post = async (url: string, payload: object) => {
      const res = await (f as Fixture).app.inject({ method: 'POST', url, payload,
        headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as Record<string, unknown>;
    };
    await post('/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
    await post('/accounts', { id: 'alice', currency: 'USD' });
    const fund = await post('/transfers', { id: 'fund', from: 'cash', to: 'alice',
      amount: '100' });
    // The same message again, as the broker or the publisher may send it after a failure.
    const channel = await amqp.createChannel();
    channel.publish('ledger.cdc', 'main.transfer', Buffer.from(JSON.stringify(fund)),
      { messageId: 'main:1', persistent: true });
    await post('/transfers', { id: 'h', from: 'alice', to: 'cash', amount: '10',
      pending: true });
    await post('/transfers/h/post', { id: 'h-post', amount: '4' });
    const expected = ['transfer fund 100', 'hold h 10', 'post h-post 4'];
    for (let i = 0; output.trim().split('\n').length < expected.length; i++) {
      expect(i, output).toBeLessThan(400);
      await sleep(50);
    }
    await sleep(500); // room for a second line of the duplicate, were it handled twice
    expect(output.trim().split('\n')).toEqual(expected);
    await amqp.close();
  }, 60_000);
