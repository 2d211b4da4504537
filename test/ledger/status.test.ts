/**
 * Script status codes are stored in recorded rejections, so they are part of the data format:
 * each is unique, never changes, and a retired one is never given out again. The list below is
 * the record of every code ever assigned; a new status adds its line here, a retired one moves
 * to RETIRED_STATUS_CODES in src/ledger/status.ts and keeps its line here.
 */
import { expect, test } from 'vitest';
import { OUTCOMES } from '../../src/http/outcomes.js';
import {
  isRejection, REJECTION_REASONS, RETIRED_STATUS_CODES, STATUSES, statusCode, statusName,
} from '../../src/ledger/status.js';

/** Every code ever assigned, by the name it had. Append only. */
const ASSIGNED: Readonly<Record<string, number>> = {
  OK: 0,
  FORMAT_UNSUPPORTED: 1,
  INVALID_ARGUMENT: 2,
  EXISTS: 3,
  ACCOUNT_NOT_FOUND: 4,
  CURRENCY_MISMATCH: 5,
  INSUFFICIENT_FUNDS: 6,
  BALANCE_OVERFLOW: 7,
  ACCOUNT_CLOSED: 8,
  PENDING_TRANSFER_NOT_FOUND: 9,
  PENDING_TRANSFER_NOT_PENDING: 10,
  PENDING_TRANSFER_ALREADY_POSTED: 11,
  PENDING_TRANSFER_ALREADY_VOIDED: 12,
  PENDING_TRANSFER_EXPIRED: 13,
  EXCEEDS_PENDING_AMOUNT: 14,
  TRANSFER_NOT_FOUND: 15,
  NOT_REVERSIBLE: 16,
  EXCEEDS_REVERSIBLE_AMOUNT: 17,
  STALE_KEYS: 18,
  ARCHIVED: 19,
};

test('codes are unique', () => {
  const codes = Object.values(STATUSES).map((s) => s.code);
  expect(new Set(codes).size).toBe(codes.length);
});

test('a status keeps the code it was given; a new one is recorded in the list', () => {
  for (const [name, { code }] of Object.entries(STATUSES)) {
    expect(ASSIGNED[name], `${name} is not in the list of assigned codes`).toBeDefined();
    expect(code, `${name} changed its code`).toBe(ASSIGNED[name]);
  }
});

test('a retired code is never reused, and every retired code was assigned', () => {
  const live = new Set<number>(Object.values(STATUSES).map((s) => s.code));
  const assigned = new Set(Object.values(ASSIGNED));
  for (const code of RETIRED_STATUS_CODES) {
    expect(live.has(code), `retired code ${code} is in use again`).toBe(false);
    expect(assigned.has(code), `retired code ${code} was never assigned`).toBe(true);
  }
  // Every assigned code is either live or retired: none disappears unrecorded.
  for (const [name, code] of Object.entries(ASSIGNED)) {
    expect(live.has(code) || RETIRED_STATUS_CODES.includes(code), `${name} (${code}) vanished`)
      .toBe(true);
  }
});

test('names and codes map both ways; an unknown code is refused', () => {
  for (const name of Object.keys(STATUSES) as Array<keyof typeof STATUSES>) {
    expect(statusName(statusCode[name])).toBe(name);
  }
  expect(() => statusName(99)).toThrow(/unknown script status 99/);
});

test('every rejection is a recorded 422 in the outcome table', () => {
  expect(REJECTION_REASONS.length).toBeGreaterThan(0);
  for (const reason of REJECTION_REASONS) {
    expect(isRejection(reason)).toBe(true);
    expect(OUTCOMES[reason]).toMatchObject({ status: 422, recorded: true });
  }
  const recorded = Object.entries(OUTCOMES).filter(([, o]) => o.recorded).map(([k]) => k);
  expect(recorded.sort()).toEqual([...REJECTION_REASONS].sort());
});
