/**
 * The compact form of a UUID id in the id index (src/ledger/keys.ts compactId): 20 ASCII
 * characters that stand for exactly one id (case included), read back by the audit.
 */
import { randomUUID } from 'node:crypto';
import { expect, test } from 'vitest';
import { COMPACT_ID_LENGTH, compactId, uuidOfCompact } from '../../src/ledger/keys.js';

test('20 characters below U+0080, one id each, read back exactly', () => {
  const ids = [...Array.from({ length: 2000 }, () => randomUUID()),
    ...Array.from({ length: 500 }, () => randomUUID().toUpperCase()),
    '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    // Every byte value in every position.
    ...Array.from({ length: 256 }, (_, b) => {
      const hex = Buffer.alloc(16, b).toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-` +
        hex.slice(20);
    })];
  const forms = new Set<string>();
  for (const id of ids) {
    const form = compactId(id) as string;
    expect(form.length).toBe(COMPACT_ID_LENGTH);
    // One byte each in UTF-8: what Redis stores is 20 bytes.
    expect(Buffer.byteLength(form, 'utf8')).toBe(COMPACT_ID_LENGTH);
    expect(form.charCodeAt(0)).toBe(id === id.toLowerCase() ? 0 : 1);
    expect(uuidOfCompact(form)).toBe(id);
    forms.add(form);
  }
  expect(forms.size).toBe(new Set(ids).size);
});

test('no compact form for other ids, and none read from other fields', () => {
  for (const id of ['t-1', 'a'.repeat(36), '8b0e4c3e-1f6d-4b8e-9f1a-2c3d4e5f6a7', 'Ab0e4c3e-1f6d-' +
    '4b8e-9f1a-2c3d4e5f6a7b', '8b0e4c3e1f6d4b8e9f1a2c3d4e5f6a7b']) {
    expect(compactId(id), id).toBeUndefined();
  }
  expect(uuidOfCompact('t-1')).toBeUndefined();
  expect(uuidOfCompact(`\u0002${'a'.repeat(19)}`)).toBeUndefined();
  expect(uuidOfCompact(`\u0000${'a'.repeat(18)}\u00e9`)).toBeUndefined();
});
