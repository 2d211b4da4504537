/**
 * The `Ledger-Read-From` request header of the GET endpoints: where a read may be served when
 * read replicas are configured (REDIS_REPLICA_URLS). See src/redis/replicas.ts.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { ReadOptions } from '../redis/replicas.js';

/** Lower case: Node gives header names lower-cased. */
export const READ_FROM_HEADER = 'ledger-read-from';

export const ReadFromHeaders = Type.Object({
  [READ_FROM_HEADER]: Type.Optional(Type.Unsafe<'primary' | 'any'>({
    type: 'string',
    enum: ['primary', 'any'],
    description: '`any` (default): a read replica may answer when REDIS_REPLICA_URLS is set; it ' +
      'lags the primary, so it may not show the latest writes yet. `primary`: read from the ' +
      'primary, which shows every acknowledged write (read-your-writes).',
  })),
});

export function readOptions(request: FastifyRequest): ReadOptions {
  return { from: request.headers[READ_FROM_HEADER] === 'primary' ? 'primary' : 'any' };
}
