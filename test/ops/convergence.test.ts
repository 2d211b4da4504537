/**
 * Determinism and convergence: the bank workload (test/faults/bank: ten concurrent clients,
 * replays, conflicts, rejections, every ambiguous answer retried with its id) runs over HTTP
 * against a primary with a replica attached, with the script cache flushed now and then. Once
 * the replica has caught up (equal replication offsets), both hold the same data: DEBUG DIGEST
 * of the whole dataset, and key by key (names, types, contents, per-key digests) so that a
 * difference names its key. The bank's invariant checker then reads through the replica.
 *
 * And a static check of lua/: no script calls what would make its writes depend on anything but
 * its keys and arguments (time, randomness, unordered iteration over a reply).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkInvariants } from '../faults/bank/checker.js';
import { History, seededRandom } from '../faults/bank/history.js';
import { BankLoad, bankSpec, resolveAll, setupBank } from '../faults/bank/workload.js';
import {
  admin, caughtUp, info, type OpsApp, opsApp, REPLICATION_ARGS, startRedis, startReplica,
  type TestRedis, until,
} from './helpers.js';

const LOAD_MS = 3000;
const FLUSH_EVERY_MS = 700;
const RESOLVE_BUDGET_MS = 10_000;

describe('a primary and its replica after the bank workload', () => {
  let primary: TestRedis;
  let replica: TestRedis;
  let p: Redis;
  let r: Redis;
  let o: OpsApp;

  beforeAll(async () => {
    primary = await startRedis({ extraArgs: REPLICATION_ARGS });
    replica = await startReplica(primary);
    p = await admin(primary.url);
    r = await admin(replica.url);
    await until('the replica to sync', async () =>
      /master_link_status:up/.test(await r.info('replication')));
    o = await opsApp(primary.url, { replicaUrls: [replica.url] });
  });
  afterAll(async () => {
    await o?.close();
    p?.disconnect();
    r?.disconnect();
    await replica?.dispose();
    await primary?.dispose();
  });

  test('hold identical data: DEBUG DIGEST and key by key', async () => {
    const seed = Number(process.env.BANK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const history = new History();
    const spec = bankSpec();
    await setupBank(o.base, spec, history);
    const load = BankLoad.start(o.base, spec, history, seededRandom(seed), `conv${seed}`);
    for (let t = 0; t < LOAD_MS; t += FLUSH_EVERY_MS) {
      await sleep(FLUSH_EVERY_MS);
      await p.script('FLUSH'); // EVAL and EVALSHA both in the stream
    }
    await load.stop();
    await resolveAll(o.base, history, RESOLVE_BUDGET_MS);
    await caughtUp(p, r);

    const committed = history.transfersWith('committed').length;
    const replicated = (await info(r, 'replication')).get('slave_repl_offset');
    console.info(`convergence (BANK_SEED=${seed}): ${history.ops.length} ops, ${committed} ` +
      `committed transfers; ${replicated} bytes replicated`);
    expect(committed, 'the workload must have moved money').toBeGreaterThan(100);
    expect(await datasetDifferences(p, r)).toEqual([]);
    expect(await p.call('DEBUG', 'DIGEST')).toBe(await r.call('DEBUG', 'DIGEST'));
    // The checker reads over HTTP, so through the replica: it must see what clients were told.
    const check = await checkInvariants(o.base, spec, history);
    expect(check.violations).toEqual([]);
  }, 120_000);

  test('the comparison names a key that differs (a write made on the replica alone)',
    async () => {
      await caughtUp(p, r);
      const key = o.keys.account('cash');
      await r.config('SET', 'replica-read-only', 'no');
      try {
        await r.hset(key, 'tampered', '1');
        expect(await datasetDifferences(p, r)).toEqual([`${key}: content differs`]);
        expect(await p.call('DEBUG', 'DIGEST')).not.toBe(await r.call('DEBUG', 'DIGEST'));
      } finally {
        await r.hdel(key, 'tampered');
        await r.config('SET', 'replica-read-only', 'yes');
      }
    });
});

async function allKeys(redis: Redis): Promise<string[]> {
  const names: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    names.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return names.sort();
}

/** A key's full content, read by type (streams with their metadata: last id, entries added). */
async function content(redis: Redis, key: string): Promise<unknown> {
  const type = await redis.type(key);
  if (type === 'hash') return [type, Object.entries(await redis.hgetall(key)).sort()];
  if (type === 'string') return [type, await redis.get(key)];
  if (type === 'stream') {
    return [type, await redis.xrange(key, '-', '+'), await redis.call('XINFO', 'STREAM', key)];
  }
  return [type, `<${type}: compared by digest only>`];
}

/**
 * Every difference between two datasets, one line per key: missing on one side, another type,
 * another content, or another DEBUG DIGEST-VALUE (encoding-independent, covers what `content`
 * does not read). Empty when they are the same.
 */
export async function datasetDifferences(a: Redis, b: Redis): Promise<string[]> {
  const [ka, kb] = [await allKeys(a), await allKeys(b)];
  const inB = new Set(kb);
  const inA = new Set(ka);
  const out = [...ka.filter((k) => !inB.has(k)).map((k) => `${k}: only on the first`),
    ...kb.filter((k) => !inA.has(k)).map((k) => `${k}: only on the second`)];
  for (const key of ka.filter((k) => inB.has(k))) {
    const [ca, cb] = [await content(a, key), await content(b, key)];
    if (JSON.stringify(ca) !== JSON.stringify(cb)) {
      out.push(`${key}: content differs`);
    } else if (String(await a.call('DEBUG', 'DIGEST-VALUE', key)) !==
      String(await b.call('DEBUG', 'DIGEST-VALUE', key))) {
      out.push(`${key}: digest differs`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Static: the scripts' writes depend on their keys and arguments only

const LUA_DIR = fileURLToPath(new URL('../../lua/', import.meta.url));

/**
 * What would make a script's writes depend on more than its keys and arguments: the clock,
 * randomness, the reply protocol, commands that pick at random, and `pairs()`, whose order is
 * unspecified in Lua. `pairs` over a table the script built itself, where the order cannot
 * reach a write, is allowed with a `-- deterministic: <why>` comment on its line.
 */
const NONDETERMINISTIC: Array<[RegExp, string]> = [
  [/['"]TIME['"]/i, 'TIME'],
  [/math\.random/, 'math.random'],
  [/redis\.setresp/, 'redis.setresp'],
  [/['"]SRANDMEMBER['"]/i, 'SRANDMEMBER'],
  [/['"]SPOP['"]/i, 'SPOP'],
  [/['"](H|Z)?RANDFIELD['"]|['"]ZRANDMEMBER['"]|['"]RANDOMKEY['"]/i, 'a random pick'],
  [/\bpairs\s*\(/, 'pairs( (unordered)'],
];
const JUSTIFIED = /--\s*deterministic:\s*\S/;

/** `file:line: what` for each use found; comments are not code. */
export function nondeterminism(file: string, text: string): string[] {
  const found: string[] = [];
  let inBlockComment = false;
  for (const [i, raw] of text.split('\n').entries()) {
    let line = raw;
    if (inBlockComment) {
      if (!line.includes(']]')) continue;
      line = line.slice(line.indexOf(']]') + 2);
      inBlockComment = false;
    }
    if (/^\s*--\[\[/.test(line)) {
      inBlockComment = !line.includes(']]');
      continue;
    }
    const code = line.replace(/--(?!\[\[).*$/, '');
    for (const [pattern, what] of NONDETERMINISTIC) {
      if (!pattern.test(code)) continue;
      if (what.startsWith('pairs') && JUSTIFIED.test(line)) continue;
      found.push(`${file}:${i + 1}: ${what}`);
    }
  }
  return found;
}

describe('lua/ is deterministic', () => {
  const files = readdirSync(LUA_DIR, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.lua'))
    .map((e) => join(e.parentPath, e.name));

  test('no script calls TIME, math.random, redis.setresp, SRANDMEMBER, SPOP or pairs()', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    const found = files.flatMap((f) =>
      nondeterminism(f.slice(LUA_DIR.length), readFileSync(f, 'utf8')));
    expect(found).toEqual([]);
  });

  test('the check finds each pattern in code, not in comments; justified pairs, ipairs pass',
    () => {
      const code = [
        "local t = redis.call('TIME')",
        'local r = math.random(10)',
        'redis.setresp(3)',
        "local m = redis.call('SRANDMEMBER', KEYS[1])",
        "local m = redis.call('spop', KEYS[1])",
        "local f = redis.call('HRANDFIELD', KEYS[1])",
        'for k, v in pairs(reply) do redis.call(\'SET\', k, v) end',
        'for k in pairs(seen) do n = n + 1 end -- deterministic: a count, order-free',
        'for i, v in ipairs(list) do redis.call(\'SET\', v, i) end',
        '-- TIME would be wrong here; math.random too',
        '--[[ a header that mentions pairs( and TIME',
        "and SPOP ]] local ok = 1",
      ].join('\n');
      expect(nondeterminism('x.lua', code)).toEqual([
        'x.lua:1: TIME', 'x.lua:2: math.random', 'x.lua:3: redis.setresp',
        'x.lua:4: SRANDMEMBER', 'x.lua:5: SPOP', 'x.lua:6: a random pick',
        'x.lua:7: pairs( (unordered)',
      ]);
    });
});
