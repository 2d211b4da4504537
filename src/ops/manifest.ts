/**
 * A backup directory (docs/backup.md): `dump.rdb`, the snapshot, and `manifest.json`, written
 * last, which says what the snapshot holds and carries the SHA-256 of every file and of itself.
 * Also what a Redis holds, summarised the same way for the manifest and for checking a restore.
 */
import { createHash } from 'node:crypto';
import {
  closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { ledgerKeys } from '../ledger/keys.js';
import { DATA_FORMAT_UPGRADES_FROM, DATA_FORMAT_VERSION } from '../ledger/scripts.js';
import { fsyncFile, infoOf, Refusal } from './redis-tools.js';

export const RDB_FILE = 'dump.rdb';
export const MANIFEST_FILE = 'manifest.json';
/** The manifest's own layout; a restore refuses another. */
export const BACKUP_FORMAT = 1;

export interface BackupFile {
  name: string;
  bytes: number;
  sha256: string;
}

/** What one database of the snapshot holds; `volatileKeys` have a TTL (the sweeper's lease). */
export interface DatabaseSummary {
  db: number;
  keys: number;
  volatileKeys: number;
}

/** One ledger found in the snapshot, by its keys `<prefix>:{<ledger>}:…` (src/ledger/keys.ts). */
export interface LedgerSummary {
  db: number;
  prefix: string;
  ledger: string;
  /** Its data-format version (`fmt` in its meta hash); null before its first account. */
  format: string | null;
  /** Accounts created (`an`). */
  accounts: string;
  /** The highest journal seq: every committed transfer 1 … journalSeq is in the snapshot. */
  journalSeq: string;
  /** The highest rejection number (the rejected-transfer stream). */
  rejections: string;
}

export interface RedisSummary {
  databases: DatabaseSummary[];
  ledgers: LedgerSummary[];
}

export interface Manifest extends RedisSummary {
  backupFormat: number;
  /** The release that wrote it (package.json) and the data format that release writes. */
  release: string;
  dataFormatVersion: string;
  /** When the backup began and when the snapshot was complete; the fork lies in between. */
  startedAt: string;
  createdAt: string;
  source: {
    kind: 'redis-url' | 'embedded' | 'stopped-data-dir';
    /** Without its password. */
    redisUrl: string;
    dataDir: string | null;
    redisVersion: string;
    /** Repairs the scratch server made to a copy of a stopped data dir's AOF (torn tail). */
    repairs: string[];
  };
  rdbVersion: string;
  files: BackupFile[];
  /** SHA-256 of this manifest's JSON without this field: a damaged manifest is refused too. */
  manifestSha256?: string;
}

const KEY = /^([A-Za-z0-9_.-]{1,64}):\{([A-Za-z0-9_.-]{1,64})\}:(?:meta|j|r)$/;
const SCAN_COUNT = 1000;

/** Every database with keys, and every ledger in them: from INFO keyspace and a SCAN. */
export async function summarise(redis: Redis): Promise<RedisSummary> {
  const databases: DatabaseSummary[] = [];
  for (const [name, value] of await infoOf(redis, 'keyspace')) {
    const match = /^db(\d+)$/.exec(name);
    const counts = /keys=(\d+),expires=(\d+)/.exec(value);
    if (!match || !counts) throw new Error(`unexpected INFO keyspace line ${name}:${value}`);
    databases.push({ db: Number(match[1]), keys: Number(counts[1]),
      volatileKeys: Number(counts[2]) });
  }
  databases.sort((a, b) => a.db - b.db);
  const ledgers: LedgerSummary[] = [];
  for (const { db } of databases) {
    await redis.select(db);
    for (const key of await ledgerKeyNames(redis)) {
      const [, prefix, ledger] = KEY.exec(key) as RegExpExecArray;
      ledgers.push({ db, ...(await ledgerSummary(redis, prefix as string, ledger as string)) });
    }
  }
  await redis.select(0);
  return { databases, ledgers };
}

/** One key name per ledger (`<prefix>:{<ledger>}:meta`, `:j` or `:r`), sorted. */
async function ledgerKeyNames(redis: Redis): Promise<string[]> {
  const found = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', '*:{*}:*', 'COUNT', SCAN_COUNT);
    cursor = next;
    for (const key of keys) {
      const match = KEY.exec(key);
      if (match) found.set(`${match[1]}:{${match[2]}}`, key);
    }
  } while (cursor !== '0');
  return [...found.values()].sort();
}

async function ledgerSummary(redis: Redis, prefix: string, ledger: string) {
  const keys = ledgerKeys(prefix, ledger);
  const [format, accounts] = await redis.hmget(keys.meta(), 'fmt', 'an');
  return { prefix, ledger, format: format ?? null, accounts: accounts ?? '0',
    journalSeq: await lastSeq(redis, keys.journal()),
    rejections: await lastSeq(redis, keys.rejections()) };
}

/** The newest entry's number: both streams use ids `0-<n>` (src/ledger/keys.ts). */
async function lastSeq(redis: Redis, stream: string): Promise<string> {
  const newest = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
  if (newest.length === 0) return '0';
  const seq = /^0-(\d+)$/.exec(newest[0]?.[0] ?? '')?.[1];
  if (seq === undefined) throw new Error(`${stream}: unexpected stream id ${newest[0]?.[0]}`);
  return seq;
}

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const chunk = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) {
      hash.update(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export function describeFile(dir: string, name: string): BackupFile {
  const path = join(dir, name);
  return { name, bytes: statSync(path).size, sha256: sha256File(path) };
}

function manifestText(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

function selfSha(manifest: Manifest): string {
  const { manifestSha256: _, ...body } = manifest;
  return createHash('sha256').update(manifestText(body)).digest('hex');
}

/** Written last, through a temporary name: a directory without it is an unfinished backup. */
export function writeManifest(dir: string, manifest: Manifest): void {
  const sealed = { ...manifest, manifestSha256: selfSha(manifest) };
  const temporary = join(dir, `${MANIFEST_FILE}.partial`);
  writeFileSync(temporary, manifestText(sealed));
  fsyncFile(temporary);
  renameSync(temporary, join(dir, MANIFEST_FILE));
  fsyncFile(dir);
}

/**
 * The manifest of the backup in `dir`, once every check passed: it is whole (its own SHA-256),
 * of a layout and data format this release restores, and every file it lists has its size and
 * SHA-256. Each refusal names what is wrong.
 */
export function readBackup(dir: string): Manifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) {
    throw new Refusal(`${path} does not exist: ${dir} is not a backup, or one that did not ` +
      'finish (the manifest is written last)');
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (error) {
    throw new Refusal(`${path} is not valid JSON, the backup is damaged: ${String(error)}`);
  }
  if (manifest.manifestSha256 !== selfSha(manifest)) {
    throw new Refusal(`${path} does not match its own checksum (manifestSha256): the ` +
      'manifest is damaged or was edited');
  }
  if (manifest.backupFormat !== BACKUP_FORMAT) {
    throw new Refusal(`${path}: backup format ${manifest.backupFormat}, this release restores ` +
      `format ${BACKUP_FORMAT} only`);
  }
  for (const ledger of manifest.ledgers) checkFormat(ledger);
  if (!manifest.files.some((file) => file.name === RDB_FILE)) {
    throw new Refusal(`${path} lists no ${RDB_FILE}`);
  }
  for (const file of manifest.files) checkFile(dir, file);
  return manifest;
}

function checkFormat(ledger: LedgerSummary): void {
  const readable = [null, DATA_FORMAT_VERSION, DATA_FORMAT_UPGRADES_FROM];
  if (!readable.includes(ledger.format)) {
    throw new Refusal(`ledger ${ledger.prefix}:{${ledger.ledger}} has data format ` +
      `${ledger.format}; this release serves ${DATA_FORMAT_UPGRADES_FROM} and ` +
      `${DATA_FORMAT_VERSION} only: restore it with a release that serves its format`);
  }
}

function checkFile(dir: string, file: BackupFile): void {
  if (!/^[\w.-]+$/.test(file.name)) throw new Refusal(`manifest names a file ${file.name}`);
  const path = join(dir, file.name);
  if (!existsSync(path)) throw new Refusal(`${path} is missing: the backup is incomplete`);
  const bytes = statSync(path).size;
  if (bytes !== file.bytes) {
    throw new Refusal(`${path} has ${bytes} bytes, the manifest says ${file.bytes}: the ` +
      'backup is damaged');
  }
  const sha256 = sha256File(path);
  if (sha256 !== file.sha256) {
    throw new Refusal(`${path} has SHA-256 ${sha256}, the manifest says ${file.sha256}: the ` +
      'backup is damaged');
  }
}
