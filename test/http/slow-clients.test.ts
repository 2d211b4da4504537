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
      limits.HTTP_HEADERS_TIMEOUT_MS + 5000).unref();
  });
}

test('headers that never finish are cut off after the headers timeout', async () => {
  const { reply, closedAfterMs } = await hang('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1');
  expect(closedAfterMs).toBeGreaterThanOrEqual(limits.HTTP_HEADERS_TIMEOUT_MS - 100);
  expect(closedAfterMs).toBeLessThan(limits.HTTP_HEADERS_TIMEOUT_MS + 2500);
  expect(reply).toMatch(/^HTTP\/1\.1 408/);
});

test('a header block above the limit is refused with 431', async () => {
  const big = `X-Big: ${'a'.repeat(limits.HTTP_HEADER_BYTES_MAX)}\r\n`;
  const { reply } = await hang(`GET /healthz HTTP/1.1\r\nHost: x\r\n${big}\r\n`);
  expect(reply).toMatch(/^HTTP\/1\.1 431/);
});
