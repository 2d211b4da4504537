/**
 * What backup and restore (src/ops/backup.ts, src/ops/restore.ts) need from Redis itself: an
 * admin connection, a point-in-time snapshot of a running Redis taken with `redis-cli --rdb`, a
 * scratch redis-server of our own on an RDB file, and turning that scratch into an AOF directory
 * the embedded Redis starts from.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { limits } from '../config/limits.js';
import { parseInfo } from '../redis/readiness.js';
import { type EmbeddedRedis, startEmbeddedRedis } from '../redis/embedded.js';

/**
 * A snapshot waits for any BGSAVE or AOF rewrite already running (Redis forks one child at a
 * time), then streams the whole data set: minutes for a large one on a slow disk. Past this the
 * backup fails and says so rather than hang.
 */
const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;
/** The scratch server rewrites its AOF from memory; the same order of time as a snapshot. */
const AOF_REWRITE_TIMEOUT_MS = 10 * 60_000;
/**
 * A tool's command timeout. Not the service's 1 s: DUMP and RESTORE move a whole key in one
 * command, and the journal is one key (hundreds of MB for millions of transfers).
 */
const TOOL_COMMAND_TIMEOUT_MS = 120_000;
const POLL_MS = 50;
/** The end of a redis-server log kept in an error message (the scratch dir is removed). */
const LOG_TAIL_CHARS = 1500;

/** A failure the operator must act on; the command exits non-zero with this message alone. */
export class Refusal extends Error {}

export interface RedisTarget {
  url: string;
  /** REDIS_TLS_CA_FILE, for a rediss:// URL signed by a private CA. */
  tlsCaFile?: string;
}

/** The URL without its password, for messages and the manifest. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable URL)';
  }
}

/** One connection for a tool's own commands, every option explicit (STYLE rule 8). */
export async function toolConnection(target: RedisTarget): Promise<Redis> {
  const options: RedisOptions = {
    lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0,
    retryStrategy: () => null, connectTimeout: limits.REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: TOOL_COMMAND_TIMEOUT_MS,
    // Waits while Redis answers LOADING (a scratch server reading its RDB). No CLIENT SETNAME
    // or SETINFO: a backup user needs no more than INFO, PING, SYNC and REPLCONF.
    enableReadyCheck: true, disableClientInfo: true,
  };
  if (target.url.startsWith('rediss://') && target.tlsCaFile !== undefined) {
    options.tls = { ca: readFileSync(target.tlsCaFile) };
  }
  const redis = new Redis(target.url, options);
  // Each command reports its own failure; a failed connect says only "Connection is closed",
  // so the socket's own error (ECONNREFUSED, WRONGPASS …) is kept for the message.
  let cause: unknown;
  redis.on('error', (error) => { cause ??= error; });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Refusal(`cannot connect to ${safeUrl(target.url)}: ${messageOf(cause ?? error)}`);
  }
  return redis;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function infoOf(redis: Redis, section: string): Promise<Map<string, string>> {
  return parseInfo(await redis.info(section));
}

/**
 * redis-cli's arguments for a URL: host and port spelled out, the password in REDISCLI_AUTH,
 * never on the command line where `ps` shows it (redis-cli -u would take it there, and reads a
 * user without a password as a password).
 */
function redisCliArgs(target: RedisTarget): { args: string[]; env: NodeJS.ProcessEnv } {
  const url = new URL(target.url);
  const args = ['-h', url.hostname.replace(/^\[(.*)\]$/, '$1'), '-p', url.port || '6379'];
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.REDISCLI_AUTH;
  if (url.username !== '') args.push('--user', decodeURIComponent(url.username));
  if (url.password !== '') env.REDISCLI_AUTH = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') {
    args.push('--tls', '--sni', url.hostname);
    if (target.tlsCaFile !== undefined) args.push('--cacert', target.tlsCaFile);
  }
  return { args, env };
}

/**
 * The RDB of a running Redis at one moment, written to `file`: `redis-cli --rdb` asks for it as
 * a replica would (REPLCONF rdb-only, SYNC), so Redis forks and the child writes the data set as
 * it was at the fork, while the parent goes on serving. One method for a Redis on this machine
 * and a remote one, and no stale file can be picked up: the bytes come from a fork made after
 * this call began (a dump.rdb in Redis's dir may be hours old). Redis itself serialises it
 * with any BGSAVE or AOF rewrite in progress (it waits for that child first). Costs: a fork
 * (copy-on-write memory while it runs), `repl-diskless-sync-delay` (5 s by default) before the
 * fork when Redis streams without disk, and the replication permission (SYNC, REPLCONF).
 */
export async function takeSnapshot(target: RedisTarget, file: string): Promise<void> {
  const { args, env } = redisCliArgs(target);
  const child = spawn('redis-cli', [...args, '--rdb', file], {
    env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), SNAPSHOT_TIMEOUT_MS);
  const exit = await new Promise<number | string>((ok) => {
    child.once('error', (error: NodeJS.ErrnoException) => ok(error.code ?? error.message));
    child.once('exit', (code, signal) => ok(code ?? String(signal)));
  }).finally(() => clearTimeout(timer));
  if (exit === 'ENOENT') {
    throw new Refusal('redis-cli was not found on PATH: it comes with redis-server (Debian/' +
      'Ubuntu: `apt-get install redis-tools`)');
  }
  const said = output.trim().split('\n').slice(-3).join(' / ');
  if (exit === 'SIGKILL') {
    throw new Error(`no snapshot from ${safeUrl(target.url)} within ` +
      `${SNAPSHOT_TIMEOUT_MS / 1000} s (is a long BGSAVE or AOF rewrite running?): ${said}`);
  }
  // redis-cli exits 0 only after "Transfer finished with success"; both are checked.
  if (exit !== 0 || !/Transfer finished with success/.test(output)) {
    throw new Refusal(`redis-cli --rdb from ${safeUrl(target.url)} failed (exit ${exit}): ` +
      `${said}${/NOPERM/.test(output) ? ' (the user needs SYNC and REPLCONF: use an admin ' +
        'user in REDIS_URL for backups)' : ''}`);
  }
  fsyncFile(file);
  if (rdbVersion(file) === undefined) {
    throw new Error(`${file} does not start with an RDB header: ${said}`);
  }
}

/** The RDB format version from the file's header (`REDIS0010` → `10`), if it has one. */
export function rdbVersion(file: string): string | undefined {
  const header = Buffer.alloc(9);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 9, 0);
  } finally {
    closeSync(fd);
  }
  return /^REDIS(\d{4})$/.exec(header.toString('latin1'))?.[1]?.replace(/^0+/, '');
}

/** Makes a file's bytes, or a directory's entries (a rename), durable. */
export function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A redis-server of our own in `dir`, loading `dir`/dump.rdb (appendonly no: with AOF on, Redis
 * would start empty and ignore the RDB), or, with `aof`, the AOF directory there. Started as the
 * embedded Redis is (loopback, a free port, the same settings, a keeper that stops it if we die).
 */
export async function startScratch(dir: string, source: 'rdb' | 'aof'): Promise<EmbeddedRedis> {
  try {
    return await startEmbeddedRedis({ dataDir: dir, extraArgs: [
      // No wait before the fork when a snapshot of this server is taken (stopped data dir).
      '--repl-diskless-sync-delay', '0',
      ...(source === 'rdb' ? ['--appendonly', 'no', '--dbfilename', 'dump.rdb'] : []),
    ] });
  } catch (error) {
    throw new Refusal(`a scratch redis-server could not load the ${source === 'rdb' ? 'RDB'
      : 'AOF'}: ${messageOf(error)}; its log ends: ${logTail(join(dir, 'redis.log'))}`);
  }
}

function logTail(file: string): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').slice(-LOG_TAIL_CHARS).trim().split('\n').slice(-6)
    .join(' / ');
}

/**
 * Turns AOF on in a scratch server and waits for the rewrite it starts: the AOF directory then
 * holds the whole data set (an RDB-preamble base file, an empty incremental file, a manifest),
 * which is what the embedded Redis loads at start.
 */
export async function writeAof(redis: Redis): Promise<void> {
  await redis.config('SET', 'appendonly', 'yes');
  const deadline = Date.now() + AOF_REWRITE_TIMEOUT_MS;
  for (;;) {
    const p = await infoOf(redis, 'persistence');
    if (p.get('aof_rewrite_in_progress') === '0' && p.get('aof_rewrite_scheduled') === '0' &&
      Number(p.get('aof_rewrites') ?? 0) >= 1) {
      if (p.get('aof_last_bgrewrite_status') !== 'ok') {
        throw new Error('the scratch redis-server failed to write its AOF (see its log)');
      }
      return;
    }
    if (Date.now() > deadline) throw new Error('the AOF rewrite did not finish in time');
    await sleep(POLL_MS);
  }
}
