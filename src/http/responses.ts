/**
 * Response declarations shared by the routes: success bodies with a description, and problem
 * bodies under their real media type, application/problem+json (RFC 9457). A route lists the
 * outcomes it can answer; their statuses and descriptions come from the outcome table, so the
 * OpenAPI document says exactly which codes each status of each route carries.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { type Outcome, OUTCOMES, type OutcomeStatus, problemCode } from './outcomes.js';
import { Problem } from './schemas.js';

/** Every route behind authentication can answer these. */
export const AUTHENTICATED = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED'] as const;
/** A JSON body can be malformed, too large, or not JSON at all. */
export const WITH_BODY = ['VALIDATION_ERROR', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as
  const;
/** A write script can meet an unreachable Redis (unknown outcome) or one that cannot persist. */
export const WRITES = ['UNAVAILABLE', 'PERSISTENCE_FAILED'] as const;

type Responses<O extends Outcome, S extends TSchema> = { [K in O as OutcomeStatus<K>]: S };

/**
 * Problem responses for `outcomes`, with `schema` as the body (Problem by default; a route with a
 * richer problem passes its own). One description per status: each outcome's code and sentence.
 */
export function problemResponses<S extends TSchema, const O extends readonly Outcome[]>(
  schema: S, ...outcomes: O): Responses<O[number], S> {
  const byStatus = new Map<number, string[]>();
  for (const outcome of outcomes) {
    const { status, description } = OUTCOMES[outcome];
    const lines = byStatus.get(status) ?? [];
    lines.push(`${problemCode(outcome)}: ${description}`);
    byStatus.set(status, lines);
  }
  const out: Record<number, unknown> = {};
  for (const [status, lines] of [...byStatus].sort(([a], [b]) => a - b)) {
    out[status] = { description: lines.join('. '),
      content: { 'application/problem+json': { schema: Type.Ref(schema) } } };
  }
  // A response declaration is not itself a schema, but the type provider reads the status map
  // as one: typed so that it checks what handlers send under each status.
  return out as Responses<O[number], S>;
}

export function problems<const O extends readonly Outcome[]>(...outcomes: O) {
  return problemResponses(Problem, ...outcomes);
}

export function described<T extends TSchema>(schema: T, description: string) {
  return Type.Ref(schema, { description });
}
