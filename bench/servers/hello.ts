/**
 * Server (a): Fastify hello world, the ceiling of any Fastify route on this machine. No logger,
 * as in Fastify's own benchmarks, so the figure is the framework and Node's HTTP alone.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
