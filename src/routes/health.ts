import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problem, sendProblem } from '../http/problem.js';
import { described, problems } from '../http/responses.js';
import { Health, Readiness } from '../http/schemas.js';
import { checkReadiness } from '../redis/readiness.js';

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    config: { scope: 'public' },
    schema: {
      security: [],
      summary: 'Liveness: the process runs',
      tags: ['operations'],
      response: { 200: described(Health, 'Alive') },
    },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    config: { scope: 'public' },
    schema: {
      security: [],
      summary: 'Readiness: Redis answers, scripts loaded, persistence as a ledger needs',
      tags: ['operations'],
      response: { 200: described(Readiness, 'Ready'), ...problems('NOT_READY') },
    },
  }, async (_request, reply) => {
    const result = await checkReadiness(app.redis, app.ledger, app.persistence);
    if (result.ready) return { status: 'ready', checks: result.checks, advisory: result.advisory };
    const failing = Object.entries(result.checks).filter(([, v]) => v !== 'ok');
    return sendProblem(reply, problem('NOT_READY',
      failing.map(([name, why]) => `${name}: ${why}`).join('; ')));
  });
};

export default health;
