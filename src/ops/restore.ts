/**
 * `npm run restore -- <dir>` (scripts/restore.ts; docs/backup.md): checks a backup (manifest and
 * SHA-256 of every file), loads its RDB into a scratch redis-server, and from there fills an
 * empty LEDGER_DATA_DIR (an AOF directory, what the embedded Redis starts from) or an empty
 * Redis at REDIS_URL (DUMP/RESTORE, key by key). Then it reads the target back and compares it
 * with the manifest. It never writes over anything: a target with any key or file is refused.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync,
  symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { LOCK_SOCKET_FILE, lockDataDir } from '../instance.js';
import { AOF_DIR_NAME } from '../redis/aof-repair.js';
import { startEmbeddedRedis } from '../redis/embedded.js';
import { describe, listed } from './backup.js';
import { type Manifest, RDB_FILE, readBackup, type RedisSummary, summarise } from './manifest.js';
import {
  fsyncFile, infoOf, messageOf, Refusal, safeUrl, startScratch, toolConnection, writeAof,
} from './redis-tools.js';

export interface RestoreOptions {
  /** The backup: a directory written by `npm run backup`. */
  dir: string;
  /** Set: restore into this Redis (it must hold no key); unset: into dataDir. */
  redisUrl?: string;
  tlsCaFile?: string;
  dataDir: string;
  log: (line: string) => void;
}

/** Keys per SCAN and per pipeline of DUMP/RESTORE: round trips amortised, replies bounded. */
const COPY_BATCH_KEYS = 200;
const SCRATCH_DIR = '.restore-scratch';

export async function restoreBackup(options: RestoreOptions): Promise<Manifest> {
  const dir = resolve(options.dir);
  // Called once the target is known to be empty: that check is cheap, hashing a backup is not.
  const verified = () => {
    const manifest = readBackup(dir);
    options.log(`backup ${dir} verified: made ${manifest.createdAt} from ` +
      `${manifest.source.redisUrl} (Redis ${manifest.source.redisVersion}), every SHA-256 ` +
      'matches');
    for (const line of describe(manifest)) options.log(line);
    return manifest;
  };
  return options.redisUrl === undefined
    ? toDataDir(dir, resolve(options.dataDir), verified, options)
    : toRedis(dir, verified, options);
}

/** The names in `dir` (none when it does not exist); refuses a file in its place. */
function entriesOf(dir: string): string[] {
  if (!existsSync(dir)) return [];
  if (!statSync(dir).isDirectory()) throw new Refusal(`${dir} is not a directory`);
  return readdirSync(dir);
}

async function toDataDir(dir: string, dataDir: string, verified: () => Manifest,
  options: RestoreOptions): Promise<Manifest> {
  const refuse = (names: string[]) => new Refusal(`LEDGER_DATA_DIR ${dataDir} is not empty ` +
    `(it holds ${listed(names)}): restore only into an empty or new data directory`);
  const existed = existsSync(dataDir);
  const before = entriesOf(dataDir);
  if (before.length > 0) throw refuse(before);
  // The lock keeps the service from starting on the directory while it is being filled.
  let lock;
  try {
    lock = await lockDataDir(dataDir, 0);
  } catch (error) {
    throw new Refusal(messageOf(error));
  }
  let wrote = false;
  let done = false;
  try {
    const now = entriesOf(dataDir).filter((name) => name !== LOCK_SOCKET_FILE);
    if (now.length > 0) throw refuse(now);
    const manifest = verified();
    wrote = true;
    await writeAofInto(dir, dataDir);
    options.log(`AOF written to ${join(dataDir, AOF_DIR_NAME)}; starting it as the service ` +
      'would, to compare it with the manifest');
    const redis = await startEmbeddedRedis({ dataDir });
    try {
      await compareWith(manifest, { url: redis.url }, dataDir);
    } finally {
      await redis.stop();
    }
    options.log(`restored into ${dataDir}: start the service with LEDGER_DATA_DIR=${dataDir}`);
    done = true;
    return manifest;
  } finally {
    // It was empty, and ours under the lock: a failed restore leaves it as it was, never half a
    // ledger (a directory the lock created is removed again).
    if (!done && wrote) {
      for (const name of entriesOf(dataDir)) rmSync(join(dataDir, name), { recursive: true });
    }
    if (!done && !existed && entriesOf(dataDir).length === 0) rmSync(dataDir, { recursive: true });
    await lock.release();
  }
}

/**
 * The scratch server works inside the data dir, so the finished AOF directory moves into place
 * with one rename: the data dir holds the whole AOF or none of it.
 */
async function writeAofInto(dir: string, dataDir: string): Promise<void> {
  const scratchDir = join(dataDir, SCRATCH_DIR);
  mkdirSync(scratchDir);
  symlinkSync(join(dir, RDB_FILE), join(scratchDir, RDB_FILE));
  const scratch = await startScratch(scratchDir, 'rdb');
  try {
    const redis = await toolConnection({ url: scratch.url });
    try {
      await writeAof(redis);
    } finally {
      redis.disconnect();
    }
  } finally {
    await scratch.stop(); // graceful: the AOF is flushed and fsynced
  }
  renameSync(join(scratchDir, AOF_DIR_NAME), join(dataDir, AOF_DIR_NAME));
  fsyncFile(dataDir);
  rmSync(scratchDir, { recursive: true });
}

async function toRedis(dir: string, verified: () => Manifest,
  options: RestoreOptions): Promise<Manifest> {
  const url = options.redisUrl as string;
  const targetSpec = { url, tlsCaFile: options.tlsCaFile };
  const target = await toolConnection(targetSpec);
  const scratchDir = mkdtempSync(join(tmpdir(), 'ledger-restore-'));
  try {
    const held = [...await infoOf(target, 'keyspace')].map(([db, v]) => `${db} (${v})`);
    if (held.length > 0) {
      throw new Refusal(`${safeUrl(url)} is not empty: ${held.join(', ')}; restore only into ` +
        'a Redis that holds no key');
    }
    const manifest = verified();
    symlinkSync(join(dir, RDB_FILE), join(scratchDir, RDB_FILE));
    try {
      await copyAll(scratchDir, manifest, target, options.log);
      await compareWith(manifest, targetSpec, safeUrl(url));
    } catch (error) {
      // Not emptied for you: it is your Redis, and a writer of its own may be what failed it.
      throw new Error(`${messageOf(error)}; ${safeUrl(url)} may hold part of the backup now: ` +
        'empty it (FLUSHALL) before restoring again');
    }
    options.log(`restored into ${safeUrl(url)}: start the service with this REDIS_URL`);
    return manifest;
  } finally {
    target.disconnect();
    rmSync(scratchDir, { recursive: true, force: true });
  }
}

async function copyAll(scratchDir: string, manifest: Manifest, target: Redis,
  log: (line: string) => void): Promise<void> {
  const scratch = await startScratch(scratchDir, 'rdb');
  try {
    const source = await toolConnection({ url: scratch.url });
    try {
      for (const { db } of manifest.databases) {
        const copied = await copyKeys(source, target, db);
        log(`db ${db}: ${copied} keys copied`);
      }
    } finally {
      source.disconnect();
    }
  } finally {
    await scratch.stop();
  }
}

/**
 * Every key of one database, DUMP on the scratch server and RESTORE (with its remaining TTL) on
 * the target. RESTORE without REPLACE fails on a key the target has: someone else is writing
 * there, and the restore stops rather than mix two ledgers. SCAN may return a key twice; `seen`
 * skips the repeat.
 */
async function copyKeys(source: Redis, target: Redis, db: number): Promise<number> {
  await source.select(db);
  await target.select(db);
  const seen = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await source.scanBuffer(cursor, 'COUNT', COPY_BATCH_KEYS);
    cursor = next.toString();
    const keys = found.filter((key) => !seen.has(key.toString('latin1')));
    for (const key of keys) seen.add(key.toString('latin1'));
    const read = source.pipeline();
    for (const key of keys) read.pttl(key).dumpBuffer(key);
    const replies = (await read.exec()) ?? [];
    const write = target.pipeline();
    keys.forEach((key, i) => {
      const [ttl, payload] = [replies[2 * i]?.[1] as number, replies[2 * i + 1]?.[1] as Buffer];
      if (payload !== null) write.restore(key, ttl > 0 ? ttl : 0, payload);
    });
    for (const [error] of (await write.exec()) ?? []) {
      if (error) throw new Error(`RESTORE into db ${db} failed: ${error.message}`);
    }
  } while (cursor !== '0');
  await source.select(0);
  await target.select(0);
  return seen.size;
}

/**
 * The target read back: the same ledgers with the same journal seq, rejections, accounts and
 * format, and the same number of keys without a TTL in each database (a key with a TTL, the
 * sweeper's lease, may expire on the way).
 */
async function compareWith(manifest: RedisSummary, target: { url: string; tlsCaFile?: string },
  where: string): Promise<void> {
  const redis = await toolConnection(target);
  let found: RedisSummary;
  try {
    found = await summarise(redis);
  } finally {
    redis.disconnect();
  }
  const lasting = (s: RedisSummary) => s.databases.filter((d) => d.keys > d.volatileKeys)
    .map((d) => `db ${d.db}: ${d.keys - d.volatileKeys} keys`).join(', ');
  const ledgers = (s: RedisSummary) => describe({ databases: [], ledgers: s.ledgers }).join('; ');
  for (const [what, get] of [['keys without a TTL', lasting], ['ledgers', ledgers]] as const) {
    if (get(found) !== get(manifest)) {
      throw new Error(`after the restore, ${where} does not match the manifest: ${what} ` +
        `${get(found)}, the manifest says ${get(manifest)}`);
    }
  }
}
