/**
 * Response declarations shared by the routes: success bodies with a description, examples and
 * headers, and problem bodies under their real media type, application/problem+json (RFC 9457).
 * A route lists the outcomes it can answer; their statuses and descriptions come from the
 * outcome table, so the OpenAPI document says exactly which codes each status of each route
 * carries (an enum per response) and shows an example of each.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { REJECTION_REASONS } from '../ledger/status.js';
import { component, documentedAs } from './document.js';
import { type Examples, exampleBatchProblem, exampleProblem } from './examples.js';
import {
  type Outcome, OUTCOMES, type OutcomeStatus, type ProblemCode, problemCode,
} from './outcomes.js';
import { BatchProblemJson, BatchResultJson, CommittedTransfer, ProblemJson } from './schemas.js';

/** Every route behind authentication can answer these. */
export const AUTHENTICATED = ['UNAUTHORIZED', 'FORBIDDEN', 'RATE_LIMITED'] as const;
/**
 * A route of a ledger (every account, transfer and hold route, with or without the
 * `/ledgers/{ledger}` prefix): an unknown ledger, or one the key does not reach, is 404.
 */
export const IN_LEDGER = [...AUTHENTICATED, 'NO_SUCH_LEDGER'] as const;
/** A JSON body can be malformed, too large, or not JSON at all. */
export const WITH_BODY = ['VALIDATION_ERROR', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as
  const;
/** A write script can meet an unreachable Redis (unknown outcome) or one that cannot persist. */
export const WRITES = ['UNAVAILABLE', 'PERSISTENCE_FAILED'] as const;

/** The response headers the service sends: `components.headers` of the document. */
export const HEADER_COMPONENTS = {
  RetryAfter: { required: true, schema: { type: 'integer' as const, minimum: 1 },
    description: 'Seconds to wait before trying again (a write: with the same id)' },
  WWWAuthenticate: { required: true, schema: { type: 'string' as const },
    description: 'How to authenticate: `Bearer realm="atomic-ledger"`' },
} satisfies Record<string, { required: boolean; schema: object; description: string }>;
const header = (name: keyof typeof HEADER_COMPONENTS) =>
  ({ $ref: `#/components/headers/${name}` });
/** Not always sent, so written out where it is (a `$ref` would read as required to some). */
export const REPLAYED_HEADER = { 'Idempotent-Replayed': { type: 'string', enum: ['true'],
  description: '`true` when an earlier request with the same id decided this answer (a ' +
    'replay: nothing was applied again); absent otherwise' } };
/** Headers every problem of a status carries (src/plugins/auth.ts, src/http/problem.ts). */
const PROBLEM_HEADERS: Partial<Record<number, Record<string, unknown>>> = {
  401: { 'WWW-Authenticate': header('WWWAuthenticate') },
  429: { 'Retry-After': header('RetryAfter') },
  503: { 'Retry-After': header('RetryAfter') },
};

const CODES = [...new Set((Object.keys(OUTCOMES) as Outcome[]).map(problemCode))];
const codeSchema = (codes: readonly ProblemCode[]) => Type.Unsafe<ProblemCode>(
  { type: 'string', enum: codes, description: ProblemJson.properties.code.description });

export const Problem = component('Problem',
  Type.Object({ ...ProblemJson.properties, code: codeSchema(CODES) }),
  'RFC 9457 problem details (application/problem+json)');
export const BatchProblem = component('BatchProblem',
  Type.Object({ ...BatchProblemJson.properties, code: codeSchema(CODES) }),
  'RFC 9457 problem details naming the transfer that refused an atomic batch; nothing applied');

/** `base` narrowed to one status and the codes it carries there, for the document. */
function problemOf(base: { $id: string }, status: number, codes: readonly ProblemCode[]) {
  return { allOf: [Type.Ref(base.$id), { type: 'object', required: ['status', 'code'],
    properties: { status: { type: 'integer', const: status, description: 'The HTTP status' },
      code: codeSchema(codes) } }] };
}

type Responses<O extends Outcome, S extends TSchema> = { [K in O as OutcomeStatus<K>]: S };

/** Problem responses: the serializer writes `wire`, the document shows `base` narrowed. */
function problemResponses<S extends TSchema, const O extends readonly Outcome[]>(wire: S,
  base: { $id: string }, example: (o: Outcome) => unknown, outcomes: O):
  Responses<O[number], S> {
  const byStatus = new Map<number, Outcome[]>();
  for (const outcome of outcomes) {
    const status = OUTCOMES[outcome].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), outcome]);
  }
  const out: Record<number, unknown> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const codes = [...new Set(list.map(problemCode))];
    const examples: Examples = {};
    for (const o of list) {
      examples[problemCode(o)] = { summary: OUTCOMES[o].title, value: example(o) };
    }
    out[status] = {
      description: list.map((o) => `\`${problemCode(o)}\`: ${OUTCOMES[o].description}.`)
        .join(' '),
      ...(PROBLEM_HEADERS[status] ? { headers: PROBLEM_HEADERS[status] } : {}),
      content: { 'application/problem+json': {
        schema: documentedAs(wire, problemOf(base, status, codes)), examples } },
    };
  }
  // A response declaration is not itself a schema, but the type provider reads the status map
  // as one: typed so that it checks what handlers send under each status.
  return out as Responses<O[number], S>;
}

export function problems<const O extends readonly Outcome[]>(...outcomes: O) {
  return problemResponses(ProblemJson, Problem, exampleProblem, outcomes);
}

/** An atomic batch refused whole: the problem names the transfer that spoiled it. */
export function batchProblems<const O extends readonly Outcome[]>(...outcomes: O) {
  return problemResponses(BatchProblemJson, BatchProblem, exampleBatchProblem, outcomes);
}

/** `responses` with `headers` added to the response of `status`. */
export function withHeaders<R extends object>(responses: R, status: number,
  headers: Record<string, unknown>): R {
  const all = responses as Record<number, { headers?: object }>;
  const response = all[status];
  if (response === undefined) throw new Error(`no response ${status} to add headers to`);
  return { ...responses, [status]: { ...response, headers: { ...response.headers, ...headers } } };
}

interface JsonOptions {
  examples: Examples;
  /** What the document shows when it says more than `schema` (a union, required fields). */
  documented?: { $id: string };
  headers?: Record<string, unknown>;
}

/** A JSON success response: the serializer writes `schema`; the document shows more. */
export function json<S extends TSchema>(schema: S, description: string,
  options: JsonOptions): S {
  const { documented, examples, headers } = options;
  const body = documented === undefined ? schema
    : documentedAs(schema, Type.Ref(documented.$id));
  const response = { description, ...(headers ? { headers } : {}),
    content: { 'application/json': { schema: body, examples } } };
  // As in problemResponses: the type provider reads the declaration as its schema.
  return response as unknown as S;
}

/** A component's schema by reference, with its static type. */
export function ref<T extends TSchema>(schema: T, options: { description?: string } = {}) {
  if (schema.$id === undefined) throw new Error('ref: a schema without $id');
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id, options));
}

/** A component as a response, without examples or headers (`json` gives both). */
export function described<T extends TSchema>(schema: T, description: string) {
  return ref(schema, { description });
}

/** Results of a batch for the document: one kind of result per status, narrowed by it. */
const resultOf = (status: number, name: string, description: string, body: object) =>
  component(name, Type.Object({
    id: BatchResultJson.properties.id,
    status: Type.Unsafe<number>({ type: 'integer', const: status,
      description: 'What `POST /transfers` would have answered' }),
    replayed: BatchResultJson.properties.replayed,
    ...body,
  }), description);

const BatchCommitted = resultOf(201, 'BatchResultCommitted',
  'What `POST /transfers` would have answered: 201 and the committed transfer',
  { transfer: Type.Ref(CommittedTransfer.$id) });
const BatchConflict = resultOf(409, 'BatchResultConflict',
  'What `POST /transfers` would have answered: 409, the id was decided with other fields',
  { problem: { ...problemOf(Problem, 409, ['TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS']),
    description: 'Its 409 problem' } });
const BatchRejected = resultOf(422, 'BatchResultRejected',
  'What `POST /transfers` would have answered: 422, the transfer is rejected (and recorded)',
  { problem: { ...problemOf(Problem, 422, REJECTION_REASONS.map(problemCode)),
    description: 'Its 422 problem: why it was rejected' } });
const BatchResult = component('BatchResult', Type.Unsafe({
  oneOf: [BatchCommitted, BatchConflict, BatchRejected].map((s) => Type.Ref(s.$id)),
}), 'One transfer of a batch: `status` says which of the three it is');
export const TransferBatchResults = component('TransferBatchResults', Type.Object({
  results: Type.Array(Type.Ref(BatchResult.$id), { description: 'One per transfer, in order' }),
}), 'Every transfer of the batch, decided');
