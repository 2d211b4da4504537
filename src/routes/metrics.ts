import type { FastifyPluginAsync } from 'fastify';
import { AUTHENTICATED, problems } from '../http/responses.js';

/**
 * `GET /metrics`: the app's registry in Prometheus text format, for keys with the `metrics`
 * scope; with LEDGER_WORKERS > 1, the whole service's, whichever worker answers
 * (src/metrics/cluster.ts). Registered only when metrics are on.
 */
const metrics: FastifyPluginAsync = async (app) => {
  app.get('/metrics', {
    config: { scope: 'metrics' },
    schema: {
      operationId: 'getMetrics',
      summary: 'Prometheus metrics (text exposition format)',
      description: 'For a key with the `metrics` scope. Every metric of the service, whichever ' +
        'worker answers; docs/operations.md (Metrics) lists them.',
      tags: ['operations'],
      response: {
        200: {
          description: 'Prometheus text exposition format 0.0.4',
          content: { 'text/plain': { schema: { type: 'string' }, examples: { metrics: {
            summary: 'A few lines of it',
            value: '# TYPE ledger_transfers_total counter\n' +
              'ledger_transfers_total{outcome="committed",reason=""} 1042\n' +
              'ledger_transfers_total{outcome="rejected",reason="INSUFFICIENT_FUNDS"} 7\n',
          } } } },
        },
        ...problems(...AUTHENTICATED),
      },
    },
  }, async (_request, reply) => {
    const registry = app.metrics.registry;
    if (registry === undefined) throw new Error('GET /metrics registered with metrics off');
    const text = await app.metrics.exposition();
    return reply.type(registry.contentType).send(text);
  });
};

export default metrics;
