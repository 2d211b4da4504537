/**
 * Response declarations shared by the routes: success bodies with a description, and problem
 * bodies under their real media type, application/problem+json (RFC 9457).
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { Problem } from './schemas.js';

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (VALIDATION_ERROR, SAME_ACCOUNT); nothing recorded',
  404: 'Not found',
  409: 'The id exists with different fields; the detail names them',
  401: 'No valid API key (Authorization: Bearer <key>)',
  403: 'The API key lacks the scope',
  413: 'Body larger than the limit',
  429: 'Rate limit of the API key exceeded; see Retry-After',
  415: 'Body is not application/json',
  422: 'Business rejection, recorded under the transfer id and replayed',
  503: 'UNAVAILABLE: Redis unreachable or busy, the outcome of a write is unknown; ' +
    'PERSISTENCE_FAILED: Redis cannot persist, nothing applied. Either way retry with the same id',
};

export function problems<const S extends readonly number[]>(...statuses: S) {
  const out: Record<number, unknown> = {};
  for (const status of statuses) {
    out[status] = {
      description: PROBLEM_DESCRIPTIONS[status] ?? 'Problem',
      content: { 'application/problem+json': { schema: Type.Ref(Problem) } },
    };
  }
  // Typed as the Problem schema so the type provider checks what handlers send.
  return out as { [K in S[number]]: typeof Problem };
}

export function described<T extends TSchema>(schema: T, description: string) {
  return Type.Ref(schema, { description });
}
