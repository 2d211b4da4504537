/**
 * Slow and bloated clients over real sockets: headers trickled slowly are cut off after
 * HTTP_HEADERS_TIMEOUT_MS (slow-loris), and a header block above HTTP_HEADER_BYTES_MAX is 431.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { type Fixture, fixture, listen } from '../helpers/ledger.js';

let f: Fixture;
let port: number;
beforeAll(async () => {
  f = await fixture();
  port = Number(new URL(await listen(f)).port);
});
afterAll(async () => { await f.close(); });

/**
 * Node checks the headers timeout once a second (app.ts sets connectionsCheckingInterval), so
 * the socket closes within about a second of it. Ten times that is a liveness bound: it fails
 * only if the server never closes the socket, however slow the machine.
 */
const CLOSE_LIVENESS_MS = limits.HTTP_HEADERS_TIMEOUT_MS + 10 * 1000;

/** Sends `text`, then nothing more; resolves with what came back and when the socket closed. */
function hang(text: string): Promise<{ reply: string; closedAfterMs: number }> {
  return new Promise((ok, fail) => {
    const started = Date.now();
    let reply = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    socket.on('data', (d) => { reply += d; });
    socket.on('error', fail);
    socket.on('close', () => ok({ reply, closedAfterMs: Date.now() - started }));
    setTimeout(() => { socket.destroy(); fail(new Error('the server never closed the socket')); },
      CLOSE_LIVENESS_MS).unref();
  });
}

test('headers that never finish are cut off after the headers timeout', async () => {
  const { reply, closedAfterMs } = await hang('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1');
  // Cut by the headers timeout (408), not by anything else, and not before it: a lower bound,
  // which a slow machine cannot break (it only makes the wait longer).
  expect(reply).toMatch(/^HTTP\/1\.1 408/);
  expect(closedAfterMs).toBeGreaterThanOrEqual(limits.HTTP_HEADERS_TIMEOUT_MS - 100);
});

test('a header block above the limit is refused with 431', async () => {
  const big = `X-Big: ${'a'.repeat(limits.HTTP_HEADER_BYTES_MAX)}\r\n`;
  const { reply } = await hang(`GET /healthz HTTP/1.1\r\nHost: x\r\n${big}\r\n`);
  expect(reply).toMatch(/^HTTP\/1\.1 431/);
});
