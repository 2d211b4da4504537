/**
 * API keys: `LEDGER_API_KEYS` holds `name:scope+scope:sha256hex` entries, comma-separated; the
 * hex is the SHA-256 of the secret, so the configuration never holds a secret. An entry may end
 * with `:ledgers=a|b`: the key reaches only those ledgers (the default one included only if
 * named). Callers send `Authorization: Bearer <secret>`. No Fastify here.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { limits } from '../config/limits.js';

export const SCOPES = ['read', 'write', 'metrics', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  /** Recorded as `createdBy` on what the key creates; never a secret. */
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  readonly sha256: Buffer;
  /** The only ledgers it reaches; undefined: every ledger. */
  readonly ledgers?: ReadonlySet<string>;
}

const NAME = new RegExp(`^[A-Za-z0-9_.-]{1,${limits.KEY_NAME_LENGTH_MAX}}$`);
const HEX = /^[0-9a-f]{64}$/;
/** A ledger name as LEDGER_NAME may spell it (a superset of the names POST /ledgers takes). */
const LEDGER = new RegExp(`^[A-Za-z0-9_.-]{1,${limits.LEDGER_NAME_LENGTH_MAX}}$`);

function parseLedgers(text: string | undefined, where: string): Set<string> | undefined {
  if (text === undefined) return undefined;
  const names = text.startsWith('ledgers=') ? text.slice('ledgers='.length).split('|') : [];
  if (names.length === 0 || names.some((n) => !LEDGER.test(n))) {
    throw new Error(`${where}: the suffix must be ledgers=name|name (ledger names)`);
  }
  return new Set(names);
}

export function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function parseApiKeys(spec: string): ApiKey[] {
  const keys: ApiKey[] = [];
  for (const [i, entry] of spec.split(',').map((e) => e.trim()).filter(Boolean).entries()) {
    const [name, scopeList, hex, suffix, extra] = entry.split(':');
    const where = `LEDGER_API_KEYS entry ${i + 1}`;
    if (extra !== undefined || name === undefined || scopeList === undefined
      || hex === undefined) {
      throw new Error(`${where}: expected name:scope+scope:sha256hex[:ledgers=a|b]`);
    }
    const ledgers = parseLedgers(suffix, where);
    if (!NAME.test(name)) {
      const max = limits.KEY_NAME_LENGTH_MAX;
      throw new Error(`${where}: name must be 1-${max} of A-Z a-z 0-9 _ - .`);
    }
    const scopes = scopeList.split('+');
    for (const scope of scopes) {
      if (!(SCOPES as readonly string[]).includes(scope)) {
        throw new Error(`${where}: unknown scope "${scope}" (${SCOPES.join(', ')})`);
      }
    }
    if (!HEX.test(hex)) throw new Error(`${where}: the hash must be 64 lower-case hex digits`);
    if (keys.some((k) => k.name === name)) throw new Error(`${where}: duplicate name ${name}`);
    keys.push({ name, scopes: new Set(scopes as Scope[]), sha256: Buffer.from(hex, 'hex'),
      ...(ledgers === undefined ? {} : { ledgers }) });
  }
  if (keys.some((k, i) => keys.findIndex((o) => o.sha256.equals(k.sha256)) !== i)) {
    throw new Error('LEDGER_API_KEYS: two entries share one secret');
  }
  return keys;
}

/**
 * The key whose secret this is. Every key is compared, each in constant time over equal-length
 * digests, so timing tells neither which key nor how much of one matched.
 */
export function authenticate(keys: readonly ApiKey[], secret: string): ApiKey | undefined {
  const digest = sha256(secret);
  let found: ApiKey | undefined;
  for (const key of keys) {
    if (timingSafeEqual(key.sha256, digest) && found === undefined) found = key;
  }
  return found;
}

/** `write` implies `read`; nothing else implies anything. */
export function allows(key: ApiKey, scope: Scope): boolean {
  return key.scopes.has(scope) || (scope === 'read' && key.scopes.has('write'));
}

/** Whether the key reaches the ledger called `ledger`. */
export function reaches(key: { ledgers?: ReadonlySet<string> | undefined }, ledger: string):
  boolean {
  return key.ledgers === undefined || key.ledgers.has(ledger);
}

/** A new random secret: 32 bytes, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}
