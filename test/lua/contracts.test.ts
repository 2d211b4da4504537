/**
 * Tidy checks that keep the scripts contracts (STYLE.md): loadable, every returned status named
 * in the header, every write after its branch's "after this point" line, and the stored layout
 * written as src/ledger/records.ts describes it.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import {
  ACCOUNT_FIELDS, ACCOUNT_HOT_FIELDS, JOURNAL_FIELDS, REJECTION_FIELDS,
} from '../../src/ledger/records.js';
import { compileScript, LUA_DIR, loadScripts } from '../../src/ledger/scripts.js';

const WRITES = /redis\.call\('(HSET|HSETNX|HINCRBY|HDEL|SET|DEL|XADD|INCR|INCRBY|EXPIRE|ZADD)'/;
const files = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));

test('the loader accepts every script and rejects broken contracts', () => {
  expect(loadScripts().size).toBe(files.length);
  const ok = '#!lua flags=\n--[[\nKEYS[1] a\n]]\nreturn 1\n';
  expect(compileScript('xy-1.lua', ok).numberOfKeys).toBe(1);
  expect(() => compileScript('xy-2.lua', ok)).toThrow(/KEYS\[1\.\.2\]/);
  expect(() => compileScript('x.lua', ok)).toThrow(/name must be/);
  expect(() => compileScript('xy-1.lua', ok.replace('#!lua flags=\n', ''))).toThrow(/first line/);
  expect(() => compileScript('xy-1.lua', `${ok}return {{S_NOPE}}\n`)).toThrow(/placeholder/);
});

/** Include functions that write, found by reading the includes: calling one is a write. */
function writingFunctions(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of readdirSync(`${LUA_DIR}includes`)) {
    const text = readFileSync(`${LUA_DIR}includes/${file}`, 'utf8');
    for (const [, name, body] of text.matchAll(/^local function (\w+)\(.*?\n([\s\S]*?)^end$/gm)) {
      if (WRITES.test(body as string)) found.set(name as string, body as string);
    }
  }
  return found;
}
const writers = writingFunctions();
const CHECK = /\breturn\b|\berror\(|error_reply/;

/**
 * `file:line` of every write (a write command, or a call of an include function that writes)
 * that does not follow its branch's "After this point" line: the nearest such line above it
 * must exist, with no return and no error between the two (a return means the write is in
 * another branch, an error that a check can still fail after something was written).
 */
export function writesBeforeMarkers(file: string, text: string): string[] {
  const calls = new RegExp(`\\b(${[...writers.keys()].join('|')})\\(`);
  const body = text.slice(text.indexOf(']]'));
  const offset = text.slice(0, text.indexOf(']]')).split('\n').length - 1;
  const lines = body.split('\n');
  const problems: string[] = [];
  let marker = -1;
  for (const [i, line] of lines.entries()) {
    if (/After this point/.test(line)) marker = i;
    if (!WRITES.test(line) && !calls.test(line)) continue;
    const between = marker < 0 ? [] : lines.slice(marker + 1, i);
    if (marker < 0 || between.some((l) => CHECK.test(l))) {
      problems.push(`${file}:${offset + i + 1}`);
    }
  }
  return problems;
}

test('the marker check finds writes outside a marked branch', () => {
  expect(writers.has('j_commit') && writers.has('j_reject') && writers.has('a_post')).toBe(true);
  const ok = '--[[\n]]\nif x then\n  -- After this point\n  j_reject(a)\n  return 1\nend\n' +
    '-- After this point\nredis.call(\'HSET\', k, v)\n';
  expect(writesBeforeMarkers('ok.lua', ok)).toEqual([]);
  // A write between the two branches: after the first marker, but past its branch's return.
  const between = ok.replace('end\n', 'end\nredis.call(\'XADD\', k)\n');
  expect(writesBeforeMarkers('between.lua', between)).toEqual(['between.lua:8']);
  expect(writesBeforeMarkers('none.lua', '--[[\n]]\na_post(k, a)\n')).toEqual(['none.lua:3']);
  const check = '--[[\n]]\n-- After this point\nif bad then error(\'x\') end\nj_commit(a)\n';
  expect(writesBeforeMarkers('check.lua', check)).toEqual(['check.lua:5']);
});

test('include functions that write cannot fail once called (no checks in them)', () => {
  for (const [name, body] of writers) {
    expect(CHECK.test(body.replace(/\n\s*return [^\n]*\n?$/, '')), name).toBe(false);
  }
});

/** The quoted names of the fields of each XADD to `stream` in an include, in order. */
function xaddFields(include: string, stream: string): string[][] {
  const text = readFileSync(`${LUA_DIR}includes/${include}.lua`, 'utf8');
  const calls = [...text.matchAll(
    new RegExp(`redis\\.call\\('XADD', ${stream}, '0-\\*',([\\s\\S]*?)\\)\\n`, 'g'))];
  expect(calls.length, `${include}.lua: XADDs to ${stream}`).toBeGreaterThan(0);
  return calls.map((call) => [...(call[1] ?? '').matchAll(/'([a-z]+)'/g)]
    .map((m) => m[1] as string));
}

/** A record's fields up to and including `last`: what a plain transfer's record stores. */
const upTo = (fields: Record<string, string>, last: string) => {
  const all = Object.values(fields);
  return all.slice(0, all.indexOf(last) + 1);
};

test('the journal include writes records in the layout of records.ts', () => {
  // A plain transfer's record stops before KIND; every other kind writes every field.
  expect(xaddFields('journal', 'journal')).toEqual([
    upTo(JOURNAL_FIELDS, JOURNAL_FIELDS.TO_PREVIOUS), Object.values(JOURNAL_FIELDS)]);
  expect(xaddFields('journal', 'rejections')).toEqual([
    upTo(REJECTION_FIELDS, REJECTION_FIELDS.CREATED_BY), Object.values(REJECTION_FIELDS)]);
  const account = readFileSync(`${LUA_DIR}includes/account.lua`, 'utf8');
  const read = /redis\.call\('HMGET', key, ([^)]*)\)/.exec(account)?.[1] ?? '';
  expect([...read.matchAll(/'(\w+)'/g)].map((m) => m[1]))
    .toEqual(Object.values(ACCOUNT_FIELDS).slice(0, ACCOUNT_HOT_FIELDS));
  const writes = (fn: string) => {
    const call = new RegExp(`local function ${fn}[\\s\\S]*?redis\\.call\\('HSET', key, ` +
      '([\\s\\S]*?)\\)\\n').exec(account)?.[1] ?? '';
    return [...call.matchAll(/'([a-z]+)',/g)].map((m) => m[1] as string).sort();
  };
  // A new account has every field but CLOSED_AT, which only closing writes.
  const { CLOSED_AT, ...created } = ACCOUNT_FIELDS;
  expect(writes('a_create')).toEqual(Object.values(created).sort());
  const close = readFileSync(`${LUA_DIR}close-account-2.lua`, 'utf8');
  expect(close).toContain(`redis.call('HSET', KEYS[2], '${CLOSED_AT}', now)`);
  const A = ACCOUNT_FIELDS;
  expect(writes('a_post')).toEqual([A.DEBITS, A.CREDITS, A.LAST_SEQ].sort());
  expect(writes('a_post_all')).toEqual([A.DEBITS, A.CREDITS, A.LAST_SEQ, A.DEBITS_PENDING,
    A.CREDITS_PENDING].sort());
});

test('includes are inlined once each, after their own includes; a cycle is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-includes-'));
  try {
    mkdirSync(join(dir, 'includes'));
    writeFileSync(join(dir, 'includes', 'a.lua'), '--- @include b\nlocal A = B\n');
    writeFileSync(join(dir, 'includes', 'b.lua'), 'local B = 1\n');
    const head = '#!lua flags=\n--[[\nKEYS[1] k\n]]\n';
    const script = compileScript('xy-1.lua', `${head}--- @include a\n--- @include b\nreturn A\n`,
      `${dir}/`);
    expect(script.source.match(/local B = 1/g)).toHaveLength(1);
    expect(script.source.indexOf('local B = 1')).toBeLessThan(script.source.indexOf('local A'));
    writeFileSync(join(dir, 'includes', 'b.lua'), '--- @include a\nlocal B = 1\n');
    expect(() => compileScript('xy-1.lua', `${head}--- @include a\n`, `${dir}/`))
      .toThrow(/include cycle a -> b -> a/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.each(files)('%s: statuses documented, writes after the marker, read-only flagged', (file) => {
  const text = readFileSync(`${LUA_DIR}${file}`, 'utf8');
  const header = text.slice(0, text.indexOf(']]'));
  for (const [, status] of text.matchAll(/\{\{S_([A-Z_]+)\}\}/g)) {
    expect(header, `${file} header must name ${status}`).toContain(status);
  }
  if (text.startsWith('#!lua flags=no-writes')) {
    // Redis enforces no-writes too; this keeps the header honest.
    expect(writesBeforeMarkers(file, text), `${file} is flagged no-writes but writes`)
      .toEqual([]);
    expect(text).not.toMatch(WRITES);
  } else {
    expect(text, `${file} needs an "After this point" line`).toMatch(/After this point/);
    expect(writesBeforeMarkers(file, text), `${file}: writes outside a marked branch`)
      .toEqual([]);
  }
});
