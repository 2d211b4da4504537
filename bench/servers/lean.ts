/**
 * Server (b): the lean baseline. Fastify, a JSON schema for the body and ONE `EVALSHA` of
 * bench/lean-transfer.lua: what Node, Fastify and Redis can physically do per transfer. The
 * product pays for u128 amounts, records, entries, auth, metrics and logs on top of this; the
 * bench reports the product as a ratio of it. No logger, no validation beyond the schema.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL as string);
const sha = await redis.script('LOAD',
  readFileSync(new URL('../lean-transfer.lua', import.meta.url), 'utf8')) as string;
// One hash tag, so the three keys of a transfer could share a Cluster slot like the product's.
const IDEMPOTENCY = 'lean:{bench}:idem';
const balance = (account: string) => `lean:{bench}:bal:${account}`;

const str = { type: 'string', minLength: 1 } as const;
const TransferBody = {
  type: 'object',
  required: ['id', 'from', 'to', 'amount'],
  additionalProperties: false,
  properties: { id: str, from: str, to: str, amount: str },
} as const;

interface Transfer { id: string; from: string; to: string; amount: string }

const app = Fastify({ logger: false });
app.get('/healthz', async () => 'ok');
app.post<{ Body: Transfer }>('/transfers', { schema: { body: TransferBody } },
  async (request, reply) => {
    const { id, from, to, amount } = request.body;
    const applied = await redis.evalsha(sha, 3, IDEMPOTENCY, balance(from), balance(to),
      id, amount);
    return reply.code(201).send({ id, applied: applied === 1 });
  });
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
