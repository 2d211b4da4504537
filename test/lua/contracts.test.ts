/**
 * Tidy checks that keep the scripts contracts (STYLE.md): loadable, every returned status named
 * in the header, no write before the "after this point" line, one hash tag per script's keys.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
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

test.each(files)('%s: statuses documented, writes after the marker, read-only flagged', (file) => {
  const text = readFileSync(`${LUA_DIR}${file}`, 'utf8');
  const header = text.slice(0, text.indexOf(']]'));
  for (const [, status] of text.matchAll(/\{\{S_([A-Z_]+)\}\}/g)) {
    expect(header, `${file} header must name ${status}`).toContain(status);
  }
  const lines = text.split('\n');
  const marker = lines.findIndex((l) => /After this point/.test(l));
  const firstWrite = lines.findIndex((l) => WRITES.test(l));
  if (text.startsWith('#!lua flags=no-writes')) {
    // Redis enforces no-writes too; this keeps the header honest.
    expect(firstWrite, `${file} is flagged no-writes but writes`).toBe(-1);
  } else {
    expect(marker, `${file} needs an "After this point" line`).toBeGreaterThan(0);
    expect(firstWrite, `${file}: a write before the marker`).toBeGreaterThan(marker);
  }
  for (const [i, line] of lines.entries()) {
    expect(line.length, `${file}:${i + 1} is longer than 100 columns`).toBeLessThanOrEqual(100);
  }
});
