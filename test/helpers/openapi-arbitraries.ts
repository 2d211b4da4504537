/**
 * Request generators derived from the committed OpenAPI document (test/http/fuzz.test.ts): per
 * operation, fast-check arbitraries of valid, boundary and hostile bodies, path parameters and
 * query strings, read from the document's request schemas ($refs resolved).
 *
 * The generators do not decide what is valid: the fuzz test's model does (the same schemas
 * through Ajv, plus the checks no schema can express). So a boundary value only has to lie near
 * an edge, on either side of it, and an "invalid" value may turn out valid.
 *
 * Bodies are `Json` trees written by `toJsonText`, which can say what JSON.stringify cannot:
 * `__proto__` as an own key (as a hostile client sends it), duplicate keys, and number tokens a
 * JS number cannot hold (1e400, -0, 2^53+1, 2^128−1).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { AMOUNT_MAX } from '../../src/config/limits.js';

// ---------------------------------------------------------------------------------------------
// JSON that can be hostile

/** A JSON token or fragment, sent verbatim. */
export class Raw {
  constructor(readonly text: string) {}
}
/** A JSON object as its list of members, so that `__proto__` and duplicate keys survive. */
export class Obj {
  constructor(readonly entries: ReadonlyArray<readonly [string, Json]>) {}
  with(key: string, value: Json): Obj {
    const rest = this.entries.filter(([k]) => k !== key);
    return new Obj([...rest, [key, value]]);
  }
  without(key: string): Obj {
    return new Obj(this.entries.filter(([k]) => k !== key));
  }
}
export type Json = null | boolean | number | string | Raw | Obj | readonly Json[];

export function toJsonText(value: Json): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Obj) {
    return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${toJsonText(v)}`).join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map((v: Json) => toJsonText(v)).join(',')}]`;
  return JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------
// The document

export interface Schema {
  $ref?: string;
  type?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: readonly unknown[];
  anyOf?: Schema[];
  not?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  maxProperties?: number;
  items?: Schema;
  description?: string;
}

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema: Schema;
}

export interface Operation {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI form, e.g. `/accounts/{id}`. */
  path: string;
  body?: Schema;
  parameters: Parameter[];
}

interface RawOperation {
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  parameters?: Parameter[];
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, RawOperation>>;
  components?: { schemas?: Record<string, Schema> };
}

export const OPENAPI_URL = new URL('../../openapi/openapi.json', import.meta.url);

export function loadOpenApi(): OpenApiDocument {
  return JSON.parse(readFileSync(OPENAPI_URL, 'utf8')) as OpenApiDocument;
}

/** A copy of `node` with every local `$ref` replaced by what it points to. */
export function resolveRefs<T>(doc: unknown, node: T, depth = 0): T {
  if (depth > 32) throw new Error('openapi: $ref nesting too deep (a cycle?)');
  if (Array.isArray(node)) return node.map((n) => resolveRefs(doc, n, depth)) as T;
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as { $ref?: unknown }).$ref;
  if (typeof ref === 'string') {
    if (!ref.startsWith('#/')) throw new Error(`openapi: only local $refs, not ${ref}`);
    let target: unknown = doc;
    for (const part of ref.slice(2).split('/')) {
      const name = part.replaceAll('~1', '/').replaceAll('~0', '~');
      target = (target as Record<string, unknown> | undefined)?.[name];
    }
    if (target === undefined) throw new Error(`openapi: dangling $ref ${ref}`);
    return resolveRefs(doc, target as T, depth + 1);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = resolveRefs(doc, v, depth);
  return out as T;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** Every operation of the document with its JSON body schema and parameters, refs resolved. */
export function operations(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const body = op.requestBody?.content?.['application/json']?.schema;
      out.push({
        method: method.toUpperCase() as Operation['method'],
        path,
        ...(body ? { body: resolveRefs(doc, body) } : {}),
        parameters: resolveRefs(doc, op.parameters ?? []),
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Hostile material

/** Code points that break naive string handling, one or two per entry. */
export const ODD_UNICODE = [
  '\uD800', '\uDBFF', '\uDC00', '\uDFFF', // lone surrogates
  '\u202E', '\u200F', '\u061C', 'שלום', // RTL override, RTL mark, Arabic mark, Hebrew
  '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', // zero-width, BOM
  '\u0000', '\u0001', '\u001F', '\u007F', '\u0085', // NUL and other controls
  '\n', '\r\n', '\t', '\u2028', '\u2029', '\\', '"', '/', '%', '\'', ' ',
  '😀', '👍🏽', '👨‍👩‍👧', '🏳️‍🌈', '\u{10FFFF}', '\uFFFE', '\uFFFF', '\uFFFD',
  'e\u0301', 'İ', 'ß', 'ﬃ', 'Å', // combining, case-mapping oddities
  'ＵＳＤ', 'АВС', 'Ѕ', '١٢٣', '１', // full width, Cyrillic look-alikes, non-ASCII digits
] as const;

/** Strings that look like numbers to someone. */
const NUMERIC_EDGE_STRINGS = [
  '0', '1', '2', '9', '10', '-0', '-1', '+1', '00', '01', '007', '1.0', '1.', '.5', '0.1',
  '1e3', '1E3', '1e+3', '1e400', ' 1', '1 ', '\t1', '1\n', '1_000', '1,000', '0x10', '0b1', '0o7',
  'NaN', 'Infinity', '-Infinity', 'null', 'true', '１', '١', '1\u0000',
  '9007199254740991', '9007199254740992', '9007199254740993',
  '18446744073709551615', '18446744073709551616',
  (AMOUNT_MAX - 1n).toString(), AMOUNT_MAX.toString(), (AMOUNT_MAX + 1n).toString(),
  '9'.repeat(39), `1${'0'.repeat(38)}`, `1${'0'.repeat(39)}`, '9'.repeat(400),
] as const;

/** Number tokens at and around the edges of doubles, safe integers and u128. */
const NUMBER_TOKENS = [
  '0', '-0', '0.0', '1', '-1', '1.0', '1.5', '1e0', '1E2', '1e-7', '1e400', '-1e400', '1e-400',
  '5e-324', '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740991',
  '-9007199254740992', '18446744073709551616', AMOUNT_MAX.toString(), '1'.repeat(400),
] as const;

/** Objects that try to reach a prototype. */
export const PROTO_VALUES: Json[] = [
  new Obj([['__proto__', new Obj([['isAdmin', true]])]]),
  new Obj([['constructor', new Obj([['prototype', new Obj([['isAdmin', true]])]])]]),
  new Obj([['prototype', new Obj([['polluted', 'yes']])]]),
  new Obj([['__proto__', null]]),
];
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

/** Nesting `depth` levels deep, arrays or objects. */
export function nested(depth: number, kind: 'array' | 'object'): Raw {
  return kind === 'array'
    ? new Raw(`${'['.repeat(depth)}${']'.repeat(depth)}`)
    : new Raw(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
}
const NESTED: Json[] = [64, 1000, 5000, 20_000]
  .flatMap((d) => [nested(d, 'array'), nested(d, 'object')]);

/** Sizes from well under to well beyond a 32 KB body limit. */
const HUGE: Json[] = [
  'x'.repeat(1000), 'x'.repeat(4097), 'x'.repeat(20_000), 'x'.repeat(33_000), 'x'.repeat(100_000),
  '😀'.repeat(9000), '\u0000'.repeat(6000), '\uD800'.repeat(5000), '\u202E'.repeat(3000),
];

const WRONG_TYPES: Json[] = [
  null, true, false, 0, 1, -1, 1.5, '', '5', 'true', 'null', [], [1], ['x'], new Obj([]),
  new Obj([['a', 'b']]), new Raw('-0'), new Raw('1e400'), new Raw('9007199254740993'),
];

const oddChar = fc.constantFrom(...ODD_UNICODE);
/** Text units: mostly printable ASCII, sometimes an odd code point. */
const textUnit = fc.oneof({ weight: 8, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1,
  maxLength: 1 }) }, { weight: 1, arbitrary: oddChar });

/** `s` with an odd code point inserted somewhere. */
function corrupt(s: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(s, oddChar, fc.nat()).map(([text, odd, at]) => {
    const i = text.length === 0 ? 0 : at % (text.length + 1);
    return text.slice(0, i) + odd + text.slice(i);
  });
}

// ---------------------------------------------------------------------------------------------
// Patterns: the edges of simple regular expressions (alternatives of classes and literals)

interface Atom {
  inside: string[];
  outside: string[];
  min: number;
  max: number;
  bounded: boolean;
  /** A plain character: only the last of a word gets edge variants (`unlimite`, `unlimitedd`). */
  literal: boolean;
}

/** Splits at top-level `|`, minding groups, classes and escapes. */
function splitAlternatives(pattern: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let inClass = false;
  let start = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') { i++; continue; }
    if (inClass) { if (c === ']') inClass = false; continue; }
    if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) { parts.push(pattern.slice(start, i)); start = i + 1; }
  }
  parts.push(pattern.slice(start));
  return parts;
}

/** Index of the `)` closing the group opened at `open`, or -1. */
function closing(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

/** The group-free alternatives of a pattern, anchors dropped; `(a|b)` is opened up. */
function alternatives(pattern: string): string[] {
  return splitAlternatives(pattern).flatMap((alt) => {
    const bare = alt.replace(/^\^/, '').replace(/\$$/, '');
    if (bare.startsWith('(') && closing(bare, 0) === bare.length - 1) {
      return alternatives(bare.slice(1, -1));
    }
    return bare.includes('(') ? [] : [bare];
  });
}

const cp = (n: number) => String.fromCodePoint(n);

/** Range ends inside a class, and the code points just outside each range. */
function classEdges(body: string): Pick<Atom, 'inside' | 'outside'> | undefined {
  if (body.startsWith('^')) return undefined;
  const ranges: Array<[number, number]> = [];
  const chars = [...body.replace(/\\(.)/g, '$1')];
  for (let i = 0; i < chars.length; i++) {
    const lo = chars[i] as string;
    const hi = chars[i + 2];
    if (chars[i + 1] === '-' && hi !== undefined) {
      ranges.push([lo.codePointAt(0) as number, hi.codePointAt(0) as number]);
      i += 2;
    } else {
      ranges.push([lo.codePointAt(0) as number, lo.codePointAt(0) as number]);
    }
  }
  const within = (n: number) => ranges.some(([a, b]) => n >= a && n <= b);
  const inside = [...new Set(ranges.flatMap(([a, b]) => [cp(a), cp(b)]))];
  const outside = [...new Set(ranges.flatMap(([a, b]) => [a - 1, b + 1])
    .filter((n) => n >= 0x20 && !within(n)).map(cp))];
  return { inside, outside };
}

function quantifier(text: string): { min: number; max: number; bounded: boolean; length: number } {
  const m = /^(?:\{(\d+)(,(\d*))?\}|([*+?]))/.exec(text);
  if (!m) return { min: 1, max: 1, bounded: true, length: 0 };
  if (m[4] === '*') return { min: 0, max: 8, bounded: false, length: 1 };
  if (m[4] === '+') return { min: 1, max: 8, bounded: false, length: 1 };
  if (m[4] === '?') return { min: 0, max: 1, bounded: true, length: 1 };
  const min = Number(m[1]);
  if (m[2] === undefined) return { min, max: min, bounded: true, length: m[0].length };
  if (m[3] === '') return { min, max: min + 8, bounded: false, length: m[0].length };
  return { min, max: Number(m[3]), bounded: true, length: m[0].length };
}

function atoms(alt: string): Atom[] | undefined {
  const out: Atom[] = [];
  let i = 0;
  while (i < alt.length) {
    let edges: Pick<Atom, 'inside' | 'outside'> | undefined;
    const literal = alt[i] !== '[';
    if (alt[i] === '[') {
      const end = alt.indexOf(']', i + 2);
      if (end < 0) return undefined;
      edges = classEdges(alt.slice(i + 1, end));
      i = end + 1;
    } else {
      const lit = alt[i] === '\\' ? alt[++i] : alt[i];
      if (lit === undefined || '.()^$'.includes(lit)) return undefined;
      const n = lit.codePointAt(0) as number;
      edges = { inside: [lit], outside: [cp(n + 1)] };
      i++;
    }
    if (!edges) return undefined;
    const q = quantifier(alt.slice(i));
    i += q.length;
    out.push({ ...edges, min: q.min, max: q.max, bounded: q.bounded, literal });
  }
  return out;
}

/** Strings at the edges of each alternative: shortest, longest, one too many, one char off. */
export function patternEdges(pattern: string): string[] {
  const out = new Set<string>();
  for (const alt of alternatives(pattern)) {
    const list = atoms(alt);
    if (!list) continue;
    const build = (count: (a: Atom, i: number) => number, pick: (a: Atom) => string) =>
      list.map((a, i) => pick(a).repeat(Math.max(0, count(a, i)))).join('');
    const first = (a: Atom) => a.inside[0] as string;
    const last = (a: Atom) => a.inside[a.inside.length - 1] as string;
    out.add(build((a) => a.min, first));
    out.add(build((a) => a.max, first));
    out.add(build((a) => a.max, last));
    list.forEach((atom, j) => {
      if (atom.literal && j < list.length - 1) return;
      if (atom.bounded) out.add(build((a, i) => (i === j ? a.max + 1 : a.max), first));
      if (atom.min > 0) out.add(build((a, i) => (i === j ? a.min - 1 : a.min), first));
      for (const c of [...atom.inside, ...atom.outside]) {
        out.add(list.map((a, i) => (i === j ? c : first(a).repeat(Math.max(a.min, 1)))).join(''));
      }
    });
  }
  return [...out];
}

// ---------------------------------------------------------------------------------------------
// Values of one schema: valid, boundary, invalid

/**
 * Per property (or parameter) name: extra values mixed with those the schema gives, mostly
 * valid ones that name what exists (so that some requests succeed), or edges worth repeating.
 */
export type Hints = Readonly<Record<string, fc.Arbitrary<Json>>>;

const withHint = (derived: fc.Arbitrary<Json>, hint?: fc.Arbitrary<Json>) =>
  hint ? fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: derived }) : derived;

function excluded(schema: Schema): (v: string) => boolean {
  const banned = schema.not?.enum ?? [];
  return (v) => !banned.includes(v);
}

function validString(schema: Schema): fc.Arbitrary<string> {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength;
  if (schema.pattern !== undefined) {
    // fast-check cannot generate from a lookahead: generate without leading ones, then keep
    // only what the whole pattern accepts.
    const whole = new RegExp(schema.pattern, 'u');
    const generator = schema.pattern.replace(/^\^(\(\?[!=][^)]*\))+/, '^');
    return fc.stringMatching(new RegExp(generator, 'u'))
      .filter((s) => whole.test(s))
      .filter((s) => s.length >= min && (max === undefined || [...s].length <= max))
      .filter(excluded(schema));
  }
  return fc.string({ unit: textUnit, minLength: min, maxLength: Math.min(max ?? 64, 300) })
    .filter(excluded(schema));
}

/** Small maps of valid keys and values (the limits are the boundary values' business). */
function validMap(schema: Schema): fc.Arbitrary<Json> {
  const keySchema = schema.propertyNames ?? { type: 'string' };
  const valueSchema = typeof schema.additionalProperties === 'object'
    ? schema.additionalProperties : {};
  const maxLength = Math.min(schema.maxProperties ?? 8, 32);
  return fc.uniqueArray(fc.tuple(validString(keySchema), validValue(valueSchema)),
    { selector: ([k]) => k, maxLength, size: 'small' }).map((e) => new Obj(e));
}

function validObject(schema: Schema, hints: Hints): fc.Arbitrary<Json> {
  const props = schema.properties ?? {};
  if (Object.keys(props).length === 0) return validMap(schema);
  const arbs: Record<string, fc.Arbitrary<Json>> = {};
  for (const [name, sub] of Object.entries(props)) {
    arbs[name] = withHint(validValue(sub), hints[name]);
  }
  return fc.record(arbs, { requiredKeys: schema.required ?? [] })
    .map((rec) => new Obj(Object.entries(rec) as Array<[string, Json]>));
}

export function validValue(schema: Schema, hints: Hints = {}): fc.Arbitrary<Json> {
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map((s) => validValue(s)));
  if (schema.enum) return fc.constantFrom(...(schema.enum as Json[]));
  switch (schema.type) {
    case 'string': return validString(schema);
    case 'integer':
      return fc.integer({ min: schema.minimum ?? Number.MIN_SAFE_INTEGER,
        max: schema.maximum ?? Number.MAX_SAFE_INTEGER });
    case 'number': return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean': return fc.boolean();
    case 'null': return fc.constant(null);
    case 'array': return fc.array(validValue(schema.items ?? {}), { maxLength: 4 });
    case 'object': return validObject(schema, hints);
    default: return fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;
  }
}

function stringBoundaries(schema: Schema): Json[] {
  const out: Json[] = [''];
  if (schema.pattern !== undefined) {
    out.push(...patternEdges(schema.pattern));
    const re = new RegExp(schema.pattern, 'u');
    if (re.test('1') && !re.test('a')) out.push(...NUMERIC_EDGE_STRINGS);
  }
  const max = schema.maxLength;
  if (max !== undefined) {
    for (const unit of ['a', '😀', '\u0001', 'é']) out.push(unit.repeat(max), unit.repeat(max + 1));
  }
  out.push(...PROTO_KEYS);
  return out;
}

function integerBoundaries(schema: Schema): Json[] {
  const out: Json[] = NUMBER_TOKENS.map((t) => new Raw(t));
  for (const edge of [schema.minimum, schema.maximum]) {
    if (edge === undefined) continue;
    for (const delta of [-1n, 0n, 1n]) {
      const n = BigInt(edge) + delta;
      out.push(new Raw(n.toString()));
      out.push(n.toString()); // the same number as a string: no coercion in bodies
    }
  }
  return out;
}

const entriesOf = (n: number, value: (i: number) => string) =>
  new Obj(Array.from({ length: n }, (_, i) => [`k${i}`, value(i)] as const));

/**
 * A map whose JSON is exactly `bytes` long, as full as `count` keys and `valueMax` characters
 * allow; for limits that only the description states ("4096 bytes of JSON").
 */
function mapOfJsonBytes(bytes: number, count: number, valueMax: number): Obj | undefined {
  const keys = Array.from({ length: count }, (_, i) => `k${String(i).padStart(2, '0')}`);
  let room = bytes - JSON.stringify(Object.fromEntries(keys.map((k) => [k, '']))).length;
  if (room < 0 || room > count * valueMax) return undefined;
  return new Obj(keys.map((k) => {
    const n = Math.min(room, valueMax);
    room -= n;
    return [k, 'v'.repeat(n)] as const;
  }));
}

function mapBoundaries(schema: Schema): Json[] {
  const keys = schema.propertyNames;
  const valueMax = typeof schema.additionalProperties === 'object'
    ? schema.additionalProperties.maxLength ?? 256 : 256;
  const count = schema.maxProperties ?? 16;
  const out: Json[] = [new Obj([]), entriesOf(count, () => 'v'), entriesOf(count + 1, () => 'v')];
  for (const k of keys?.pattern ? patternEdges(keys.pattern) : []) out.push(new Obj([[k, 'v']]));
  for (const k of [...PROTO_KEYS, '', 'toString', 'hasOwnProperty']) out.push(new Obj([[k, 'v']]));
  for (const unit of ['v', '😀', '\u0001', '\uD800', '"']) {
    out.push(new Obj([['k', unit.repeat(valueMax)]]), new Obj([['k', unit.repeat(valueMax + 1)]]));
    for (const n of [1, 4, 8, count]) out.push(entriesOf(n, () => unit.repeat(valueMax)));
  }
  const stated = /(\d+) bytes of JSON/.exec(schema.description ?? '');
  if (stated) {
    const bytes = Number(stated[1]);
    for (const n of [bytes - 1, bytes, bytes + 1]) {
      const map = mapOfJsonBytes(n, count, valueMax);
      if (map) out.push(map);
    }
  }
  return out;
}

/** Values at and just beyond every edge the schema states (and some it implies). */
export function boundaryValues(schema: Schema): Json[] {
  if (schema.anyOf) return [...new Set(schema.anyOf.flatMap(boundaryValues))];
  switch (schema.type) {
    case 'string': return stringBoundaries(schema);
    case 'integer': case 'number': return integerBoundaries(schema);
    // No coercion: only the two JSON literals pass.
    case 'boolean': return [true, false, 'true', 'false', 1, 0, null];
    case 'object': return schema.properties ? [new Obj([])] : mapBoundaries(schema);
    default: return [];
  }
}

/** Wrong types, near-valid strings with odd code points, junk, huge, deep and prototype keys. */
export function invalidValue(schema: Schema): fc.Arbitrary<Json> {
  const strings = schema.type === 'string' || schema.anyOf?.some((s) => s.type === 'string');
  const nearValid = strings ? corrupt(validString(schema.anyOf?.find((s) => s.type === 'string')
    ?? schema)) : fc.constant('');
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...WRONG_TYPES) },
    { weight: 4, arbitrary: nearValid },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom(...HUGE) },
    { weight: 1, arbitrary: fc.constantFrom(...NESTED) },
    { weight: 1, arbitrary: fc.constantFrom(...PROTO_VALUES) },
  );
}

// ---------------------------------------------------------------------------------------------
// Whole bodies

/** Bodies that are not an object, or not JSON at all. */
const HOSTILE_BODIES: Json[] = [
  null, true, 0, '', 'x', [], [new Obj([])], new Raw(''), new Raw(' '), new Raw('{'),
  new Raw('{"id":'), new Raw('{}}'), new Raw('{,}'), new Raw('{"a":1,}'), new Raw("{'a':1}"),
  new Raw('{a:1}'), new Raw('undefined'), new Raw('NaN'), new Raw('{"a":NaN}'),
  new Raw('{"a":Infinity}'), new Raw('{"a":"\\x41"}'), new Raw('{"a":"\\uD800"}'),
  new Raw('{"a":"\u0000"}'), new Raw('// comment\n{}'), new Raw('{}\u0000'), new Raw('\u0000'),
  new Raw('{"__proto__":{"x":1}}'), new Raw('{"constructor":{"prototype":{"x":1}}}'),
  ...NESTED, ...PROTO_VALUES,
];

const UNKNOWN_KEYS = [...PROTO_KEYS, 'toString', 'hasOwnProperty', 'valueOf', 'isAdmin', '',
  ' ', 'ID', 'Id', '\u0000', '\u202Eid', 'id\u200B', 'a'.repeat(10_000)];

/** Unknown, prototype or duplicate keys, and what they may hold. */
const extraKey = (names: readonly string[]) => fc.oneof(fc.constantFrom(...UNKNOWN_KEYS, ...names),
  fc.string({ maxLength: 12 }));
const extraValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
  fc.constantFrom(...PROTO_VALUES, ...NESTED, ...WRONG_TYPES));

/**
 * A body for a schema of no properties that allows none (`{}`, e.g. closing an account): the
 * empty object, one with a key added, or no object at all.
 */
function emptyBodyArbitrary(): fc.Arbitrary<Json> {
  const unknown = fc.tuple(extraKey([]), extraValue).map(([k, v]) => new Obj([[k, v]]));
  return fc.oneof(
    { weight: 30, arbitrary: fc.constant(new Obj([])) },
    { weight: 12, arbitrary: unknown },
    { weight: 8, arbitrary: fc.constantFrom(...HOSTILE_BODIES) },
  );
}

/**
 * A body for an object schema: valid (with `hints` mixed in); valid but for one boundary value;
 * one invalid value; a required field missing; an unknown, prototype or duplicate key added; or
 * no object at all.
 */
export function bodyArbitrary(schema: Schema, hints: Hints = {}): fc.Arbitrary<Json> {
  const props = schema.properties ?? {};
  const names = Object.keys(props);
  if (schema.type === 'object' && names.length === 0 && schema.additionalProperties === false) {
    return emptyBodyArbitrary();
  }
  if (schema.type !== 'object' || names.length === 0) {
    throw new Error('bodyArbitrary: an object schema with properties (or none allowed) is needed');
  }
  const valid = validObject(schema, hints) as fc.Arbitrary<Obj>;
  const boundary = fc.constantFrom(...names).chain((name) => fc.tuple(valid, fc.constant(name),
    fc.constantFrom(...boundaryValues(props[name] as Schema))))
    .map(([body, name, v]) => body.with(name, v));
  const invalid = fc.constantFrom(...names).chain((name) => fc.tuple(valid, fc.constant(name),
    invalidValue(props[name] as Schema))).map(([body, name, v]) => body.with(name, v));
  const required = schema.required ?? [];
  const missing = fc.tuple(valid, fc.constantFrom(...(required.length ? required : names)))
    .map(([body, name]) => body.without(name));
  const unknown = fc.tuple(valid, extraKey(names), extraValue)
    .map(([body, k, v]) => new Obj([...body.entries, [k, v]]));
  return fc.oneof(
    { weight: 30, arbitrary: valid },
    { weight: 20, arbitrary: boundary },
    { weight: 25, arbitrary: invalid },
    { weight: 5, arbitrary: missing },
    { weight: 12, arbitrary: unknown },
    { weight: 8, arbitrary: fc.constantFrom(...HOSTILE_BODIES) },
  );
}

// ---------------------------------------------------------------------------------------------
// Path parameters and query strings

/** encodeURIComponent, but lone surrogates become their WTF-8 bytes instead of throwing. */
export function encodeText(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (ch.length === 1 && code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

/** Segments sent as they are: bad escapes, traversal, encoded NUL and overlong UTF-8. */
const RAW_SEGMENTS = ['%', '%zz', '%2', '%00', '%2F', '%2e%2e', '..', '.', '%C0%AF', '%ED%A0%80',
  '%FF', 'a%20b', 'a+b', 'a;b', '%3Fx', 'a%23b', '~', '*', '%E2%80%AE', '%F0%9F%98%80'];

const asText = (v: Json): string =>
  typeof v === 'string' ? v : v instanceof Raw ? v.text : toJsonText(v);

/** Text values for a parameter: valid, boundary and invalid ones, all as they would be typed. */
function parameterText(schema: Schema, hint?: fc.Arbitrary<Json>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: withHint(validValue(schema), hint).map(asText) },
    { weight: 3, arbitrary: fc.constantFrom(...boundaryValues(schema).map(asText)) },
    { weight: 3, arbitrary: invalidValue(schema).map(asText) },
  );
}

/** A path segment for the parameter, percent-encoded (or deliberately not). */
export function pathSegment(schema: Schema, hint?: fc.Arbitrary<Json>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 12, arbitrary: parameterText(schema, hint).map(encodeText) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
  );
}

const RAW_QUERY_PAIRS = ['__proto__=1', '__proto__[x]=1', 'constructor=1',
  'constructor[prototype][x]=1', 'prototype=1', 'toString=1', '&&', '=', '=x', '%zz=1', 'a[]=1',
  'hasOwnProperty=1'];

/**
 * A query string for the operation's query parameters: each absent, valid, boundary or invalid;
 * sometimes repeated, sometimes joined by unknown or prototype keys.
 */
export function queryString(params: Parameter[], hints: Hints = {}): fc.Arbitrary<string> {
  const pairs = params.filter((p) => p.in === 'query').map((p) => {
    const pair = parameterText(p.schema, hints[p.name])
      .map((v) => `${encodeText(p.name)}=${encodeText(v)}`);
    return fc.oneof({ weight: 8, arbitrary: fc.constant([] as string[]) },
      { weight: 5, arbitrary: pair.map((one) => [one]) },
      { weight: 1, arbitrary: fc.tuple(pair, pair) }); // repeated: an array to the parser
  });
  const extra = fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_QUERY_PAIRS) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }))
      .map(([k, v]) => `${encodeText(k)}=${encodeText(v)}`) });
  return fc.tuple(fc.tuple(...pairs), extra).map(([lists, more]) => {
    const all = [...lists.flat(), ...(more === undefined ? [] : [more])];
    return all.length ? `?${all.join('&')}` : '';
  });
}
