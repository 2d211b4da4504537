/**
 * The committed OpenAPI document is the one the code serves: a route or schema change without
 * `npm run openapi` fails here. Also: the document covers every route of the contract, and /docs
 * serves the interactive docs.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { formatOpenApi, OPENAPI_FILE, openApiDocument } from '../src/openapi.js';
import { type Fixture, fixture } from './helpers/ledger.js';

const committedText =
  readFileSync(fileURLToPath(new URL(`../${OPENAPI_FILE}`, import.meta.url)), 'utf8');
const committed = JSON.parse(committedText) as {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
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
