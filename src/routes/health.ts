import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problem, sendProblem } from '../http/problem.js';
import { HEALTH, READINESS } from '../http/examples.js';
import { json, problems, ref } from '../http/responses.js';
import { Health, Readiness } from '../http/schemas.js';
import { checkReadiness } from '../redis/readiness.js';

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', {
    config: { scope: 'public' },
    schema: {
      security: [],
      operationId: 'getLiveness',
      summary: 'Liveness: the process runs',
      description: 'Answers 200 while the process can serve HTTP, whatever the state of Redis ' +
        '(that is `/readyz`). No API key needed.',
      tags: ['operations'],
      response: { 200: json(ref(Health), 'Alive', { examples: HEALTH }) },
    },
  }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    config: { scope: 'public' },
    schema: {
      security: [],
      operationId: 'getReadiness',
      summary: 'Readiness: Redis answers, scripts loaded, persistence as a ledger needs',
      description: 'Send traffic only while this answers 200. A 503 `NOT_READY` names the ' +
        'failing checks in its detail. No API key needed.',
      tags: ['operations'],
      response: { 200: json(ref(Readiness), 'Ready', { examples: READINESS }),
        ...problems('NOT_READY') },
    },
  }, async (_request, reply) => {
    const result = await checkReadiness(app.redis, app.ledger, app.persistence);
    if (result.ready) {
      return { status: 'ready' as const, checks: result.checks, advisory: result.advisory };
    }
    const failing = Object.entries(result.checks).filter(([, v]) => v !== 'ok');
    return sendProblem(reply, problem('NOT_READY',
      failing.map(([name, why]) => `${name}: ${why}`).join('; ')));
  });
};

export default health;
