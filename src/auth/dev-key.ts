/**
 * Secure by default, easy locally: with the embedded Redis and no LEDGER_API_KEYS, the service
 * makes one random development key, keeps it under the data dir (0600) and prints it once.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ApiKey, newSecret, type Scope, sha256 } from './keys.js';

export const DEV_KEY_FILE = 'dev-api-key';
const DEV_KEY_NAME = 'dev';
const DEV_KEY_SCOPES: Scope[] = ['write', 'metrics', 'admin'];

export interface DevKey {
  key: ApiKey;
  path: string;
  /** The secret, only when it was created now (so it is printed once). */
  created?: string;
}

export function devKey(dataDir: string): DevKey {
  const path = join(dataDir, DEV_KEY_FILE);
  let secret: string;
  let created: string | undefined;
  if (existsSync(path)) {
    secret = readFileSync(path, 'utf8').trim();
  } else {
    mkdirSync(dataDir, { recursive: true });
    secret = newSecret();
    created = secret;
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  }
  const key = { name: DEV_KEY_NAME, scopes: new Set(DEV_KEY_SCOPES), sha256: sha256(secret) };
  return { key, path, ...(created === undefined ? {} : { created }) };
}
