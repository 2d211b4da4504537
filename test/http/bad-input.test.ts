/**
 * Every malformed request of the contract gets a 4xx problem+json with a stable code, never a 5xx,
 * and writes nothing (a full dump of the ledger's keys is equal before and after).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { dumpLedger, type Fixture, fixture, json } from '../helpers/ledger.js';

let f: Fixture;
let before: string;

const good = { id: 't', from: 'cash', to: 'alice', amount: '1' };
const meta = (n: number) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

type Case = [string, string, string, unknown, number, string, Record<string, string>?];
const cases: Case[] = [
  ['unknown field', 'POST', '/transfers', { ...good, extra: 1 }, 400, 'VALIDATION_ERROR'],
  ['__proto__ field', 'POST', '/transfers',
    '{"id":"t","from":"cash","to":"alice","amount":"1","__proto__":{"x":1}}',
    400, 'VALIDATION_ERROR'],
  ['constructor.prototype', 'POST', '/transfers',
    '{"id":"t","from":"cash","to":"alice","amount":"1","constructor":{"prototype":{"x":1}}}',
    400, 'VALIDATION_ERROR'],
  ['__proto__ metadata key', 'POST', '/transfers',
    '{"id":"t","from":"cash","to":"alice","amount":"1","metadata":{"__proto__":"x"}}',
    400, 'VALIDATION_ERROR'],
  ['constructor metadata key', 'POST', '/accounts',
    { currency: 'USD', metadata: { constructor: 'x' } }, 400, 'VALIDATION_ERROR'],
  ['missing id', 'POST', '/transfers',
    { from: 'cash', to: 'alice', amount: '1' }, 400, 'VALIDATION_ERROR'],
  ['missing amount', 'POST', '/transfers',
    { id: 't', from: 'cash', to: 'alice' }, 400, 'VALIDATION_ERROR'],
  ['amount 0', 'POST', '/transfers', { ...good, amount: '0' }, 400, 'VALIDATION_ERROR'],
  ['amount leading zero', 'POST', '/transfers', { ...good, amount: '01' }, 400, 'VALIDATION_ERROR'],
  ['amount sign', 'POST', '/transfers', { ...good, amount: '+1' }, 400, 'VALIDATION_ERROR'],
  ['amount negative', 'POST', '/transfers', { ...good, amount: '-1' }, 400, 'VALIDATION_ERROR'],
  ['amount exponent', 'POST', '/transfers', { ...good, amount: '1e3' }, 400, 'VALIDATION_ERROR'],
  ['amount decimal', 'POST', '/transfers', { ...good, amount: '1.0' }, 400, 'VALIDATION_ERROR'],
  ['amount whitespace', 'POST', '/transfers', { ...good, amount: ' 1' }, 400, 'VALIDATION_ERROR'],
  ['amount boolean', 'POST', '/transfers', { ...good, amount: true }, 400, 'VALIDATION_ERROR'],
  ['amount null', 'POST', '/transfers', { ...good, amount: null }, 400, 'VALIDATION_ERROR'],
  ['id too long', 'POST', '/transfers',
    { ...good, id: 'x'.repeat(limits.ID_LENGTH_MAX + 1) }, 400, 'VALIDATION_ERROR'],
  ['id empty', 'POST', '/transfers', { ...good, id: '' }, 400, 'VALIDATION_ERROR'],
  ['id bad character', 'POST', '/transfers', { ...good, id: 'a/b' }, 400, 'VALIDATION_ERROR'],
  ['id number', 'POST', '/transfers', { ...good, id: 5 }, 400, 'VALIDATION_ERROR'],
  ['currency lower case', 'POST', '/transfers',
    { ...good, currency: 'usd' }, 400, 'VALIDATION_ERROR'],
  ['currency too long', 'POST', '/accounts',
    { currency: 'C'.repeat(limits.CURRENCY_LENGTH_MAX + 1) }, 400, 'VALIDATION_ERROR'],
  ['metadata nested', 'POST', '/transfers',
    { ...good, metadata: { a: { b: 'c' } } }, 400, 'VALIDATION_ERROR'],
  ['metadata number value', 'POST', '/transfers',
    { ...good, metadata: { a: 1 } }, 400, 'VALIDATION_ERROR'],
  ['metadata too many keys', 'POST', '/transfers',
    { ...good, metadata: meta(limits.METADATA_KEYS_MAX + 1) }, 400, 'VALIDATION_ERROR'],
  ['metadata value too long', 'POST', '/transfers',
    { ...good, metadata: { a: 'x'.repeat(limits.METADATA_VALUE_LENGTH_MAX + 1) } },
    400, 'VALIDATION_ERROR'],
  ['metadata JSON too large', 'POST', '/transfers', {
    ...good,
    metadata: Object.fromEntries(Array.from({ length: 16 },
      (_, i) => [`k${i}`, '\u0001'.repeat(limits.METADATA_VALUE_LENGTH_MAX)])),
  }, 400, 'VALIDATION_ERROR'],
  ['metadata array', 'POST', '/accounts',
    { currency: 'USD', metadata: ['a'] }, 400, 'VALIDATION_ERROR'],
  ['overdraft negative', 'POST', '/accounts',
    { currency: 'USD', overdraftLimit: '-1' }, 400, 'VALIDATION_ERROR'],
  ['overdraft word', 'POST', '/accounts',
    { currency: 'USD', overdraftLimit: 'infinite' }, 400, 'VALIDATION_ERROR'],
  ['overdraft above 2^128-1', 'POST', '/accounts',
    { currency: 'USD', overdraftLimit: '9'.repeat(39) }, 400, 'VALIDATION_ERROR'],
  ['body an array', 'POST', '/transfers', [good], 400, 'VALIDATION_ERROR'],
  ['body a string', 'POST', '/transfers', '"x"', 400, 'VALIDATION_ERROR'],
  ['malformed JSON', 'POST', '/transfers', '{"id":', 400, 'VALIDATION_ERROR'],
  ['empty JSON body', 'POST', '/transfers', '', 400, 'VALIDATION_ERROR'],
  ['same account', 'POST', '/transfers', { ...good, to: 'cash' }, 400, 'SAME_ACCOUNT'],
  ['no content type', 'POST', '/transfers',
    JSON.stringify(good), 415, 'UNSUPPORTED_MEDIA_TYPE', { 'content-type': '' }],
  ['xml', 'POST', '/accounts',
    '<a/>', 415, 'UNSUPPORTED_MEDIA_TYPE', { 'content-type': 'application/xml' }],
  ['too large', 'POST', '/accounts',
    `{"currency":"USD","x":"${'x'.repeat(limits.BODY_BYTES_MAX)}"}`, 413, 'PAYLOAD_TOO_LARGE'],
  ['bad account id in path', 'GET', '/accounts/a%20b', undefined, 400, 'VALIDATION_ERROR'],
  ['limit=0', 'GET', '/accounts/cash/entries?limit=0', undefined, 400, 'VALIDATION_ERROR'],
  ['limit too big', 'GET', `/accounts/cash/entries?limit=${limits.ENTRIES_PAGE_LIMIT_MAX + 1}`,
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit=100000', 'GET', '/accounts/cash/entries?limit=100000',
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit not a number', 'GET', '/accounts/cash/entries?limit=ten',
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit fraction', 'GET', '/accounts/cash/entries?limit=1.5', undefined, 400, 'VALIDATION_ERROR'],
  ['malformed cursor', 'GET', '/accounts/cash/entries?cursor=zzz',
    undefined, 400, 'VALIDATION_ERROR'],
  ['cursor bad charset', 'GET', '/accounts/cash/entries?cursor=a%2Fb',
    undefined, 400, 'VALIDATION_ERROR'],
  ['unknown query parameter', 'GET', '/accounts/cash/entries?offset=5',
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit with an exponent', 'GET', '/accounts/cash/entries?limit=1e3',
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit in hex', 'GET', '/accounts/cash/entries?limit=0x10',
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit with a space', 'GET', '/accounts/cash/entries?limit=%201',
    undefined, 400, 'VALIDATION_ERROR'],
  ['limit empty', 'GET', '/accounts/cash/entries?limit=', undefined, 400, 'VALIDATION_ERROR'],
  ['unknown query on an account', 'GET', '/accounts/cash?foo=1',
    undefined, 400, 'VALIDATION_ERROR'],
  ['unknown query on a transfer', 'GET', '/transfers/seed?x=1', undefined, 400, 'VALIDATION_ERROR'],
  ['id "." (unaddressable in a path)', 'POST', '/accounts',
    { id: '.', currency: 'USD' }, 400, 'VALIDATION_ERROR'],
  ['id ".."', 'POST', '/transfers', { ...good, id: '..' }, 400, 'VALIDATION_ERROR'],
  ['bad transfer id in path', 'GET', `/transfers/${'x'.repeat(129)}`,
    undefined, 400, 'VALIDATION_ERROR'],
];

beforeAll(async () => {
  f = await fixture();
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0']]) {
    await f.app.inject({
      method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: od },
    });
  }
  await f.app.inject({
    method: 'POST', url: '/transfers', headers: json,
    payload: { id: 'seed', from: 'cash', to: 'alice', amount: '5' },
  });
  before = await dumpLedger(f.redis, f.keys);
});
afterAll(async () => { await f.close(); });

test.each(cases)('%s → %s %s %i %s', async (_name, method, url, payload, status, code, headers) => {
  const res = await f.app.inject({
    method: method as 'GET' | 'POST', url,
    headers: headers ?? (method === 'POST' ? json : {}),
    ...(payload === undefined
      ? {}
      : { payload: typeof payload === 'string' ? payload : JSON.stringify(payload) }),
  });
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({
    status, code, type: expect.any(String), title: expect.any(String),
  });
  expect(res.body).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
});

test('none of them wrote anything', async () => {
  expect(await dumpLedger(f.redis, f.keys)).toBe(before);
});

test('ids of exactly the maximum length work in paths and bodies', async () => {
  const id = 'i'.repeat(limits.ID_LENGTH_MAX);
  const created = await f.app.inject({
    method: 'POST', url: '/accounts', headers: json, payload: { id, currency: 'USD' },
  });
  expect(created.statusCode).toBe(201);
  expect((await f.app.inject({ method: 'GET', url: `/accounts/${id}` })).statusCode).toBe(200);
  expect((await f.app.inject({ method: 'GET', url: `/accounts/${id}/entries` })).statusCode)
    .toBe(200);
  expect((await f.app.inject({ method: 'GET', url: `/transfers/${id}` })).statusCode).toBe(404);
});
