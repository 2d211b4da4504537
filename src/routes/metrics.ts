import type { FastifyPluginAsync } from 'fastify';

/**
 * `GET /metrics`: the app's registry in Prometheus text format, for keys with the `metrics`
 * scope; with LEDGER_WORKERS > 1, the whole service's, whichever worker answers
 * (src/metrics/cluster.ts). Registered only when metrics are on.
 */
const metrics: FastifyPluginAsync = async (app) => {
  app.get('/metrics', {
    config: { scope: 'metrics' },
    schema: {
      summary: 'Prometheus metrics (text exposition format)',
      tags: ['operations'],
      response: {
        200: {
          description: 'Every metric of this instance; see the README, Operations / Metrics',
          content: { 'text/plain': { schema: { type: 'string' } } },
        },
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
