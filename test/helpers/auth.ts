/**
 * API keys for tests: every test runs with authentication on. `test` (write, metrics, admin) is
 * what fixtures send by default; the others serve the scope matrix.
 */
import { createHash } from 'node:crypto';
import { type ApiKey, parseApiKeys } from '../../src/auth/keys.js';

export const SECRETS = {
  test: 'test-secret-all-scopes-0123456789abcdef',
  reader: 'test-secret-read-only-0123456789abcdef',
  writer: 'test-secret-write-0123456789abcdef',
  metrics: 'test-secret-metrics-0123456789abcdef',
  admin: 'test-secret-admin-0123456789abcdef',
} as const;

const SCOPES: Record<keyof typeof SECRETS, string> = {
  test: 'write+metrics+admin', reader: 'read', writer: 'write', metrics: 'metrics', admin: 'admin',
};

const hex = (secret: string) => createHash('sha256').update(secret).digest('hex');

/** The LEDGER_API_KEYS value for processes started by tests. */
export const API_KEYS_ENV = Object.entries(SECRETS)
  .map(([name, secret]) => `${name}:${SCOPES[name as keyof typeof SECRETS]}:${hex(secret)}`)
  .join(',');

export const TEST_KEYS: ApiKey[] = parseApiKeys(API_KEYS_ENV);

export const bearer = (secret: string = SECRETS.test) => `Bearer ${secret}`;
export const AUTH_HEADER = { authorization: bearer() };
