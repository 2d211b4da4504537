/**
 * The README's limits and configuration tables are generated (`npm run docs`) from
 * src/config/limits.ts and CONFIG_DOC in src/config/env.ts; these tests fail when they drift.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { CONFIG_DOC } from '../src/config/env.js';
import { limits } from '../src/config/limits.js';
import {
  configTable, LIMIT_DOCS, limitsTable, readSection, writeSection,
} from '../scripts/readme-tables.js';

const read = (path: string) => readFileSync(fileURLToPath(new URL(path, import.meta.url)), 'utf8');
const readme = read('../README.md');
const STALE = 'README.md is out of date: run `npm run docs` and commit it';

describe('README limits table', () => {
  test('is the one generated from src/config/limits.ts', () => {
    expect(readSection(readme, 'limits'), STALE).toBe(limitsTable());
  });

  test('has a row with the value of every limit', () => {
    const table = readSection(readme, 'limits');
    for (const [name, value] of Object.entries(limits)) {
      expect(table, name).toContain(`| \`${name}\` | \`${value}\` |`);
    }
  });

  test('generation fails for a limit without a description, and follows a changed value', () => {
    expect(() => limitsTable({ ...limits, NEW_LIMIT_MAX: 1 })).toThrow(/add NEW_LIMIT_MAX/);
    expect(() => limitsTable(limits, { ...LIMIT_DOCS, GONE_MAX: 'x' })).toThrow(/remove GONE_MAX/);
    expect(limitsTable({ ...limits, ID_LENGTH_MAX: 129 })).not.toBe(limitsTable());
  });
});

describe('README configuration table', () => {
  test('is the one generated from CONFIG_DOC', () => {
    expect(readSection(readme, 'config'), STALE).toBe(configTable());
  });

  test('CONFIG_DOC names every variable loadConfig reads', () => {
    const source = read('../src/config/env.ts');
    const read_ = new Set([...source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]));
    expect(read_.size).toBeGreaterThan(0);
    expect(CONFIG_DOC.map(([name]) => name).sort()).toEqual([...read_].sort());
  });
});

test('writeSection replaces only the text between the markers', () => {
  const text = 'a\n<!-- config:start -->\nold\n<!-- config:end -->\nb\n';
  expect(writeSection(text, 'config', 'new'))
    .toBe('a\n<!-- config:start -->\nnew\n<!-- config:end -->\nb\n');
  expect(() => readSection('no markers', 'limits')).toThrow(/limits:start/);
});
