/**
 * The one module that builds Redis key names. Every key of one ledger shares the hash tag
 * `{<ledger>}`, so all keys a script touches live in one Redis Cluster slot.
 *
 *   <prefix>:{<ledger>}:meta            hash   fmt (data-format version), an (last account number),
 *                                              ln lm lc (the ledger's name, metadata, createdAt:
 *                                              lua/create-ledger-1.lua), w (replica-acks.ts)
 *   <prefix>:{<ledger>}:a:<accountId>   hash   one account (lua/create-account-3.lua lists fields)
 *   <prefix>:{<ledger>}:n               hash   account number -> account id
 *   <prefix>:{<ledger>}:j               stream the journal: one entry per committed transfer,
 *                                              stream id `0-<seq>`, fields in a fixed order
 *                                              (i f t a k m w b fb tb pf pt, see transfer-9.lua)
 *   <prefix>:{<ledger>}:r               stream rejected transfers, stream id `0-<n>`
 *                                              (i s f t a c k m w b)
 *   <prefix>:{<ledger>}:x:<bucket>      hash   transfer id -> `<seq>` (committed) or `-<n>`
 *                                              (rejected), for the ids that hash to this bucket;
 *                                              once archived and freed (src/archive/), the id
 *                                              -> '' (a UUID id in its compact form,
 *                                              compactId below): decided, and in PostgreSQL
 *   <prefix>:{<ledger>}:s               hash   seq -> a hold's state, or the total reversed from
 *                                              a transfer or post (lua/includes/holds.lua)
 *   <prefix>:{<ledger>}:h               zset   seq of each open hold with a timeout, by expiry
 *   <prefix>:{<ledger>}:hs              hash   open holds per currency: n:<cur> count,
 *                                              a:<cur> amount
 *   <prefix>:{<ledger>}:lock:<name>     string the token of a lock's holder (lua/lock-1.lua)
 *   <prefix>:{<ledger>}:p               hash   follower name (`cdc`) -> the seq it has handed
 *                                              on up to (lua/follow-5.lua); the archive's
 *                                              positions (`archive`, `archive:*`,
 *                                              lua/archive-7.lua)
 *   <prefix>:{<ledger>}:k               zset   seqs of open holds kept in Redis when the
 *                                              records around them were archived and freed
 *
 *   <prefix>:ledgers                    zset   every ledger's name (score 0, so in name order):
 *                                              only listing reads it, never a transfer
 *
 * Why this shape (measured in bench/, figures in docs/performance.md): a key costs ~57 bytes
 * before its value, so a transfer gets none of its own. Its record is one journal entry (a
 * stream stores entries with the same field names compactly, and integers as integers), accounts
 * appear in it by number, and an account's entries are the chain of journal records linked by
 * the previous seq of each side (pf, pt), starting at the account's `lseq`. The id index is
 * split into small hashes that Redis keeps listpack-encoded (a few bytes per field).
 */
import { limits } from '../config/limits.js';

const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Names of the ledgers `POST /ledgers` creates (the contract). LEDGER_NAME, the default ledger,
 * may also use capitals and dots (NAME_PATTERN), as before ledgers existed.
 */
export const LEDGER_NAME_PATTERN = new RegExp(`^[a-z0-9_-]{1,${limits.LEDGER_NAME_LENGTH_MAX}}$`);

/** The index of ledgers' names (src/ledger/directory.ts): its own key, in no ledger's slot. */
export function ledgerIndexKey(prefix: string): string {
  if (!NAME_PATTERN.test(prefix)) throw new Error(`invalid key prefix ${JSON.stringify(prefix)}`);
  return `${prefix}:ledgers`;
}

/**
 * Buckets of the transfer id index. Part of the data format (changing it moves every id): 2^16
 * buckets keep each one under `hash-max-listpack-entries` (set to 512 on the embedded Redis) up
 * to ~30 million transfers, and cost nothing until used. Beyond that buckets become hash tables:
 * still correct, ~60 bytes more per transfer.
 */
export const TRANSFER_ID_BUCKETS = 65_536;

export interface LedgerKeys {
  readonly prefix: string;
  /** The ledger's name. */
  readonly ledger: string;
  readonly tag: string;
  meta(): string;
  account(id: string): string;
  accountIds(): string;
  journal(): string;
  rejections(): string;
  /** The id bucket that holds this transfer id. */
  transferBucket(id: string): string;
  state(): string;
  expiries(): string;
  holdStats(): string;
  /** How far each journal follower (src/ledger/follower.ts) has got: name -> seq. */
  positions(): string;
  /** Open holds the archive could not free yet (lua/archive-7.lua). */
  pinned(): string;
  /** A lease held by one instance at a time (src/redis/lock.ts), e.g. `sweeper`. */
  lock(name: string): string;
  /** Pattern matching every key of this ledger (tests and operators; never on the hot path). */
  all(): string;
}

/** FNV-1a (32 bit) of the id's UTF-8 bytes: stable across releases and platforms. */
export function transferBucketOf(id: string): number {
  // Valid ids are ASCII (a byte per character); anything else is hashed as UTF-8.
  const bytes = /^[\x00-\x7f]*$/.test(id) ? undefined : Buffer.from(id, 'utf8');
  const length = bytes === undefined ? id.length : bytes.length;
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) {
    hash ^= bytes === undefined ? id.charCodeAt(i) : (bytes[i] as number);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % TRANSFER_ID_BUCKETS;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_UPPER = /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/;

/** compactId's length: a marker, then 128 bits in 7-bit characters (133 bits, 5 of them 0). */
export const COMPACT_ID_LENGTH = 20;

const HEX_VALUE = new Map([...'0123456789abcdefABCDEF'].map((c) => [c, parseInt(c, 16)]));

/**
 * The id index's field for an archived id that is a UUID (36 characters) in lower or upper
 * case: a marker character (U+0000 lower, U+0001 upper: two ids, since ids are case-sensitive)
 * and its 128 bits in 19 characters of 7 bits each, 20 bytes instead of 36, which is what keeps
 * an archived transfer within its memory goal (docs/archive.md). Every character is below
 * U+0080, one byte in UTF-8, so the form goes to Redis as text (ScriptArg in scripts.ts says
 * why not as bytes). No id the API accepts starts with either marker (ID_PATTERN), so the forms
 * cannot meet. Undefined for any other id, whose archived field is the id itself.
 */
export function compactId(id: string): string | undefined {
  let marker: number;
  if (UUID.test(id)) marker = 0;
  else if (UUID_UPPER.test(id)) marker = 1;
  else return undefined;
  const codes = [marker];
  // Five leading zero bits make 133 = 19 x 7.
  let acc = 0;
  let bits = 5;
  for (const c of id) {
    if (c === '-') continue;
    acc = (acc << 4) | (HEX_VALUE.get(c) as number);
    bits += 4;
    if (bits >= 7) {
      bits -= 7;
      codes.push((acc >> bits) & 127);
      acc &= (1 << bits) - 1;
    }
  }
  return String.fromCharCode(...codes);
}

/** The UUID a compact field stands for (compactId reversed); undefined: not such a field. */
export function uuidOfCompact(field: string): string | undefined {
  const marker = field.charCodeAt(0);
  if (field.length !== COMPACT_ID_LENGTH || (marker !== 0 && marker !== 1)) return undefined;
  let hex = '';
  let acc = field.charCodeAt(1) & 3; // (its top five bits are the padding)
  let bits = 2;
  for (let i = 2; i < COMPACT_ID_LENGTH; i++) {
    const code = field.charCodeAt(i);
    if (code > 127) return undefined;
    acc = (acc << 7) | code;
    bits += 7;
    while (bits >= 4) {
      bits -= 4;
      hex += ((acc >> bits) & 15).toString(16);
      acc &= (1 << bits) - 1;
    }
  }
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-` +
    `${hex.slice(16, 20)}-${hex.slice(20)}`;
  return marker === 1 ? uuid.toUpperCase() : uuid;
}

/** compactId as a script argument: '' for an id without a compact form. */
export function compactArg(id: string): string {
  return compactId(id) ?? '';
}

export function ledgerKeys(prefix: string, ledger: string): LedgerKeys {
  if (!NAME_PATTERN.test(prefix)) throw new Error(`invalid key prefix ${JSON.stringify(prefix)}`);
  if (!NAME_PATTERN.test(ledger)) throw new Error(`invalid ledger name ${JSON.stringify(ledger)}`);
  const base = `${prefix}:{${ledger}}:`;
  return {
    prefix,
    ledger,
    tag: `{${ledger}}`,
    meta: () => `${base}meta`,
    account: (id) => `${base}a:${id}`,
    accountIds: () => `${base}n`,
    journal: () => `${base}j`,
    rejections: () => `${base}r`,
    transferBucket: (id) => `${base}x:${transferBucketOf(id)}`,
    state: () => `${base}s`,
    expiries: () => `${base}h`,
    holdStats: () => `${base}hs`,
    positions: () => `${base}p`,
    pinned: () => `${base}k`,
    lock: (name) => `${base}lock:${name}`,
    all: () => `${base}*`,
  };
}
