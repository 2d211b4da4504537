import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { components, documentedRouteSchema, finishDocument } from '../http/document.js';
import { HEADER_COMPONENTS } from '../http/responses.js';
import '../http/schemas.js';

export const OPENAPI_INFO = {
  title: 'Atomic Ledger',
  version: '1.0.0',
  description: 'Double-entry ledger: exact (u128 minor units as decimal strings), idempotent ' +
    'and atomic transfers over Redis. Errors are `application/problem+json` (RFC 9457), each ' +
    'with a stable `code`. A transfer is retried with the same id and fields until it gets a ' +
    'decided answer (201, 409 or 422; another 4xx asks to fix the request); 429 and 503 say ' +
    'in `Retry-After` when to try again. clients/typescript in the repository is a typed client.',
};

/** Descriptions are Markdown: anything in angle brackets is written as code, never as HTML. */
const TAGS = [
  { name: 'accounts', description: 'Accounts hold one currency each; the balance is credits − ' +
    'debits, and may go below zero only as far as the account\'s overdraft limit.' },
  { name: 'transfers', description: 'A transfer debits one account and credits another, ' +
    'exactly once per id the client chooses, or is rejected and recorded as such.' },
  { name: 'holds', description: 'A hold (`POST /transfers` with `"pending": true`) reserves ' +
    'money without moving it; a post moves all or part of it, a void releases it, and an ' +
    'expired hold is released by the service. Each settles a hold once.' },
  { name: 'ledgers', description: 'A ledger is a namespace of accounts and transfers, with ' +
    'its own Redis hash tag (one Redis Cluster slot). Every account, transfer and hold route ' +
    'also exists under `/ledgers/{ledger}`; without the prefix it acts on the default ledger. ' +
    'A key restricted to some ledgers gets 404 `LEDGER_NOT_FOUND` for any other.' },
  { name: 'journal', description: 'The journal as a feed of change data: every committed ' +
    'record in seq order, paged by `after`, with a long poll (`wait`). The service can also ' +
    'publish the same records to an AMQP broker (`LEDGER_CDC_AMQP_URL`).' },
  { name: 'operations', description: 'Liveness, readiness and Prometheus metrics, for ' +
    'orchestrators and operators.' },
];

/** Where the service listens as `npm start` runs it; HOST and PORT change it. */
const SERVERS = [{
  url: 'http://{host}:{port}',
  description: 'The service as `npm start` runs it (its HOST and PORT)',
  variables: {
    host: { default: '127.0.0.1', description: 'HOST' },
    port: { default: '3000', description: 'PORT' },
  },
}];

export default fp(async (app: FastifyInstance) => {
  for (const schema of components().values()) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: OPENAPI_INFO,
      servers: SERVERS,
      tags: TAGS,
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer',
            description: 'An API key of `LEDGER_API_KEYS`, sent as ' +
              '`Authorization: Bearer <key>`; its scopes are `read`, `write`, `metrics` and ' +
              '`admin`' },
        },
        headers: HEADER_COMPONENTS,
      },
      security: [{ apiKey: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`),
    },
    // What the routes validate and serialize with, as the document states it (document.ts).
    transform: ({ schema, url }) => ({ schema: documentedRouteSchema(schema) as typeof schema,
      url }),
    transformObject: (document) => ('openapiObject' in document
      ? finishDocument(document.openapiObject as Record<string, unknown>) : document.swaggerObject),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { config: { scope: 'public' }, schema: { hide: true } },
    async () => app.swagger());
}, { name: 'swagger' });
