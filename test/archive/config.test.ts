/**
 * The archive's settings as src/config/env.ts reads them: the defaults, and the values refused
 * at start (each names the variable), so that a typo stops the service instead of archiving
 * differently from what was asked.
 */
import { expect, test } from 'vitest';
import { loadConfig } from '../../src/config/env.js';
import { limits } from '../../src/config/limits.js';

const URL = 'postgres://ledger@127.0.0.1/archive';

test('the defaults: nothing archived; once on, the keep and the yield have theirs', () => {
  expect(loadConfig({ LEDGER_AUTH: 'off' }).archiveUrl).toBeUndefined();
  const config = loadConfig({ LEDGER_AUTH: 'off', LEDGER_ARCHIVE_URL: URL });
  expect([config.archiveUrl, config.archiveKeep, config.archiveYieldS]).toEqual([URL,
    limits.ARCHIVE_KEEP_RECORDS_DEFAULT, limits.ARCHIVE_YIELD_LAG_S_DEFAULT]);
  expect(loadConfig({ LEDGER_AUTH: 'off', LEDGER_ARCHIVE_YIELD_S: '0' }).archiveYieldS).toBe(0);
  expect(loadConfig({ LEDGER_AUTH: 'off',
    LEDGER_ARCHIVE_YIELD_S: String(limits.ARCHIVE_YIELD_LAG_S_MAX) }).archiveYieldS)
    .toBe(limits.ARCHIVE_YIELD_LAG_S_MAX);
});

test.each([
  [{ LEDGER_ARCHIVE_URL: 'mysql://x' }, 'LEDGER_ARCHIVE_URL must be a postgres://'],
  [{ LEDGER_ARCHIVE_KEEP: '0' }, 'LEDGER_ARCHIVE_KEEP must be a whole number of records'],
  [{ LEDGER_ARCHIVE_YIELD_S: '-1' }, 'LEDGER_ARCHIVE_YIELD_S must be a whole number of seconds'],
  [{ LEDGER_ARCHIVE_YIELD_S: '1.5' }, 'LEDGER_ARCHIVE_YIELD_S must be'],
  [{ LEDGER_ARCHIVE_YIELD_S: String(limits.ARCHIVE_YIELD_LAG_S_MAX + 1) },
    'LEDGER_ARCHIVE_YIELD_S must be'],
])('refused: %j', (env, message) => {
  expect(() => loadConfig({ LEDGER_AUTH: 'off', ...env })).toThrow(message);
});
