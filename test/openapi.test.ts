/**
 * The committed OpenAPI document is the one the code serves: a route or schema change without
 * `npm run openapi` fails here. Also: the document covers every route of the contract, and /docs
 * serves the interactive docs.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { limits } from '../src/config/limits.js';
import { formatOpenApi, OPENAPI_FILE, openApiDocument } from '../src/openapi.js';
import { type Fixture, fixture } from './helpers/ledger.js';

const committedText =
  readFileSync(fileURLToPath(new URL(`../${OPENAPI_FILE}`, import.meta.url)), 'utf8');
type Json = Record<string, unknown>;
interface Media { schema: Json; examples?: Record<string, { value: unknown }> }
interface Response { description: string; content?: Record<string, Media>;
  headers?: Record<string, Json> }
interface Operation { operationId?: string; summary?: string; description?: string;
  tags?: string[]; security?: unknown[]; parameters?: Array<{ name: string; in: string;
    schema: Json }>; requestBody?: { content: Record<string, Media> };
  responses: Record<string, Response> }
const committed = JSON.parse(committedText) as {
  openapi: string;
  servers?: Array<{ url: string }>;
  tags?: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
};
const STALE = `${OPENAPI_FILE} is out of date with the routes: ` +
  'run `npm run openapi` and commit it';

/** the contract's routes, in OpenAPI path form. */
const API_ROUTES = [
  ['post', '/accounts'],
  ['get', '/accounts/{id}'],
  ['get', '/accounts/{id}/entries'],
  ['post', '/transfers'],
  ['get', '/transfers/{id}'],
  ['get', '/healthz'],
  ['get', '/readyz'],
] as const;

let f: Fixture;
beforeAll(async () => { f = await fixture(); });
afterAll(async () => { await f.close(); });

describe('openapi', () => {
  test('GET /openapi.json serves the committed document', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json(), STALE).toEqual(committed);
  });

  test('the committed file is exactly what `npm run openapi` writes ' +
    '(no Redis needed)', async () => {
    expect(committedText, STALE).toBe(formatOpenApi(await openApiDocument()));
  });

  test('is OpenAPI 3.1.0 and has every route of the contract', () => {
    expect(committed.openapi).toBe('3.1.0');
    for (const [method, path] of API_ROUTES) {
      expect(committed.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
  });

  test('paths use OpenAPI templates ({id}), not Fastify params (:id)', () => {
    const paths = Object.keys(committed.paths);
    expect(paths.filter((p) => p.includes(':'))).toEqual([]);
  });

  test('GET /docs answers HTML', async () => {
    let res = await f.app.inject({ method: 'GET', url: '/docs' });
    for (let hops = 0; res.statusCode >= 300 && res.statusCode < 400 && hops < 3; hops++) {
      const location = String(res.headers.location);
      res = await f.app.inject({ method: 'GET', url: new URL(location, 'http://x/docs').pathname });
    }
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/<html/i);
  });
});

/** Every operation of the document, with where it is. */
const operations = Object.entries(committed.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`,
    method, path, op })));

const ajv = new Ajv2020.default({ strict: false, validateSchema: false });
addFormats.default(ajv);
ajv.addSchema({ ...committed, $id: 'openapi.json' });
const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** Every media object of the document (request and responses), with where it is. */
const medias = operations.flatMap(({ where, method, path, op }) => [
  ...Object.entries(op.requestBody?.content ?? {}).map(([type, media]) => ({
    where: `${where} request ${type}`, media, status: undefined,
    at: pointer('paths', path, method, 'requestBody', 'content', type, 'schema') })),
  ...Object.entries(op.responses).flatMap(([status, response]) =>
    Object.entries(response.content ?? {}).map(([type, media]) => ({
      where: `${where} ${status} ${type}`, media, status: Number(status),
      at: pointer('paths', path, method, 'responses', status, 'content', type, 'schema') }))),
]);

/** The codes a problem response documents (its `allOf`'s narrowing enum). */
function problemCodes(op: Operation, status: string): string[] {
  const schema = op.responses[status]?.content?.['application/problem+json']?.schema;
  const narrowing = (schema?.allOf as Json[] | undefined)?.[1];
  return ((narrowing?.properties as Json | undefined)?.code as { enum?: string[] } | undefined)
    ?.enum ?? [];
}

/** Every string of the document under one of `keys`, with where it is. */
function strings(node: unknown, keys: string[], at = ''): Array<[string, string]> {
  if (Array.isArray(node)) return node.flatMap((n, i) => strings(n, keys, `${at}/${i}`));
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => (keys.includes(k) && typeof v === 'string'
    ? [[`${at}/${k}`, v] as [string, string]] : strings(v, keys, `${at}/${k}`)));
}

describe('what a client author needs from the document', () => {
  test('each operation: a unique operationId, a summary, a description, declared tags', () => {
    const ids = operations.map(({ op }) => op.operationId);
    expect(new Set(ids).size).toBe(operations.length);
    const tags = new Map((committed.tags ?? []).map((t) => [t.name, t.description]));
    for (const { where, op } of operations) {
      expect(op.operationId, where).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.summary?.length, where).toBeGreaterThan(10);
      expect(op.description?.length, where).toBeGreaterThan(20);
      for (const tag of op.tags ?? []) expect(tags.get(tag), `${where}: tag ${tag}`).toBeTruthy();
    }
    expect(committed.servers?.length).toBeGreaterThan(0);
  });

  test('authenticated operations document 401, 403 and 429, with their headers', () => {
    const header = (op: Operation, status: string, name: string) =>
      op.responses[status]?.headers?.[name];
    for (const { where, op } of operations) {
      if (op.responses['503']) expect(header(op, '503', 'Retry-After'), where).toBeDefined();
      if (Array.isArray(op.security) && op.security.length === 0) continue;
      expect(problemCodes(op, '401'), where).toEqual(['UNAUTHORIZED']);
      expect(header(op, '401', 'WWW-Authenticate'), where).toBeDefined();
      expect(problemCodes(op, '403'), where).toEqual(['FORBIDDEN']);
      expect(problemCodes(op, '429'), where).toEqual(['RATE_LIMITED']);
      expect(header(op, '429', 'Retry-After'), where).toBeDefined();
    }
  });

  test('every problem response names its codes; reads never answer SAME_ACCOUNT', () => {
    for (const { where, method, op } of operations) {
      for (const status of Object.keys(op.responses).filter((s) => Number(s) >= 400)) {
        const codes = problemCodes(op, status);
        expect(codes.length, `${where} ${status}`).toBeGreaterThan(0);
        for (const code of codes) {
          expect(op.responses[status]?.description, `${where} ${status}`).toContain(`\`${code}\``);
        }
      }
      if (method === 'get') expect(problemCodes(op, '400'), where).not.toContain('SAME_ACCOUNT');
    }
    expect(problemCodes(committed.paths['/readyz']?.get as Operation, '503'))
      .toEqual(['NOT_READY']);
  });

  test('requests and answers have examples, each valid against its schema', () => {
    for (const { where, media, status, at } of medias) {
      const examples = Object.entries(media.examples ?? {});
      if (status === undefined || status < 300) {
        expect(examples.length, `${where}: no example`).toBeGreaterThan(0);
      }
      for (const [name, { value }] of examples) {
        const valid = ajv.validate({ $ref: `openapi.json#/${at}` }, value);
        expect(valid, `${where} example ${name}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
        if (status !== undefined && status >= 400) {
          expect(value, `${where} example ${name}`).toMatchObject({ status });
        }
      }
    }
  });

  test('limits match the server: `limit` is an integer up to the page limit', () => {
    const entries = committed.paths['/accounts/{id}/entries']?.get;
    const limit = entries?.parameters?.find((p) => p.name === 'limit');
    expect(limit?.in).toBe('query');
    expect(limit?.schema).toMatchObject({ type: 'integer', minimum: 1,
      maximum: limits.ENTRIES_PAGE_LIMIT_MAX, default: limits.ENTRIES_PAGE_LIMIT_DEFAULT });
  });

  test('amounts: at most 39 digits, and the bound 2^128−1 stated', () => {
    const request = committed.components.schemas.TransferRequest as { properties: Json };
    const amount = (request.properties.amount as { anyOf: Json[] }).anyOf[0];
    expect(amount).toMatchObject({ type: 'string', maxLength: limits.AMOUNT_DIGITS_MAX });
    expect(String(amount?.description)).toContain('2^128−1');
  });

  test('a transfer narrows on status; what is always there is required', () => {
    const required = (name: string) =>
      (committed.components.schemas[name] as { required: string[] }).required;
    expect(committed.components.schemas.Transfer?.oneOf).toHaveLength(2);
    expect(required('CommittedTransfer')).toEqual(expect.arrayContaining(['status', 'seq',
      'currency', 'fromBalanceAfter', 'toBalanceAfter', 'createdBy']));
    expect(required('RejectedTransfer')).toEqual(expect.arrayContaining(['status', 'reason',
      'createdBy']));
    expect(required('Account')).toContain('createdBy');
    expect(committed.components.schemas.BatchResult?.oneOf).toHaveLength(3);
  });

  test('descriptions are safe Markdown: angle brackets only inside code spans', () => {
    const text = strings(committed, ['description', 'summary', 'title']);
    expect(text.length).toBeGreaterThan(50);
    const raw = text.filter(([, s]) => /[<>]/.test(s.replace(/`[^`]*`/g, '')));
    expect(raw).toEqual([]);
    expect(JSON.stringify(committed)).toContain('`Authorization: Bearer <key>`');
  });
});
