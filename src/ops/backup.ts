/**
 * `npm run backup -- <dir>` (scripts/backup.ts; docs/backup.md): a point-in-time snapshot of the
 * ledger's Redis, checked by loading it, with a manifest. The Redis is REDIS_URL's, or the
 * embedded one running under LEDGER_DATA_DIR, or, when the service is stopped, a scratch
 * redis-server started on a copy of that data dir's AOF: every path ends in the same
 * `redis-cli --rdb` snapshot (src/ops/redis-tools.ts says why that method).
 */
import {
  cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync,
  symlinkSync, unlinkSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { lockDataDir } from '../instance.js';
import { DATA_FORMAT_VERSION } from '../ledger/scripts.js';
import { AOF_DIR_NAME } from '../redis/aof-repair.js';
import {
  BACKUP_FORMAT, describeFile, type LedgerSummary, type Manifest, MANIFEST_FILE, RDB_FILE,
  type RedisSummary, summarise, writeManifest,
} from './manifest.js';
import {
  infoOf, messageOf, type RedisTarget, rdbVersion, Refusal, safeUrl, startScratch,
  takeSnapshot, toolConnection,
} from './redis-tools.js';

export interface BackupOptions {
  /** Where the backup goes: an empty directory, or one that does not exist yet. */
  dir: string;
  redisUrl?: string;
  tlsCaFile?: string;
  /** LEDGER_DATA_DIR: the embedded Redis's, when redisUrl is unset. */
  dataDir: string;
  log: (line: string) => void;
}

/** Undoes one step: stops a scratch server, removes scratch files. */
type Cleanup = () => Promise<void> | void;

interface Source {
  kind: Manifest['source']['kind'];
  target: RedisTarget;
  dataDir: string | null;
  repairs: string[];
}

/** Scratch servers work inside the backup dir (space the operator chose); removed at the end. */
const SCRATCH_DIR = '.scratch';
const RELEASE = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url),
  'utf8')) as { version: string }).version;

export async function takeBackup(options: BackupOptions): Promise<Manifest> {
  const dir = resolve(options.dir);
  const createdDir = claimEmptyDir(dir);
  const startedAt = new Date().toISOString();
  const cleanups: Cleanup[] = [];
  let done = false;
  try {
    mkdirSync(join(dir, SCRATCH_DIR));
    cleanups.push(() => rmSync(join(dir, SCRATCH_DIR), { recursive: true, force: true }));
    const source = await openSource(options, join(dir, SCRATCH_DIR), cleanups);
    const redisVersion = await identify(source);
    options.log(`snapshot of ${safeUrl(source.target.url)} (${source.kind}) with redis-cli ` +
      '--rdb: Redis forks, waiting repl-diskless-sync-delay first (5 s by default)');
    const began = Date.now();
    await takeSnapshot(source.target, join(dir, RDB_FILE));
    const snapshotAt = new Date().toISOString();
    const rdb = describeFile(dir, RDB_FILE);
    options.log(`snapshot: ${rdb.bytes} bytes in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    const summary = await loadAndSummarise(dir);
    for (const line of describe(summary)) options.log(line);
    const manifest: Manifest = {
      backupFormat: BACKUP_FORMAT, release: RELEASE, dataFormatVersion: DATA_FORMAT_VERSION,
      startedAt, createdAt: snapshotAt,
      source: { kind: source.kind, redisUrl: safeUrl(source.target.url),
        dataDir: source.dataDir, redisVersion, repairs: source.repairs },
      rdbVersion: rdbVersion(join(dir, RDB_FILE)) as string,
      ...summary, files: [rdb],
    };
    await runCleanups(cleanups.splice(0));
    writeManifest(dir, manifest);
    options.log(`backup written to ${dir} (${RDB_FILE}, ${MANIFEST_FILE})`);
    done = true;
    return manifest;
  } finally {
    await runCleanups(cleanups);
    // A failed backup leaves the directory as it found it: nothing half-written to mistake.
    if (!done) {
      if (createdDir) rmSync(dir, { recursive: true, force: true });
      else for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true });
    }
  }
}

/** Scratch servers stopped, scratch files removed, last made first; a failure is no concern. */
async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup();
    } catch { /* the backup's outcome does not depend on it */ }
  }
}

/** Refuses a file or a non-empty directory; true when it had to create the directory. */
function claimEmptyDir(dir: string): boolean {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    return true;
  }
  if (!statSync(dir).isDirectory()) throw new Refusal(`${dir} is not a directory`);
  const entries = readdirSync(dir);
  if (entries.length > 0) {
    throw new Refusal(`backup directory ${dir} is not empty (it holds ${listed(entries)}): ` +
      'give each backup a new directory');
  }
  return false;
}

export function listed(names: string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

async function openSource(options: BackupOptions, scratchRoot: string,
  cleanups: Cleanup[]): Promise<Source> {
  if (options.redisUrl !== undefined) {
    return { kind: 'redis-url', target: { url: options.redisUrl, tlsCaFile: options.tlsCaFile },
      dataDir: null, repairs: [] };
  }
  const dataDir = resolve(options.dataDir);
  if (!existsSync(dataDir)) {
    throw new Refusal(`LEDGER_DATA_DIR ${dataDir} does not exist: no ledger to back up (for ` +
      'a Redis of your own, set REDIS_URL)');
  }
  const url = embeddedRedisUrl(dataDir);
  if (url !== undefined) {
    return { kind: 'embedded', target: { url }, dataDir: realpathSync(dataDir), repairs: [] };
  }
  return stoppedDataDir(realpathSync(dataDir), scratchRoot, cleanups);
}

/**
 * The URL of the redis-server running in `dataDir`, if one is: its pid file, that process's
 * working directory (Redis chdirs to its --dir), and its port from its process title
 * (`redis-server 127.0.0.1:<port>`: Redis overwrites its command line with it). Linux only
 * (/proc); elsewhere, or when the title was changed, set REDIS_URL to the URL the service
 * printed at start.
 */
function embeddedRedisUrl(dataDir: string): string | undefined {
  const pidFile = join(dataDir, 'redis.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  let title: string;
  try {
    if (realpathSync(`/proc/${pid}/cwd`) !== realpathSync(dataDir)) return undefined;
    title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+/g, ' ');
  } catch {
    return undefined; // not running (or no /proc): the data dir is treated as stopped
  }
  if (!title.includes('redis-server')) return undefined; // the pid was reused
  const port = /\b127\.0\.0\.1:(\d+)\b/.exec(title)?.[1];
  if (port === undefined) {
    throw new Refusal(`a redis-server (pid ${pid}) runs in ${dataDir} but its port is not in ` +
      `its process title (${title.trim()}): set REDIS_URL=redis://127.0.0.1:<port>, the URL ` +
      'the service printed at start ("embedded redis-server on …")');
  }
  return `redis://127.0.0.1:${port}`;
}

/**
 * The service is stopped: the data dir's lock (src/instance.ts) keeps it from starting while its
 * AOF is copied, then a scratch redis-server loads the copy (repairing a torn tail of the copy
 * as the service's start would; the data dir itself is not touched) and is snapshot like any.
 */
async function stoppedDataDir(dataDir: string, scratchRoot: string,
  cleanups: Cleanup[]): Promise<Source> {
  if (!existsSync(join(dataDir, AOF_DIR_NAME))) {
    throw new Refusal(`no redis-server runs in ${dataDir} and it holds no ${AOF_DIR_NAME}/: ` +
      'no ledger to back up');
  }
  let lock;
  try {
    lock = await lockDataDir(dataDir, 0);
  } catch (error) {
    throw new Refusal(`${messageOf(error)}; its embedded redis-server is not running (being ` +
      'restarted, or starting): try again, or set REDIS_URL to the URL the service printed');
  }
  const copy = join(scratchRoot, 'source');
  try {
    cpSync(join(dataDir, AOF_DIR_NAME), join(copy, AOF_DIR_NAME), { recursive: true });
  } finally {
    await lock.release();
  }
  const scratch = await startScratch(copy, 'aof');
  cleanups.push(() => scratch.stop());
  return { kind: 'stopped-data-dir', target: { url: scratch.url }, dataDir,
    repairs: [...scratch.repairs] };
}

/** Its Redis version; for the embedded Redis, also that it is the one in this data dir. */
async function identify(source: Source): Promise<string> {
  const redis = await toolConnection(source.target);
  try {
    if (source.kind === 'embedded') {
      const [, dir] = (await redis.config('GET', 'dir')) as string[];
      if (dir !== source.dataDir) {
        throw new Refusal(`${safeUrl(source.target.url)} works in ${dir}, not in ` +
          `${source.dataDir}: set REDIS_URL to the ledger's Redis`);
      }
    }
    return (await infoOf(redis, 'server')).get('redis_version') ?? 'unknown';
  } finally {
    redis.disconnect();
  }
}

/**
 * Loads the snapshot into a scratch redis-server, as a restore will (Redis checks the RDB's own
 * CRC64 as it loads), and summarises what it holds: the manifest describes the bytes written,
 * not the live Redis, which has moved on since the fork.
 */
async function loadAndSummarise(dir: string): Promise<RedisSummary> {
  const scratchDir = join(dir, SCRATCH_DIR, 'check');
  mkdirSync(scratchDir);
  // A link, not a copy: the scratch server only reads it (no save points; appendonly no).
  symlinkSync(join(dir, RDB_FILE), join(scratchDir, RDB_FILE));
  const scratch = await startScratch(scratchDir, 'rdb');
  try {
    const redis = await toolConnection({ url: scratch.url });
    try {
      return await summarise(redis);
    } finally {
      redis.disconnect();
    }
  } finally {
    await scratch.stop();
    unlinkSync(join(scratchDir, RDB_FILE));
  }
}

export function describe(summary: RedisSummary): string[] {
  const lines = summary.databases.map((d) =>
    `db ${d.db}: ${d.keys} keys (${d.volatileKeys} with a TTL)`);
  if (summary.ledgers.length === 0) lines.push('no ledger found (no <prefix>:{<ledger>}: keys)');
  return [...lines, ...summary.ledgers.map(ledgerLine)];
}

function ledgerLine(l: LedgerSummary): string {
  return `ledger ${l.prefix}:{${l.ledger}} (db ${l.db}, format ${l.format ?? 'none yet'}): ` +
    `journal seq ${l.journalSeq}, ${l.rejections} rejections, ${l.accounts} accounts`;
}
