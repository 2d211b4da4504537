/**
 * The Lua money include (lua/includes/u128.lua), run inside the real Redis through a test-only
 * script compiled by the production loader (so `--- @include` and `{{...}}` work as in prod).
 * BigInt is the oracle: tables at the edges first, then a property test over thousands of pairs.
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { AMOUNT_MAX } from '../../src/config/limits.js';
import { compileScript, LUA_DIR, runScript, type Script } from '../../src/ledger/scripts.js';
import { createRedis } from '../../src/redis/client.js';

const CALC_LUA = `#!lua flags=no-writes
--[[
calc: test-only dispatcher over the u128 include (test/lua/u128.test.ts); it takes no keys.

ARGV[1]   op: add | sub | diff | cmp | valid
ARGV[2..] operands: pairs (a, b) for add/sub/diff/cmp; single values for valid

Returns one string per pair or value: the result; cmp gives -1/0/1, valid gives 1/0.
]]

--- @include u128

local op, out = ARGV[1], {}
if op == 'valid' then
  for i = 2, #ARGV do
    if u_valid(ARGV[i]) then out[#out + 1] = '1' else out[#out + 1] = '0' end
  end
  return out
end
local f
if op == 'add' then f = u_add
elseif op == 'sub' then f = u_sub
elseif op == 'diff' then f = s_diff
elseif op == 'cmp' then f = function(a, b) return tostring(u_cmp(a, b)) end
else return redis.error_reply('ERR unknown op ' .. tostring(op)) end
for i = 2, #ARGV - 1, 2 do out[#out + 1] = f(ARGV[i], ARGV[i + 1]) end
return out
`;

type Op = 'add' | 'sub' | 'diff' | 'cmp';
type Pair = readonly [bigint, bigint];

const P = (e: bigint) => 2n ** e;
const T = (e: bigint) => 10n ** e;

/** The edges the brief names, plus the limb (14-digit) and fast-path (15-digit) boundaries. */
const EDGES: readonly bigint[] = [...new Set([
  0n, 1n, 2n, 9n, 10n,
  P(53n) - 1n, P(53n), P(53n) + 1n,
  T(14n) - 1n, T(14n), T(14n) + 1n,
  T(15n) - 1n, T(15n), T(15n) + 1n,
  T(16n) - 1n, T(16n),
  T(28n) - 1n, T(28n), T(28n) + 1n,
  T(38n), T(39n) - 1n, T(42n) - 1n, T(42n),
  P(63n) - 1n, P(63n), P(63n) + 1n, P(64n) - 1n, P(64n),
  P(127n), AMOUNT_MAX - 1n, AMOUNT_MAX, AMOUNT_MAX + 1n,
])];

let redis: Redis;
let calc: Script;

beforeAll(async () => {
  redis = createRedis(inject('redisUrl'));
  redis.on('error', () => {});
  await redis.connect();
  calc = compileScript('calc-0.lua', CALC_LUA, LUA_DIR);
});
afterAll(() => redis.disconnect());

async function run(op: string, args: readonly string[]): Promise<string[]> {
  const reply = await runScript(redis, calc, [], [op, ...args]);
  if (!Array.isArray(reply) || !reply.every((r) => typeof r === 'string')) {
    throw new Error(`calc ${op}: unexpected reply ${JSON.stringify(reply)}`);
  }
  return reply as string[];
}

function oracle(op: Op, a: bigint, b: bigint): string {
  switch (op) {
    case 'add': return (a + b).toString();
    case 'sub': return (a - b).toString(); // only called with a >= b
    case 'diff': return (a - b).toString();
    case 'cmp': return a < b ? '-1' : a > b ? '1' : '0';
  }
}

/** One EVAL for all pairs; results are labelled so a failure names its operands. */
async function check(op: Op, pairs: readonly Pair[]): Promise<void> {
  const got = await run(op, pairs.flatMap(([a, b]) => [a.toString(), b.toString()]));
  expect(got).toHaveLength(pairs.length);
  const label = ([a, b]: Pair, value: string | undefined) => `${op}(${a}, ${b}) = ${value}`;
  expect(pairs.map((p, i) => label(p, got[i])))
    .toEqual(pairs.map((p) => label(p, oracle(op, ...p))));
}

const ordered = (pairs: readonly Pair[]): Pair[] =>
  pairs.map(([a, b]) => (a >= b ? [a, b] : [b, a]));
const allPairs = (values: readonly bigint[]): Pair[] =>
  values.flatMap((a) => values.map((b) => [a, b] as const));

describe('u128 at the edges', () => {
  test('literal results at 2^128', async () => {
    expect(await run('add', [AMOUNT_MAX.toString(), '1']))
      .toEqual(['340282366920938463463374607431768211456']);
    expect(await run('sub', [(AMOUNT_MAX + 1n).toString(), '1'])).toEqual([AMOUNT_MAX.toString()]);
    expect(await run('diff', ['0', AMOUNT_MAX.toString()])).toEqual([`-${AMOUNT_MAX}`]);
    expect(await run('add', ['0', '0'])).toEqual(['0']);
    expect(await run('diff', ['5', '5'])).toEqual(['0']);
    expect(await run('cmp', [AMOUNT_MAX.toString(), (AMOUNT_MAX + 1n).toString()])).toEqual(['-1']);
  });

  test.each(['add', 'diff', 'cmp'] as const)('%s: every pair of edge values', async (op) => {
    await check(op, allPairs(EDGES));
  });

  test('sub: every ordered pair of edge values', async () => {
    await check('sub', ordered(allPairs(EDGES)));
  });

  test('carries and borrows across every limb boundary and the 15-digit fast path', async () => {
    const pairs: Pair[] = [
      [T(15n) - 1n, 1n], [T(15n) - 1n, T(15n) - 1n], [T(15n) - 1n, T(15n)], [T(15n), T(15n) - 1n],
      [T(14n) - 1n, T(14n) - 1n], [T(16n) - 1n, 1n],
    ];
    for (let k = 1n; k <= 3n; k++) {
      const boundary = T(14n * k);
      pairs.push(
        [boundary - 1n, 1n], // carry out of limb k into a new limb
        [boundary - 1n, boundary - 1n],
        [boundary - T(14n * (k - 1n)), T(14n * (k - 1n))], // carry out of one limb only
        [T(56n) - 1n, boundary], // carry ripples through the limbs above
        [boundary + 1n, 2n], // borrow across the limb boundary (sub/diff)
        [boundary, boundary - 1n],
        [boundary * 2n, boundary + 1n],
        [boundary + T(14n * k - 1n), T(14n * k - 1n)],
      );
    }
    // A value with a zero limb in the middle, and one that is 14 nines in every limb.
    pairs.push([T(28n) + 1n, 2n], [(T(42n) - 1n) / (T(14n) - 1n) * (T(14n) - 1n), 1n]);
    for (const op of ['add', 'diff', 'cmp'] as const) await check(op, pairs);
    await check('sub', ordered(pairs));
  });

  const VALID = ['0', '1', '9', '10', P(53n).toString(), T(14n).toString(), T(15n).toString(),
    (P(64n) + 1n).toString(), T(38n).toString(), (AMOUNT_MAX - 1n).toString(),
    AMOUNT_MAX.toString()];
  const INVALID = ['', '00', '01', '007', `0${AMOUNT_MAX}`, '-1', '-0', '+1', ' 1', '1 ', '\n1',
    '1\n',
    '1\u0000', '1.0', '1.', '1e3', '0x1F', 'abc', 'one', '\uff11', '\u0661', '1_000',
    (AMOUNT_MAX + 1n).toString(), (AMOUNT_MAX + 2n).toString(), '9'.repeat(39), T(39n).toString(),
    '9'.repeat(400), `${AMOUNT_MAX}0`];

  test.each([
    ...VALID.map((s) => [s, true] as const),
    ...INVALID.map((s) => [s, false] as const),
  ])('valid(%j) is %s', async (input, expected) => {
    expect(await run('valid', [input])).toEqual([expected ? '1' : '0']);
  });
});

// Bigints biased to the edges: around powers of 10 (limbs) and 2, the edge table, and uniform.
const nearPower = (base: bigint, maxExp: number) =>
  fc.tuple(fc.integer({ min: 0, max: maxExp }), fc.bigInt({ min: -3n, max: 3n }))
    .map(([e, d]) => { const v = base ** BigInt(e) + d; return v < 0n ? 0n : v; });
const u = fc.oneof(
  { arbitrary: fc.bigInt({ min: 0n, max: 2n ** 130n }), weight: 4 },
  { arbitrary: fc.bigInt({ min: 0n, max: 2n * T(15n) }), weight: 2 },
  { arbitrary: fc.constantFrom(...EDGES), weight: 2 },
  { arbitrary: nearPower(10n, 42), weight: 2 },
  { arbitrary: nearPower(10n ** 14n, 3), weight: 1 },
  { arbitrary: nearPower(2n, 130), weight: 1 },
  // Nines in some limbs and zeros in others: carries and borrows that ripple.
  {
    arbitrary: fc.array(fc.constantFrom(0n, 1n, T(14n) - 1n, T(14n) - 2n),
      { minLength: 1, maxLength: 3 })
      .map((limbs) => limbs.reduce((acc, limb) => acc * T(14n) + limb, 0n)),
    weight: 2,
  },
);

const PAIRS_PER_EVAL = 200;
const PROPERTY_RUNS = 50; // 50 × 200 = 10000 pairs, each through all four operations

describe('u128 agrees with BigInt', () => {
  test(`add/sub/diff/cmp on ${PROPERTY_RUNS * PAIRS_PER_EVAL} pairs`, async () => {
    const size = { minLength: PAIRS_PER_EVAL, maxLength: PAIRS_PER_EVAL };
    const batch = fc.array(fc.tuple(u, u), size);
    await fc.assert(fc.asyncProperty(batch, async (pairs) => {
      for (const op of ['add', 'diff', 'cmp'] as const) await check(op, pairs);
      await check('sub', ordered(pairs));
    }), { numRuns: PROPERTY_RUNS });
  });

  test('valid agrees with the canonical pattern and the 2^128-1 bound', async () => {
    const text = fc.oneof(
      u.map(String),
      u.map((v) => `0${v}`),
      fc.string({ unit: fc.constantFrom(...'0123456789-+ .e\n'), maxLength: 42 }),
      fc.string({ maxLength: 8 }),
    );
    const oracleValid = (s: string) => /^(0|[1-9][0-9]*)$/.test(s) && BigInt(s) <= AMOUNT_MAX;
    const batch = fc.array(text, { minLength: PAIRS_PER_EVAL, maxLength: PAIRS_PER_EVAL });
    await fc.assert(fc.asyncProperty(batch, async (values) => {
      const got = await run('valid', values);
      expect(values.map((v, i) => `${JSON.stringify(v)}: ${got[i]}`))
        .toEqual(values.map((v) => `${JSON.stringify(v)}: ${oracleValid(v) ? '1' : '0'}`));
    }), { numRuns: 10 });
  });
});
