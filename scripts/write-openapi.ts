/**
 * `npm run openapi`: writes the OpenAPI document of the current routes to openapi/openapi.json.
 * No Redis needed. test/openapi.test.ts fails when the committed file drifts from the code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatOpenApi, OPENAPI_FILE, openApiDocument } from '../src/openapi.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = join(root, OPENAPI_FILE);
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, formatOpenApi(await openApiDocument()));
console.log(`wrote ${OPENAPI_FILE}; the typed client's types follow with npm run openapi:client`);
