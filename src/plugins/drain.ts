/**
 * Graceful close with keep-alive clients: Node closes idle sockets only when close() starts, so a
 * socket whose request was in flight would stay open for the whole keep-alive timeout. Once
 * closing, every response says `Connection: close`, and the socket ends with it.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

export default fp(async (app: FastifyInstance) => {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });
}, { name: 'drain' });
