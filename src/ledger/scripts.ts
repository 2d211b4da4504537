/**
 * Loads the Lua scripts in `lua/` as contracts (BullMQ's convention, stricter):
 * - the file is `<name>-<N>.lua`, N being the number of KEYS it declares;
 * - the first line is a `#!lua` shebang with flags, so Redis checks OOM, disk errors and
 *   read-only replicas before the script runs, not halfway through;
 * - the header documents KEYS[1..N] and no other KEYS, except that a script taking a variable
 *   number of keys (a batch) documents `KEYS[N+1..]` after them and is called with at least N;
 * - `--- @include <name>` lines inline `lua/includes/<name>.lua`, once per script, after the
 *   includes it declares itself (BullMQ's way); a cycle of includes is refused;
 * - `{{L_<LIMIT>}}`, `{{S_<STATUS>}}`, the record positions (`{{J_…}}`, `{{R_…}}`, `{{A_…}}`,
 *   records.ts), `{{AMOUNT_MAX}}` and `{{FORMAT_VERSION}}` are replaced from the TypeScript
 *   modules, so limits, status codes and the stored layout each have one home.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { AMOUNT_MAX_STRING, limits } from '../config/limits.js';
import { isPersistenceError, isUnavailableError } from '../redis/errors.js';
import { layoutPlaceholders } from './records.js';
import { statusCode } from './status.js';

/**
 * Version of the stored data layout; scripts refuse a ledger written in another format, except
 * the one it upgrades from. 3 added holds, reversals and closed accounts: records of new kinds
 * and reserved funds that a release of format 2 would ignore, so 3 marks the ledger on its first
 * write (lua/includes/format.lua) and format-2 releases refuse it from then on.
 */
export const DATA_FORMAT_VERSION = '3';
/** The format whose data this release reads as its own and upgrades on its first write. */
export const DATA_FORMAT_UPGRADES_FROM = '2';

export const LUA_DIR = fileURLToPath(new URL('../../lua/', import.meta.url));

/**
 * A script argument: text only. One Buffer among a call's arguments makes ioredis encode every
 * argument of that call as bytes: 15-20 µs more per call, measured on this hot path (a compact
 * id as 17 bytes cost single transfers ~15%). Binary data goes as 7-bit text instead
 * (src/ledger/keys.ts compactId).
 */
export type ScriptArg = string;

export interface Script {
  readonly name: string;
  /** Keys it declares; with `variadic`, the least it is called with. */
  readonly numberOfKeys: number;
  readonly variadic: boolean;
  readonly source: string;
  readonly sha: string;
}

const FILE_PATTERN = /^([a-z][a-z-]*[a-z])-(\d+)\.lua$/;

function substitutions(): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(limits)) map.set(`L_${name}`, String(value));
  for (const [name, code] of Object.entries(statusCode)) map.set(`S_${name}`, String(code));
  for (const [name, position] of layoutPlaceholders()) map.set(name, position);
  map.set('AMOUNT_MAX', AMOUNT_MAX_STRING);
  map.set('FORMAT_VERSION', DATA_FORMAT_VERSION);
  map.set('FORMAT_UPGRADES_FROM', DATA_FORMAT_UPGRADES_FROM);
  return map;
}

const INCLUDE_LINE = /^--- @include ([a-z0-9-]+)$/gm;

/**
 * Replaces each `--- @include` line with the include's text, itself with its own includes
 * inlined first. `done` holds the includes already inlined in this script (each once: Lua
 * `local function`s need no second copy); `stack` the chain being inlined, to refuse a cycle.
 */
function inlineIncludes(file: string, text: string, dir: string, done: Set<string>,
  stack: string[]): string {
  return text.replace(INCLUDE_LINE, (_line, include: string) => {
    if (stack.includes(include)) {
      throw new Error(`lua/${file}: include cycle ${[...stack, include].join(' -> ')}`);
    }
    if (done.has(include)) return `-- (${include} is included above)`;
    const body = inlineIncludes(file, readFileSync(`${dir}includes/${include}.lua`, 'utf8'),
      dir, done, [...stack, include]);
    done.add(include);
    return body;
  });
}

export function compileScript(file: string, text: string, dir = LUA_DIR): Script {
  const match = FILE_PATTERN.exec(file);
  if (!match) throw new Error(`lua/${file}: name must be <name>-<numberOfKeys>.lua`);
  const name = match[1] as string;
  const numberOfKeys = Number(match[2]);
  if (!/^#!lua flags=[a-z-,]*\n/.test(text)) {
    throw new Error(`lua/${file}: the first line must be '#!lua flags=...'`);
  }
  const declared = new Set([...text.matchAll(/^KEYS\[(\d+)\]/gm)].map((m) => Number(m[1])));
  for (let i = 1; i <= numberOfKeys + 1; i++) {
    if ((i <= numberOfKeys) !== declared.has(i)) {
      throw new Error(`lua/${file}: the header must document exactly KEYS[1..${numberOfKeys}]`);
    }
  }
  const rest = [...text.matchAll(/^KEYS\[(\d+)\.\.\]/gm)].map((m) => Number(m[1]));
  if (rest.some((first) => first !== numberOfKeys + 1)) {
    throw new Error(`lua/${file}: variable keys must be documented as KEYS[${numberOfKeys + 1}..]`);
  }
  const variadic = rest.length > 0;
  const inlined = inlineIncludes(file, text, dir, new Set(), []);
  const values = substitutions();
  const source = inlined.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_token, key: string) => {
    const value = values.get(key);
    if (value === undefined) throw new Error(`lua/${file}: unknown placeholder {{${key}}}`);
    return value;
  });
  const sha = createHash('sha1').update(source).digest('hex');
  return { name, numberOfKeys, variadic, source, sha };
}

export function loadScripts(dir = LUA_DIR): Map<string, Script> {
  const scripts = new Map<string, Script>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.lua')).sort()) {
    const script = compileScript(file, readFileSync(`${dir}${file}`, 'utf8'), dir);
    if (scripts.has(script.name)) throw new Error(`lua/${file}: duplicate script name`);
    scripts.set(script.name, script);
  }
  return scripts;
}

/**
 * Told of every script call, for metrics; the core knows nothing of the metrics library.
 * `outcome` is the script's status lower-cased (`ok`, `exists`, `insufficient_funds`, …) for a
 * reply that starts with one, `ok` for a reply of data (reads), `invalid_reply` for a status
 * code out of range, or `unavailable` / `persistence_failed` / `error` when the call threw.
 * `seconds` is measured around the call, so it includes the round trip to Redis.
 * Must not throw: a metrics failure must never change the outcome of a transfer.
 */
export interface ScriptObserver {
  scriptCompleted?(script: string, outcome: string, seconds: number): void;
}

/** Bounded label values, computed once rather than per call. */
const STATUS_OUTCOMES = new Map<number, string>(Object.entries(statusCode)
  .map(([name, code]) => [code, name.toLowerCase()]));

function replyOutcome(reply: unknown): string {
  const code = Array.isArray(reply) ? reply[0] : undefined;
  if (typeof code !== 'number') return 'ok'; // a read: its caller checks the reply's shape
  return STATUS_OUTCOMES.get(code) ?? 'invalid_reply';
}

function errorOutcome(error: unknown): string {
  if (isPersistenceError(error)) return 'persistence_failed';
  return isUnavailableError(error) ? 'unavailable' : 'error';
}

/** EVALSHA, falling back to EVAL when Redis lost its script cache (restart, SCRIPT FLUSH). */
export async function runScript(
  redis: Redis,
  script: Script,
  keys: readonly string[],
  args: readonly ScriptArg[],
  observer?: ScriptObserver,
): Promise<unknown> {
  if (script.variadic ? keys.length < script.numberOfKeys : keys.length !== script.numberOfKeys) {
    throw new Error(`${script.name}: expected ${script.numberOfKeys} keys, got ${keys.length}`);
  }
  if (observer?.scriptCompleted === undefined) return callScript(redis, script, keys, args);
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  let reply: unknown;
  try {
    reply = await callScript(redis, script, keys, args);
  } catch (error) {
    observer.scriptCompleted?.(script.name, errorOutcome(error), seconds());
    throw error;
  }
  observer.scriptCompleted?.(script.name, replyOutcome(reply), seconds());
  return reply;
}

async function callScript(
  redis: Redis,
  script: Script,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    // NOSCRIPT means the script did not run, so sending the source is safe.
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
      return await redis.eval(script.source, keys.length, ...keys, ...args);
    }
    throw error;
  }
}

/** Loads every script into Redis's cache; true when all were already there. */
export async function ensureScriptsLoaded(
  redis: Redis,
  scripts: Iterable<Script>,
): Promise<boolean> {
  const list = [...scripts];
  const present = (await redis.script('EXISTS', ...list.map((s) => s.sha))) as number[];
  let all = true;
  for (const [i, script] of list.entries()) {
    if (present[i] === 1) continue;
    all = false;
    const sha = await redis.script('LOAD', script.source);
    if (sha !== script.sha) throw new Error(`${script.name}: Redis computed sha ${String(sha)}`);
  }
  return all;
}
