/**
 * Server (p): the PostgreSQL baseline, the ledger a team would otherwise build. The shape of
 * servers/lean.ts (Fastify, a JSON schema, no logger) around ONE call of the PL/pgSQL function
 * of bench/postgres-ledger.sql per request, each its own transaction (autocommit), as a named
 * prepared statement (parsed and planned once per connection) on a pool of POSTGRES_POOL_SIZE
 * connections. It answers as the product does: 201 committed (a replay with
 * Idempotent-Replayed), 409 a replay with other fields, 422 a recorded rejection.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { isRejection, statusOf } from '../../src/ledger/status.js';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POSTGRES_POOL_SIZE),
  // Kept open while the other servers' segments run: a reconnect would put authentication,
  // a new backend and its cold caches (the function compiled again) into the next segment.
  idleTimeoutMillis: 0,
});
// An idle connection that fails (postgres stopped under it) must not crash the server: the
// request that next needs one fails instead, and the bench counts it as an error.
pool.on('error', () => undefined);

const TRANSFER = {
  name: 'ledger_transfer',
  text: 'SELECT * FROM ledger_transfer($1, $2, $3, $4, $5, $6, $7)',
};
/** The product records the API key's name; the bench's key is named so. */
const CREATED_BY = 'bench';

const id = { type: 'string', minLength: 1, maxLength: 128 } as const;
const TransferBody = {
  type: 'object',
  required: ['id', 'from', 'to', 'amount'],
  additionalProperties: false,
  properties: {
    id, from: id, to: id,
    // 1 .. 2^128-1 as a canonical decimal; the function checks the upper bound.
    amount: { type: 'string', pattern: '^[1-9][0-9]{0,38}$' },
    currency: { type: 'string', minLength: 1, maxLength: 16 },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
  },
} as const;

interface TransferRequest {
  id: string; from: string; to: string; amount: string; currency?: string;
  metadata?: Record<string, string>;
}

/** ledger_transfer's OUT parameters; numeric and bigint arrive as strings (never floats). */
interface Decision {
  status: number; replayed: boolean; differs: string[] | null; seq: string | null;
  from_balance_after: string | null; to_balance_after: string | null;
}

// Every connection opened now, and the statement prepared and the function compiled on each
// (from = to returns INVALID_ARGUMENT before any write): authentication and cold backends
// then cost no segment anything, as in a service that has been up for a while.
const clients = await Promise.all(Array.from({ length: pool.options.max }, () => pool.connect()));
await Promise.all(clients.map((c) => c.query({ ...TRANSFER,
  values: ['warm-up', 'a', 'a', '1', null, '{}', CREATED_BY] })));
for (const c of clients) c.release();

const app = Fastify({ logger: false });
app.get('/healthz', async () => {
  await pool.query('SELECT 1');
  return 'ok';
});
app.post<{ Body: TransferRequest }>('/transfers', { schema: { body: TransferBody } },
  async (request, reply) => {
    const t = request.body;
    if (t.from === t.to) return reply.code(400).send({ code: 'SAME_ACCOUNT' });
    const { rows } = await pool.query<Decision>({ ...TRANSFER, values: [t.id, t.from, t.to,
      t.amount, t.currency ?? null, JSON.stringify(t.metadata ?? {}), CREATED_BY] });
    const d = rows[0];
    if (d === undefined) throw new Error('ledger_transfer returned no row');
    if (d.differs !== null && d.differs.length > 0) {
      return reply.code(409).send({ code: 'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
        fields: d.differs });
    }
    if (d.replayed) reply.header('idempotent-replayed', 'true');
    const status = statusOf(d.status);
    if (status === 'OK') {
      return reply.code(201).send({ id: t.id, from: t.from, to: t.to, amount: t.amount,
        status: 'committed', seq: d.seq, fromBalanceAfter: d.from_balance_after,
        toBalanceAfter: d.to_balance_after });
    }
    if (status !== undefined && isRejection(status)) {
      return reply.code(422).send({ code: status });
    }
    throw new Error(`ledger_transfer returned status ${d.status}`);
  });
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
