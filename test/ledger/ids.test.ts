/** Generated account ids: a UUID v7 from the uuid package, its time the ledger's clock. */
import { expect, test } from 'vitest';
import { uuidv7 } from '../../src/ledger/ids.js';

test('a UUID v7 carrying the given time, with random bits that differ', () => {
  const nowMs = Date.UTC(2026, 11, 6, 9, 30);
  const ids = Array.from({ length: 100 }, () => uuidv7(nowMs));
  for (const id of ids) {
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(nowMs);
  }
  expect(new Set(ids).size).toBe(ids.length);
  // Sorting by id sorts by creation time, across milliseconds.
  expect(uuidv7(nowMs) < uuidv7(nowMs + 1)).toBe(true);
});
