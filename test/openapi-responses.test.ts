/**
 * Real answers against the committed OpenAPI document, as a validating proxy would check them:
 * a walk through every operation and most of its statuses, on a real Redis (and with Redis
 * gone, for the 503s), each answer matched to its documented response by path, method and
 * status, its body validated against the documented schema with nothing undocumented in it,
 * and every header the document says is always sent present.
 */
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AMOUNT_MAX } from '../src/config/limits.js';
import { SECRETS, TEST_KEYS } from './helpers/auth.js';
import { type Fixture, fixture, uniqueLedgerName } from './helpers/ledger.js';
import { loadOpenApi } from './helpers/openapi-arbitraries.js';

type Json = Record<string, unknown>;
interface Media { schema: Json; examples?: Json }
interface Response { content?: Record<string, Media>; headers?: Record<string, Json> }
interface Operation { responses: Record<string, Response> }

const doc = loadOpenApi() as unknown as {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; headers: Record<string, Json> };
};

/** The document with every component closed: a property it does not name is an error. */
function closed(): Json {
  const copy = structuredClone(doc) as unknown as Json & typeof doc;
  for (const schema of Object.values(copy.components.schemas)) {
    if ('properties' in schema) schema.unevaluatedProperties = false;
  }
  return { ...copy, $id: 'openapi.json' };
}
const ajv = new Ajv2020.default({ strict: false, allErrors: true, validateSchema: false });
addFormats.default(ajv);
ajv.addSchema(closed());

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** The documented path (`/accounts/{id}`) that `url` is an instance of. */
function template(url: string): string {
  const path = url.split('?')[0] ?? url;
  const found = Object.keys(doc.paths).find((t) =>
    new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
  if (!found) throw new Error(`no documented path for ${url}`);
  return found;
}

interface Answer { method: string; url: string; status: number;
  headers: Record<string, unknown>; body: string }
const checked = new Map<string, Set<number>>();

function validate(a: Answer): void {
  const path = template(a.url);
  const where = `${a.method} ${a.url} → ${a.status} ${a.body.slice(0, 300)}`;
  const response = doc.paths[path]?.[a.method.toLowerCase()]?.responses[String(a.status)];
  expect(response, `${where}: status not documented`).toBeDefined();
  const type = String(a.headers['content-type'] ?? '').split(';')[0] ?? '';
  const media = response?.content?.[type];
  expect(media, `${where}: ${type} not documented`).toBeDefined();
  const schema = { $ref: `openapi.json#/${pointer('paths', path, a.method.toLowerCase(),
    'responses', String(a.status), 'content', type, 'schema')}`, unevaluatedProperties: false };
  const body: unknown = type.endsWith('json') ? JSON.parse(a.body) : a.body;
  const valid = ajv.validate(typeof body === 'object' ? schema : { $ref: schema.$ref }, body);
  expect(valid, `${where}\n${ajv.errorsText(ajv.errors)}`).toBe(true);
  for (const [name, header] of Object.entries(response?.headers ?? {})) {
    const ref = typeof header.$ref === 'string' ? header.$ref.split('/').pop() : undefined;
    const spec = ref === undefined ? header : doc.components.headers[ref];
    if (spec?.required === true) {
      expect(a.headers[name.toLowerCase()], `${where}: header ${name}`).toBeDefined();
    }
  }
  const key = `${a.method} ${path}`;
  checked.set(key, (checked.get(key) ?? new Set()).add(a.status));
}

let f: Fixture;
let limited: Fixture;
/** The walk's clock runs ahead by this much when a hold must have expired. */
let ahead = 0;
beforeAll(async () => {
  // Its own key prefix: the ledgers it creates are in no other file's index of ledgers, so no
  // other file's sweeper (on another clock) touches their holds.
  f = await fixture({ now: () => Date.now() + ahead, keyPrefix: 'walk' });
  // Far below one request per second, with no burst: every request is over the rate.
  limited = await fixture({ auth: { mode: 'keys', keys: TEST_KEYS, ratePerSecond: 0.01 } });
});
afterAll(async () => {
  await f.close();
  await limited.close();
});

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
async function send(method: 'GET' | 'POST', url: string, body?: unknown,
  headers: Record<string, string> = {}, app: Fixture = f): Promise<Answer> {
  const res = await app.app.inject({ method, url, headers: {
    ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body
      : JSON.stringify(body) }) });
  const answer = { method, url, status: res.statusCode, headers: res.headers, body: res.body };
  validate(answer);
  if (answer.status < 300 && /json/.test(String(res.headers['content-type']))) {
    for (const keys of keyOrders(JSON.parse(res.body))) realKeyOrders.add(keys);
  }
  return answer;
}

/** The field order of every object of real 2xx answers, as `a,b,c`. */
const realKeyOrders = new Set<string>();
/** The field orders of `value`'s objects, nested ones included (not metadata: client data). */
function keyOrders(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keyOrders);
  if (value === null || typeof value !== 'object') return [];
  const entries = Object.entries(value).filter(([k]) => k !== 'metadata');
  return [Object.keys(value).join(), ...entries.flatMap(([, v]) => keyOrders(v))];
}
const expectStatus = async (status: number, p: Promise<Answer>) => {
  const a = await p;
  expect(a.status, `${a.method} ${a.url}: ${a.body}`).toBe(status);
};
/** A problem answer with this code (the document lists the codes of each status). */
const expectCode = async (status: number, code: string, p: Promise<Answer>) => {
  const a = await p;
  expect([a.status, JSON.parse(a.body).code], `${a.method} ${a.url}`).toEqual([status, code]);
};

test('the check refuses what the document does not allow', () => {
  const committed = { id: 'p', from: 'a', to: 'b', amount: '1', status: 'committed',
    metadata: {}, createdAt: '2026-12-06T10:15:30.123Z', kind: 'transfer', currency: 'USD',
    seq: '1', fromBalanceAfter: '-1', toBalanceAfter: '1', createdBy: 'test',
    reversedAmount: '0' };
  const answer = (body: object) => ({ method: 'GET', url: '/transfers/p', status: 200,
    headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) });
  validate(answer(committed));
  const { seq: _, ...withoutSeq } = committed;
  for (const bad of [withoutSeq, { ...committed, extra: 1 }, { ...committed, reason: 'X' },
    { ...committed, amount: '1'.repeat(40) }, { ...committed, kind: 'refund' }]) {
    expect(() => validate(answer(bad)), JSON.stringify(bad)).toThrow();
  }
  expect(() => validate({ ...answer(committed), status: 418 })).toThrow(/not documented/);
  checked.clear();
});

/** A ledger the walk creates and walks through again under `/ledgers/{ledger}`. */
const WALKED = uniqueLedgerName();
const IN_LEDGER = `/ledgers/${WALKED}`;

test('every answer of a walk through the API is what the document says', async () => {
  await expectStatus(200, send('GET', '/healthz'));
  await expectStatus(200, send('GET', '/readyz'));
  await expectStatus(200, send('GET', '/metrics'));
  await expectStatus(401, send('GET', '/metrics', undefined, { authorization: '' }));
  await expectStatus(403, send('GET', '/metrics', undefined, bearer(SECRETS.reader)));
  // The default ledger unprefixed, then a created one with the same ids under its prefix.
  await walkLedger('');
  await walkLedgers();
  await walkLedger(IN_LEDGER);
  await walkMissingLedger();

  const pay = { id: 'pay-1', from: 'alice', to: 'shop', amount: '2500' };
  for (const [method, url, body] of [['GET', '/accounts/alice'], ['GET', '/metrics'],
    ['GET', '/ledgers'], ['GET', IN_LEDGER], ['POST', '/ledgers', { name: WALKED }],
    ...['', IN_LEDGER].flatMap((base) => [['GET', `${base}/accounts/alice`] as const,
      ['POST', `${base}/transfers`, pay] as const,
      ...NEW_WRITES(base).map(([u, b]) => ['POST', u, b] as const)]),
  ] as const) {
    const res = await send(method, url, body, {}, limited);
    expect(res.status).toBe(429);
  }

  // Redis gone: writes and reads answer 503 (retry later), /readyz says it is not ready. A
  // ledger this instance has not met yet is looked up first: that is 503 too.
  f.redis.disconnect();
  for (const base of ['', IN_LEDGER]) {
    await expectStatus(503, send('POST', `${base}/transfers`, { ...pay, id: 'pay-6' }));
    await expectStatus(503, send('POST', `${base}/accounts`, { currency: 'USD' }));
    for (const [url, body] of NEW_WRITES(base)) await expectStatus(503, send('POST', url, body));
    await expectStatus(503, send('GET', `${base}/accounts/alice`));
  }
  await expectStatus(503, send('GET', '/ledgers/never-met/accounts/alice'));
  await expectStatus(503, send('POST', '/ledgers', { name: 'never-met' }));
  await expectStatus(503, send('GET', '/ledgers'));
  await expectStatus(503, send('GET', IN_LEDGER));
  await expectStatus(503, send('GET', '/readyz'));

  // The walk reached every operation of the document.
  const operations = Object.entries(doc.paths)
    .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
  expect([...checked.keys()].sort()).toEqual(operations.sort());
}, 120_000);

/** Accounts, transfers, batches, holds, reversals and closing, in the ledger at `base`. */
async function walkLedger(base: string): Promise<void> {
  for (const a of [{ id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' },
    { id: 'alice', currency: 'USD' }, { id: 'shop', currency: 'USD' }]) {
    await expectStatus(201, send('POST', `${base}/accounts`, a));
  }
  await expectStatus(201, send('POST', `${base}/accounts`, { currency: 'USD' }));
  await expectStatus(200, send('POST', `${base}/accounts`, { id: 'shop', currency: 'USD' }));
  await expectStatus(409, send('POST', `${base}/accounts`, { id: 'shop', currency: 'EUR' }));
  await expectStatus(400, send('POST', `${base}/accounts`, { id: 'x', currency: 'usd' }));
  await walkRefusals(`${base}/accounts`, { currency: 'USD' });
  await walkTransfers(base);
  await walkHolds(base);
  await walkReversals(base);
  await walkClose(base);
  for (const [url, body] of NEW_WRITES(base)) await walkRefusals(url, body);
}

async function walkTransfers(base: string): Promise<void> {
  const pay = { id: 'pay-1', from: 'alice', to: 'shop', amount: '2500' };
  const transfers = `${base}/transfers`;
  await expectStatus(201, send('POST', transfers,
    { id: 'fund-1', from: 'cash', to: 'alice', amount: 10_000 }));
  await expectStatus(201, send('POST', transfers, pay));
  await expectStatus(201, send('POST', transfers, pay));
  await expectStatus(409, send('POST', transfers, { ...pay, amount: '1' }));
  const tooMuch = { id: 'pay-2', from: 'alice', to: 'shop', amount: '90000' };
  await expectStatus(422, send('POST', transfers, tooMuch));
  await expectStatus(422, send('POST', transfers, tooMuch));
  await expectStatus(422, send('POST', transfers,
    { id: 'pay-3', from: 'ghost', to: 'nobody', amount: '1' }));
  await expectStatus(400, send('POST', transfers, { ...pay, id: 'pay-4', to: 'alice' }));
  await expectStatus(400, send('POST', transfers,
    { ...pay, id: 'pay-5', amount: (AMOUNT_MAX + 1n).toString() }));
  await walkRefusals(transfers, { ...pay, id: 'pay-7' });

  for (const url of ['/transfers/pay-1', '/transfers/pay-2', '/transfers/pay-3',
    '/accounts/alice', '/accounts/alice/entries', '/accounts/alice/entries?limit=10',
    '/accounts/alice/entries?limit=1', '/accounts/alice/entries?limit=1000',
    '/accounts/alice/balance', '/accounts/alice/balance?seq=1',
    '/accounts/alice/balance?at=2026-01-01T00:00:00Z']) {
    await expectStatus(200, send('GET', `${base}${url}`));
  }
  for (const url of ['/transfers/ghost', '/accounts/nobody', '/accounts/nobody/entries',
    '/accounts/nobody/balance']) {
    await expectStatus(404, send('GET', `${base}${url}`));
  }
  for (const url of ['/accounts/alice/entries?limit=1001', '/accounts/alice/entries?limit=1e3',
    '/accounts/alice/entries?limit=010', '/accounts/alice/entries?cursor=ZTI6OTk5',
    '/accounts/alice?x=1', '/transfers/a%20b', '/accounts/alice/balance?at=yesterday',
    '/accounts/alice/balance?seq=1&at=2026-01-01T00:00:00Z']) {
    await expectStatus(400, send('GET', `${base}${url}`));
  }

  const batch = `${base}/transfers/batch`;
  await expectStatus(200, send('POST', batch, { atomic: false, transfers: [
    { id: 'b-1', from: 'alice', to: 'shop', amount: '100' }, tooMuch, { ...pay, amount: '7' },
  ] }));
  await expectStatus(422, send('POST', batch, { atomic: true, transfers: [
    { id: 'a-1', from: 'alice', to: 'shop', amount: '100' },
    { id: 'a-2', from: 'alice', to: 'ghost', amount: '100' }] }));
  await expectStatus(409, send('POST', batch, { atomic: true, transfers: [
    { id: 'a-3', from: 'alice', to: 'shop', amount: '100' }, pay] }));
  await expectStatus(400, send('POST', batch, { atomic: false, transfers: [pay, pay] }));
}

/** Creating, reading and listing ledgers: WALKED is created here. */
async function walkLedgers(): Promise<void> {
  const eu = { name: WALKED, metadata: { region: 'eu' } };
  await expectStatus(201, send('POST', '/ledgers', eu));
  await expectStatus(200, send('POST', '/ledgers', eu));
  await expectCode(409, 'LEDGER_EXISTS_WITH_DIFFERENT_FIELDS', send('POST', '/ledgers',
    { ...eu, metadata: { region: 'us' } }));
  for (const name of ['Upper', '', 'l'.repeat(65), 'a.b']) {
    await expectStatus(400, send('POST', '/ledgers', { name }));
  }
  await walkRefusals('/ledgers', { name: `${WALKED}-x` }, SECRETS.writer);
  await expectStatus(200, send('GET', `/ledgers/${WALKED}`));
  await expectCode(404, 'LEDGER_NOT_FOUND', send('GET', '/ledgers/no-such-ledger'));
  await expectStatus(400, send('GET', `/ledgers/${'l'.repeat(129)}`));
  for (const url of ['/ledgers', '/ledgers?limit=1', `/ledgers?after=${WALKED}`,
    '/ledgers?limit=1000']) {
    await expectStatus(200, send('GET', url));
  }
  for (const url of ['/ledgers?limit=0', '/ledgers?limit=1001', '/ledgers?limit=1e3',
    '/ledgers?x=1']) {
    await expectStatus(400, send('GET', url));
  }
  for (const url of ['/ledgers', `/ledgers/${WALKED}`]) {
    await expectStatus(401, send('GET', url, undefined, { authorization: '' }));
    await expectStatus(403, send('GET', url, undefined, bearer(SECRETS.metrics)));
  }
}

/** Every operation of a ledger, under a ledger that does not exist: 404 before anything else. */
async function walkMissingLedger(): Promise<void> {
  const prefixed = Object.entries(doc.paths).filter(([path]) =>
    path.startsWith('/ledgers/{ledger}/'));
  expect(prefixed.length).toBeGreaterThanOrEqual(8);
  for (const [path, item] of prefixed) {
    const url = path.replace('{ledger}', 'no-such-ledger').replace('{id}', 'alice');
    for (const method of Object.keys(item)) {
      await expectCode(404, 'LEDGER_NOT_FOUND', send(method.toUpperCase() as 'GET' | 'POST',
        url, method === 'post' ? {} : undefined));
    }
  }
}

/** The new writes, each with a body that would be accepted, for the refusals every write has. */
const NEW_WRITES = (base: string): Array<readonly [string, object]> => [
  [`${base}/transfers/h-9/post`, { id: 'post-9' }],
  [`${base}/transfers/h-9/void`, { id: 'void-9' }],
  [`${base}/transfers/pay-1/reversals`, { id: 'rev-9', amount: '1' }],
  [`${base}/accounts/alice/close`, {}],
];

/** 400, 401, 403 (`denied`: a key without the scope), 413 and 415: refused before the ledger. */
async function walkRefusals(url: string, body: object, denied: string = SECRETS.reader):
  Promise<void> {
  await expectStatus(400, send('POST', url, { ...body, unknown: 1 }));
  await expectStatus(401, send('POST', url, body, { authorization: '' }));
  await expectStatus(403, send('POST', url, body, bearer(denied)));
  await expectStatus(413, send('POST', url, { ...body, pad: 'x'.repeat(40_000) }));
  await expectStatus(415, send('POST', url, JSON.stringify(body),
    { 'content-type': 'text/plain' }));
}

/** alice holds for the shop; posts and voids, each of their rejections, replays, conflicts. */
async function walkHolds(base: string): Promise<void> {
  const transfers = `${base}/transfers`;
  const hold = (id: string, extra: object = {}) =>
    ({ id, from: 'alice', to: 'shop', amount: '300', pending: true, ...extra });
  await expectStatus(201, send('POST', transfers, hold('h-1', { timeoutSeconds: 600 })));
  await expectStatus(201, send('POST', transfers, hold('h-1', { timeoutSeconds: 600 })));
  await expectStatus(409, send('POST', transfers, hold('h-1')));
  await expectStatus(400, send('POST', transfers, { ...hold('h-0', { timeoutSeconds: 60 }),
    pending: false }));
  await expectStatus(400, send('POST', transfers, hold('h-0', { timeoutSeconds: 0 })));
  for (const id of ['h-2', 'h-9']) await expectStatus(201, send('POST', transfers, hold(id)));
  for (const id of ['h-3', 'h-4']) {
    await expectStatus(201, send('POST', transfers, hold(id, { timeoutSeconds: 1 })));
  }
  const post = { id: 'post-1', amount: '200', metadata: { capture: '1' } };
  await expectStatus(201, send('POST', `${transfers}/h-1/post`, post));
  await expectStatus(201, send('POST', `${transfers}/h-1/post`, post));
  await expectStatus(409, send('POST', `${transfers}/h-1/post`, { ...post, amount: '100' }));
  await expectStatus(409, send('POST', `${transfers}/h-2/post`, post));
  await expectStatus(409, send('POST', `${transfers}/h-1/void`, { id: post.id }));
  await expectStatus(400, send('POST', `${transfers}/h-2/post`, { id: 'post-0', amount: '0' }));
  await expectStatus(201, send('POST', `${transfers}/h-2/void`, { id: 'void-1' }));
  await expectStatus(201, send('POST', `${transfers}/h-2/void`, { id: 'void-1' }));
  await expectStatus(409, send('POST', `${transfers}/h-2/void`,
    { id: 'void-1', metadata: { late: '1' } }));
  // Past the 1-second holds' expiry (each walk's holds open 2 s later on the walk's clock).
  ahead += 2_000;
  for (const verb of ['post', 'void']) {
    for (const [target, code] of [['ghost', 'NOT_FOUND'], ['pay-1', 'NOT_PENDING'],
      ['h-1', 'ALREADY_POSTED'], ['h-2', 'ALREADY_VOIDED'],
      [verb === 'post' ? 'h-3' : 'h-4', 'EXPIRED']] as const) {
      await expectCode(422, `PENDING_TRANSFER_${code}`, send('POST',
        `${transfers}/${target}/${verb}`, { id: `${verb}-on-${target}` }));
    }
  }
  for (let i = 0; i < 2; i++) {
    await expectCode(422, 'EXCEEDS_PENDING_AMOUNT', send('POST', `${transfers}/h-9/post`,
      { id: 'post-2', amount: '301' }));
  }
  for (const id of ['h-1', 'h-2', 'h-3', 'h-4', 'h-9', 'post-1', 'void-1', 'post-on-ghost',
    'void-on-pay-1', 'post-2']) {
    await expectStatus(200, send('GET', `${transfers}/${id}`));
  }
  await expectStatus(200, send('POST', `${transfers}/batch`, { atomic: true, transfers: [
    hold('bh-1', { timeoutSeconds: 600 }), { id: 'bt-1', from: 'cash', to: 'alice',
      amount: '1' }] }));
}

/** Reversals of a transfer and a post, and each of their rejections. */
async function walkReversals(base: string): Promise<void> {
  const transfers = `${base}/transfers`;
  const rev = { id: 'rev-1', amount: '1000', metadata: { reason: 'returned' } };
  await expectStatus(201, send('POST', `${transfers}/pay-1/reversals`, rev));
  await expectStatus(201, send('POST', `${transfers}/pay-1/reversals`, rev));
  await expectStatus(409, send('POST', `${transfers}/pay-1/reversals`, { ...rev, amount: '5' }));
  await expectStatus(201, send('POST', `${transfers}/post-1/reversals`, { id: 'rev-2' }));
  await expectStatus(400, send('POST', `${transfers}/pay-1/reversals`, { id: 'rev-0', amount: 0 }));
  // INSUFFICIENT_FUNDS: alice spent what cash gave her.
  for (const [target, code] of [['ghost', 'TRANSFER_NOT_FOUND'], ['h-1', 'NOT_REVERSIBLE'],
    ['post-1', 'EXCEEDS_REVERSIBLE_AMOUNT'], ['fund-1', 'INSUFFICIENT_FUNDS']] as const) {
    await expectCode(422, code, send('POST', `${transfers}/${target}/reversals`,
      { id: `rev-of-${target}` }));
  }
  // BALANCE_OVERFLOW: moving 1 back would take big-a's credits past 2^128-1.
  for (const id of ['big-a', 'big-b', 'big-c']) {
    await expectStatus(201, send('POST', `${base}/accounts`,
      { id, currency: 'USD', overdraftLimit: 'unlimited' }));
  }
  await expectStatus(201, send('POST', transfers,
    { id: 'big-1', from: 'big-c', to: 'big-a', amount: AMOUNT_MAX.toString() }));
  await expectStatus(201, send('POST', transfers,
    { id: 'big-2', from: 'big-a', to: 'big-b', amount: '1' }));
  await expectCode(422, 'BALANCE_OVERFLOW',
    send('POST', `${transfers}/big-2/reversals`, { id: 'rev-big' }));
  for (const id of ['pay-1', 'post-1', 'rev-1', 'rev-of-ghost', 'rev-big']) {
    await expectStatus(200, send('GET', `${transfers}/${id}`));
  }
  await expectStatus(200, send('GET', `${base}/accounts/alice/entries`));
  // The journal: every kind of record walked above, an empty page after the head, a 400.
  await expectStatus(200, send('GET', `${base}/journal?limit=1000`));
  await expectStatus(200, send('GET', `${base}/journal?after=999999&wait=1`));
  await expectStatus(400, send('GET', `${base}/journal?limit=0`));
}

/** A closed account: 200 twice, 404, and ACCOUNT_CLOSED for what names it. */
async function walkClose(base: string): Promise<void> {
  const transfers = `${base}/transfers`;
  await expectStatus(201, send('POST', `${base}/accounts`, { id: 'kiosk', currency: 'USD' }));
  await expectStatus(201, send('POST', transfers,
    { id: 'k-1', from: 'alice', to: 'kiosk', amount: '50' }));
  await expectStatus(201, send('POST', transfers,
    { id: 'k-hold', from: 'alice', to: 'kiosk', amount: '5', pending: true }));
  await expectStatus(200, send('POST', `${base}/accounts/kiosk/close`, {}));
  await expectStatus(200, send('POST', `${base}/accounts/kiosk/close`, {}));
  await expectCode(404, 'ACCOUNT_NOT_FOUND', send('POST', `${base}/accounts/nobody/close`, {}));
  const closed = (p: Promise<Answer>) => expectCode(422, 'ACCOUNT_CLOSED', p);
  await closed(send('POST', `${transfers}/k-1/reversals`, { id: 'k-rev' }));
  await closed(send('POST', transfers, { id: 'k-2', from: 'alice', to: 'kiosk', amount: 1 }));
  await closed(send('POST', transfers,
    { id: 'k-3', from: 'kiosk', to: 'alice', amount: '1', pending: true }));
  await closed(send('POST', `${transfers}/batch`, { atomic: true, transfers: [
    { id: 'k-4', from: 'alice', to: 'kiosk', amount: '1', pending: true }] }));
  await expectStatus(201, send('POST', `${transfers}/k-hold/post`, { id: 'k-post' }));
  await expectStatus(200, send('GET', `${base}/accounts/kiosk`));
}

test('every example of a 2xx answer has its fields in the order of a real answer', () => {
  expect(realKeyOrders.size, 'the walk ran first').toBeGreaterThan(10);
  const examples = Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).flatMap(([method, op]) => Object.entries(op.responses)
      .filter(([status]) => status.startsWith('2'))
      .flatMap(([status, r]) => Object.entries(r.content?.['application/json']?.examples ?? {})
        .map(([name, e]) => [`${method} ${path} ${status} ${name}`,
          (e as { value: unknown }).value] as const))));
  expect(examples.length).toBeGreaterThan(10);
  const unlike = examples.flatMap(([where, value]) => keyOrders(value)
    .filter((keys) => !realKeyOrders.has(keys)).map((keys) => `${where}: ${keys}`));
  expect(unlike).toEqual([]);
});
