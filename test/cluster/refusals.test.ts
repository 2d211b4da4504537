/**
 * Which Redis Cluster replies the service retries itself (src/redis/cluster.ts `refusal`: they
 * prove the script did not run) and how each is answered once the retry budget is spent
 * (src/redis/errors.ts: 503, an unknown outcome, never 500). No Redis needed: the replies are
 * Redis's own wording, as ioredis surfaces them.
 */
import { ReplyError } from 'ioredis';
import { expect, test } from 'vitest';
import { refusal } from '../../src/redis/cluster.js';
import { isUnavailableError } from '../../src/redis/errors.js';

const reply = (message: string) => new ReplyError(message);

test.each([
  ['MOVED 3999 127.0.0.1:7002', { reason: 'moved', target: '127.0.0.1:7002' }],
  ['ASK 3999 127.0.0.1:7003', { reason: 'ask', target: '127.0.0.1:7003' }],
  ['TRYAGAIN Multiple keys request during rehashing of slot', { reason: 'tryagain' }],
  ['CLUSTERDOWN The cluster is down', { reason: 'clusterdown' }],
  ['CLUSTERDOWN Hash slot not served', { reason: 'clusterdown' }],
])('%s: retried (nothing ran), and 503 past the budget', (message, expected) => {
  expect(refusal(reply(message))).toEqual(expected);
  expect(isUnavailableError(reply(message))).toBe(true);
});

test.each([
  'Too many Cluster redirections. Last error: TRYAGAIN Multiple keys request',
  "Cluster isn't ready and enableOfflineQueue options is false",
])('ioredis refusing to route: %s', (message) => {
  expect(refusal(new Error(message))).toEqual({ reason: 'unrouted' });
  expect(isUnavailableError(new Error(message))).toBe(true);
});

test.each([
  // May have run: an unknown outcome for the client (503), but never sent again here.
  ['Command timed out', true],
  ['Connection is closed.', true],
  // A script's own failure, or a bug: neither retried nor 503.
  ['ERR Error running script (call to f_1234): @user_script:1: oops', false],
  ['NOPERM this user has no permissions to access one of the keys', false],
  ['WRONGTYPE Operation against a key holding the wrong kind of value', false],
])('%s: not retried by the cluster layer', (message, unavailable) => {
  const error = message.startsWith('Co') ? new Error(message) : reply(message);
  expect(refusal(error)).toBeUndefined();
  expect(isUnavailableError(error)).toBe(unavailable);
});
