import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  Account, BatchProblem, BatchResult, EntriesPage, Health, Problem, Readiness, Transfer,
  TransferBatchResults,
} from '../http/schemas.js';

export const OPENAPI_INFO = {
  title: 'Atomic Ledger',
  version: '1.0.0',
  description: 'Double-entry ledger: exact (u128 minor units as decimal strings), idempotent ' +
    'and atomic transfers over Redis. Errors are application/problem+json (RFC 9457).',
};

export default fp(async (app: FastifyInstance) => {
  for (const schema of [Account, Transfer, EntriesPage, Problem, Health, Readiness, BatchResult,
    TransferBatchResults, BatchProblem]) {
    app.addSchema(schema);
  }
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: OPENAPI_INFO,
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer',
            description: 'An API key of LEDGER_API_KEYS; scopes read, write, metrics, admin' },
        },
      },
      security: [{ apiKey: [] }],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { config: { scope: 'public' }, schema: { hide: true } },
    async () => app.swagger());
}, { name: 'swagger' });
