/**
 * The tidy test (STYLE.md rule 11, after TigerBeetle's): lines of the service's own code, its
 * tests and its benchmark are at most 100 columns, and no FIXME or XXX is left behind in them.
 * Problems are reported as file:line.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const LINE_COLUMNS_MAX = 100;
const MARKER = /\b(FIXME|XXX)\b/;

/** Files under `dir` (relative to the repo root) whose names end with one of `extensions`. */
function filesIn(dir: string, extensions: string[], recursive: boolean): string[] {
  return readdirSync(join(ROOT, dir), { recursive, withFileTypes: true })
    .filter((entry) => entry.isFile() && extensions.some((ext) => entry.name.endsWith(ext)))
    .map((entry) => join(entry.parentPath, entry.name).slice(ROOT.length))
    .sort();
}

/** `file:line` problems of one file's text. */
function tidyProblems(file: string, text: string): string[] {
  const problems: string[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    const columns = [...line].length; // code points, not UTF-16 units
    if (columns > LINE_COLUMNS_MAX) {
      problems.push(`${file}:${i + 1}: ${columns} columns (at most ${LINE_COLUMNS_MAX})`);
    }
    const marker = MARKER.exec(line);
    if (marker) problems.push(`${file}:${i + 1}: ${marker[1]}`);
  }
  return problems;
}

const files = [
  ...filesIn('src', ['.ts'], true),
  ...filesIn('lua', ['.lua'], true),
  ...filesIn('scripts', ['.ts', '.mjs'], false),
  ...filesIn('test', ['.ts'], true),
  ...filesIn('bench', ['.ts'], true),
];

test('finds the files it checks', () => {
  expect(files).toContain('src/server.ts');
  expect(files).toContain('lua/includes/u128.lua');
  expect(files).toContain('scripts/setup.mjs');
  expect(files).toContain('test/tidy.test.ts');
  expect(files).toContain('bench/run.ts');
});

test('reports long lines and markers by file:line', () => {
  const long = 'x'.repeat(LINE_COLUMNS_MAX);
  expect(tidyProblems('a.ts', `${long}\n${long}y\n${'–'.repeat(LINE_COLUMNS_MAX)}`)).toEqual([
    `a.ts:2: ${LINE_COLUMNS_MAX + 1} columns (at most ${LINE_COLUMNS_MAX})`,
  ]);
  expect(tidyProblems('b.lua', 'ok\n-- FIXME later\n-- XXX: why')).toEqual([
    'b.lua:2: FIXME',
    'b.lua:3: XXX',
  ]);
  expect(tidyProblems('c.ts', 'const fixmeLater = XXXL;')).toEqual([]);
});

test('src, lua, scripts, test and bench: lines ≤ 100 columns, no FIXME or XXX', () => {
  // This file names the markers it looks for: only its lines' length is checked.
  const problems = files.flatMap((file) =>
    tidyProblems(file, readFileSync(join(ROOT, file), 'utf8'))
      .filter((p) => !p.startsWith('test/tidy.test.ts:') || p.includes('columns')));
  expect(problems).toEqual([]);
});

test('comments cite files that exist, and nothing outside the repository', () => {
  const cited =
    /\b((?:src|lua|test|bench|scripts|deploy|openapi)\/[\w./-]+\.(?:ts|lua|mjs|json|yml))\b/g;
  const outside = new RegExp(`\\b${'API'}\\.md\\b|\\.\\./shared/`);
  const problems: string[] = [];
  for (const file of files) {
    for (const [i, line] of readFileSync(join(ROOT, file), 'utf8').split('\n').entries()) {
      // A user's clone has only this repository: no comment may send a reader outside it.
      if (outside.test(line)) problems.push(`${file}:${i + 1}: cites a file outside`);
      for (const [, path] of line.matchAll(cited)) {
        if (!existsSync(join(ROOT, path as string))) problems.push(`${file}:${i + 1}: ${path}`);
      }
    }
  }
  expect(problems).toEqual([]);
});
