/**
 * The README and docs/: the limits and configuration tables of docs/configuration.md are
 * generated (`npm run docs`) from src/config/limits.ts and CONFIG_DOC in src/config/env.ts, and
 * fail here when they drift; every relative link and every repository path they cite exists;
 * nothing sends a reader outside the repository; the README stays a five-minute read that leads
 * to every page of docs/. (The walk-through is run by test/walkthrough.test.ts.)
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { CONFIG_DOC } from '../src/config/env.js';
import { limits } from '../src/config/limits.js';
import {
  configTable, LIMIT_DOCS, limitsTable, readSection, TABLES_FILE, writeSection,
} from '../scripts/readme-tables.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const tables = read(TABLES_FILE);
const STALE = `${TABLES_FILE} is out of date: run \`npm run docs\` and commit it`;

/** The README and every page of docs/, by path from the repository root. */
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs'))
  .filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];

/** 200 words a minute for five minutes: the README is the page a newcomer reads whole. */
const README_WORDS_MAX = 1000;

describe('limits table', () => {
  test('is the one generated from src/config/limits.ts', () => {
    expect(readSection(tables, 'limits'), STALE).toBe(limitsTable());
  });

  test('has a row with the value of every limit', () => {
    const table = readSection(tables, 'limits');
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

describe('configuration table', () => {
  test('is the one generated from CONFIG_DOC', () => {
    expect(readSection(tables, 'config'), STALE).toBe(configTable());
  });

  test('CONFIG_DOC names every variable loadConfig reads', () => {
    const source = read('src/config/env.ts');
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

/** The text outside fenced code blocks (a `# comment` in a shell block is not a heading). */
const prose = (text: string) => text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of prose(text).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** `page: target` for each relative link of `page` whose file or anchor does not exist. */
function brokenLinks(page: string, text: string,
  readPage: (path: string) => string | undefined): string[] {
  const broken: string[] = [];
  for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target as string)) continue; // https:, mailto:
    const [path = '', anchor] = (target as string).split('#');
    const file = path === '' ? page : join(dirname(page), path);
    const linked = path === '' ? text : readPage(file);
    if (linked === undefined) {
      broken.push(`${page}: ${target} (no file ${file})`);
    } else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(linked).has(anchor)) {
      broken.push(`${page}: ${target} (no heading #${anchor} in ${file})`);
    }
  }
  return broken;
}

/** A file's text ('' for a directory); undefined when missing or outside the repository. */
const readIfExists = (path: string) => {
  const full = join(ROOT, path);
  if (!existsSync(full) || relative(ROOT, full).startsWith('..')) return undefined;
  return statSync(full).isDirectory() ? '' : read(path);
};

describe('README and docs/', () => {
  test('finds the pages it checks', () => {
    expect(PAGES).toContain('README.md');
    expect(PAGES).toContain(TABLES_FILE);
    expect(PAGES).toContain('docs/guarantees.md');
  });

  test('every relative link leads to a file of the repository, and to a heading there', () => {
    expect(PAGES.flatMap((page) => brokenLinks(page, read(page), readIfExists))).toEqual([]);
  });

  test('the link check finds a missing file and a missing heading', () => {
    const pages: Record<string, string> = { 'docs/b.md': '# B\n\n## Two words\n' };
    const text = '[x](b.md) [y](b.md#two-words) [z](c.md) [w](b.md#three) [v](#here)\n' +
      '```sh\n# not a heading\n[u](gone.md)\n```\n# Here\n[h](https://example.com/a.md)';
    expect(brokenLinks('docs/a.md', text, (path) => pages[path])).toEqual([
      'docs/a.md: c.md (no file docs/c.md)',
      'docs/a.md: b.md#three (no heading #three in docs/b.md)',
    ]);
    expect(slug('Batches: `POST /transfers/batch`')).toBe('batches-post-transfersbatch');
  });

  test('every repository path they cite exists', () => {
    const cited = /`((?:src|lua|test|bench|scripts|deploy|openapi|docs|clients)\/[^`\s*]*)`/g;
    const missing = PAGES.flatMap((page) => [...read(page).matchAll(cited)]
      .map((m) => m[1] as string).filter((path) => !existsSync(join(ROOT, path)))
      .map((path) => `${page}: ${path}`));
    expect(missing).toEqual([]);
  });

  test('nothing sends a reader outside the repository', () => {
    // Built, so that this file does not name what it looks for.
    const outside = new RegExp(`\\b${'API'}\\.md\\b|\\.\\./shared/`);
    const problems = PAGES.flatMap((page) => read(page).split('\n')
      .flatMap((line, i) => (outside.test(line) ? [`${page}:${i + 1}`] : [])));
    expect(problems).toEqual([]);
  });

  test(`the README is a five-minute read (≤ ${README_WORDS_MAX} words) linking every page`,
    () => {
      const readme = read('README.md');
      const words = readme.split(/\s+/).filter((w) => w !== '').length;
      expect(words, 'move detail into docs/ and link it').toBeLessThanOrEqual(README_WORDS_MAX);
      for (const page of PAGES.filter((p) => p !== 'README.md')) {
        expect(readme, `README links ${page}`).toContain(`](${page})`);
      }
    });

  test("the README's guarantees section says what an acknowledged transfer survives", () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('\n## Guarantees\n'));
    const body = section.slice(0, section.indexOf('\n## ', 1));
    for (const setting of ['LEDGER_APPENDFSYNC=always', 'LEDGER_APPENDFSYNC=everysec',
      'REDIS_URL']) {
      expect(body, setting).toContain(setting);
    }
    expect(body).toContain('](docs/guarantees.md)');
  });
});
