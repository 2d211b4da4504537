/**
 * What the OpenAPI document says beyond what Fastify validates and serializes with, and how the
 * swagger plugin (src/plugins/swagger.ts) writes it:
 *
 * - `component(name, schema)`: a named schema of `components.schemas`, registered here.
 * - `documentedAs(schema, documented)`: the server checks or writes `schema`; the document shows
 *   `documented` (a transfer's union on `status`, a problem's codes, `limit` as an integer).
 * - `namedComponent(schema, name)`: a request schema validated inline, referenced by name in
 *   the document (a batch's items are the same `TransferRequest` as a single transfer).
 * - `withExamples(schema, examples)`: a request body's examples.
 *
 * The markers are `x-` keywords: Ajv (strict: false) and the serializer ignore them.
 */
import type { TSchema } from '@sinclair/typebox';

const DOCUMENTED_AS = 'x-documented-as';
const COMPONENT = 'x-component';
/** @fastify/swagger moves a body schema's `x-examples` to its media type's `examples`. */
const EXAMPLES = 'x-examples';

const registry = new Map<string, TSchema>();

/** The schemas of `components.schemas`, by name, in the order they were declared. */
export function components(): ReadonlyMap<string, TSchema> {
  return registry;
}

/** `schema` as the component `name` of the document (its `$id`), with a description. */
export function component<T extends TSchema>(name: string, schema: T, description: string):
  T & { $id: string } {
  if (registry.has(name)) throw new Error(`OpenAPI component ${name} declared twice`);
  const named = { ...schema, $id: name, description };
  registry.set(name, named);
  return named;
}

/** `schema` for the server; `documented` in the document. */
export function documentedAs<T extends TSchema>(schema: T, documented: object): T {
  return { ...schema, [DOCUMENTED_AS]: documented };
}

/** `schema` for the server; `{ $ref: components/schemas/name }` in the document. */
export function namedComponent<T extends TSchema>(schema: T, name: string): T {
  return { ...schema, [COMPONENT]: name };
}

/** A request body with the examples the document shows for it. */
export function withExamples<T extends TSchema>(schema: T, examples: object): T {
  return { ...schema, [EXAMPLES]: examples };
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A route's schema as the document shows it: every `documentedAs` replaced. A copy: the route's
 * own schema is what Fastify validates and serializes with.
 */
export function documentedRouteSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(documentedRouteSchema);
  if (!isObject(schema)) return schema;
  if (DOCUMENTED_AS in schema) return documentedRouteSchema(schema[DOCUMENTED_AS]);
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(schema)) out[key] = documentedRouteSchema(value);
  return out;
}

/**
 * The finished document: request schemas marked with `namedComponent` moved to
 * `components.schemas` (each name one schema) and referenced, and response headers that name a
 * header component referenced as such.
 */
export function finishDocument(document: Record<string, Json>): Record<string, Json> {
  const comps = isObject(document.components) ? document.components : {};
  const schemas: Record<string, Json> = isObject(comps.schemas) ? { ...comps.schemas } : {};
  const seen = new Map<string, string>();
  const walk = (node: Json, key?: string): Json => {
    if (Array.isArray(node)) return node.map((n) => walk(n));
    if (!isObject(node)) return node;
    const name = node[COMPONENT];
    if (typeof name === 'string') {
      const { [COMPONENT]: _, ...rest } = node;
      const body = walk(rest);
      const text = JSON.stringify(body);
      if (seen.has(name) && seen.get(name) !== text) {
        throw new Error(`OpenAPI component ${name}: two different schemas`);
      }
      seen.set(name, text);
      schemas[name] = body;
      return { $ref: `#/components/schemas/${name}` };
    }
    if (key === 'headers') return headerRefs(node);
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(node)) out[k] = walk(v, k);
    return out;
  };
  const paths = walk(document.paths);
  return { ...document, paths, components: { ...comps, schemas } };
}

/** Swagger writes a header as `{ schema }`; one that names a header component is a `$ref`. */
function headerRefs(headers: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [name, header] of Object.entries(headers)) {
    const ref = isObject(header) && isObject(header.schema) ? header.schema.$ref : undefined;
    out[name] = typeof ref === 'string' && ref.startsWith('#/components/headers/')
      ? { $ref: ref } : header;
  }
  return out;
}
