/**
 * The embedded Redis: with no REDIS_URL the service runs its own `redis-server` child with AOF,
 * bound to loopback, its files under the data dir, in a process group of its own and watched by
 * a keeper that stops it if the service dies (see keep()). The tests start theirs the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import { AOF_DIR_NAME, AOF_FILE_NAME, repairTornTail } from './aof-repair.js';

export const REDIS_INSTALL_HINT =
  'redis-server was not found on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y ' +
  'redis-server`; macOS: `brew install redis`) or set REDIS_URL to a Redis you run.';

export interface EmbeddedRedisOptions {
  dataDir: string;
  /** Default: a free loopback port. */
  port?: number;
  /**
   * Ports a free one must not be: the service's own HTTP port, free when Redis starts but
   * bound just after (the system may hand the same ephemeral port out twice in a row).
   */
  avoidPorts?: readonly number[];
  appendfsync?: 'always' | 'everysec';
  /** Default REDIS_BUSY_REPLY_THRESHOLD_MS; tests that provoke BUSY make it shorter. */
  busyReplyThresholdMs?: number;
  /** More redis-server arguments, after ours (a later value wins): tests' replication. */
  extraArgs?: readonly string[];
  binary?: string;
}

export interface EmbeddedRedis {
  readonly url: string;
  /** What a torn-tail repair cut at this start (empty when the AOF loaded as it was). */
  readonly repairs: readonly string[];
  readonly port: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Graceful: Redis flushes and fsyncs its AOF, then exits. */
  stop(): Promise<void>;
  /** `kill -9`: what a crash looks like to the AOF. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail()));
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A redis-server still running in the data dir after its service died. Its keeper (below) is
 * usually stopping it already; we wait for it to finish, since two servers appending to one AOF
 * would corrupt it. Only a caller that holds the data dir's lock (src/instance.ts) may take a
 * live pid file for a leftover: without the lock it may be a running instance's Redis.
 */
async function stopOrphan(dataDir: string, pidFile: string): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  if (!isRedisIn(pid, dataDir)) return; // the pid was reused by something else
  process.kill(pid, 'SIGTERM'); // graceful: Redis fsyncs its AOF, then exits
  // Not alive(): once exited, it may stay a zombie until init reaps it, holding nothing.
  const running = () => alive(pid) && isRedisIn(pid, dataDir);
  for (let i = 0; i < ORPHAN_STOP_POLLS && running(); i++) await sleep(ORPHAN_STOP_POLL_MS);
  if (running()) {
    throw new Error(`a redis-server (pid ${pid}) left by an earlier start still runs in ` +
      `${dataDir} and did not stop on SIGTERM; stop it, then start again`);
  }
}

/** Waiting for a leftover Redis to finish its shutdown: 10 s, ample for a final AOF fsync. */
const ORPHAN_STOP_POLLS = 200;
const ORPHAN_STOP_POLL_MS = 50;

/**
 * A redis-server working in `dataDir` (Redis chdirs to its `--dir`). Linux only: elsewhere
 * nothing identifies the process safely, and it is left alone.
 */
function isRedisIn(pid: number, dataDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server') &&
      realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir);
  } catch {
    return false;
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => child.once('exit', () => ok()));
}

export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const pidFile = join(dataDir, 'redis.pid');
  await stopOrphan(dataDir, pidFile);
  let port = options.port ?? (await freePort());
  while (options.port === undefined && options.avoidPorts?.includes(port)) port = await freePort();
  const logFile = join(dataDir, 'redis.log');
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes',
    '--dir', dataDir, '--pidfile', pidFile, '--logfile', logFile,
    '--daemonize', 'no', '--save', '',
    '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'always',
    '--appenddirname', AOF_DIR_NAME, '--appendfilename', AOF_FILE_NAME,
    // Refuse a torn AOF instead of loading half of a script's MULTI block (aof-repair.ts).
    '--aof-load-truncated', 'no',
    '--maxmemory-policy', 'noeviction',
    // Transfer ids live in small hashes (keys.ts); these keep them listpack-encoded, a few bytes
    // per id, with ids up to 128 characters (Redis's defaults: 128 entries on Debian, 64 bytes).
    '--hash-max-listpack-entries', '512', '--hash-max-listpack-value', '128',
    // Explicit, not Redis's 5 s: a stuck script answers BUSY before our command timeout.
    '--busy-reply-threshold',
    String(options.busyReplyThresholdMs ?? limits.REDIS_BUSY_REPLY_THRESHOLD_MS),
    ...(options.extraArgs ?? []),
  ];
  const url = `redis://127.0.0.1:${port}`;
  const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
  let child = await launch(options.binary ?? 'redis-server', args, url, logFile);
  const repairs: string[] = [];
  const refusal = child.exitCode === null ? ''
    : /Unexpected end of file|Bad file format/.exec(logSince(logFile, logStart))?.[0];
  if (refusal) {
    const damage = refusal === 'Unexpected end of file' ? 'truncated' : 'bad-format';
    const repair = repairTornTail(dataDir, damage, new Date());
    repairs.push(...repair.cut, `original AOF files kept in ${repair.backupDir}`);
    child = await launch(options.binary ?? 'redis-server', args, url, logFile);
  }
  if (child.exitCode !== null) {
    throw new Error(`redis-server exited with ${child.exitCode}; see ${logFile}`);
  }
  return {
    url, port, dataDir, child, repairs,
    async stop() {
      child.kill('SIGTERM');
      await exitOf(child);
    },
    async kill() {
      child.kill('SIGKILL');
      await exitOf(child);
    },
  };
}

function logSince(logFile: string, offset: number): string {
  return existsSync(logFile) ? readFileSync(logFile).subarray(offset).toString() : '';
}

/** Starts redis-server and waits until it answers PING, or until it exits (caller checks). */
async function launch(
  binary: string,
  args: string[],
  url: string,
  logFile: string,
): Promise<ChildProcess> {
  // Its own process group: a terminal's Ctrl-C reaches the whole foreground group, and Redis
  // must outlive the service's drain (in-flight requests still need it); the service stops it.
  const child = spawn(binary, args, { stdio: 'ignore', detached: true });
  keep(child);
  const spawnError = new Promise<Error>((ok) => child.once('error', ok));
  const deadline = Date.now() + limits.EMBEDDED_REDIS_START_TIMEOUT_MS;
  for (;;) {
    const failed = await Promise.race([spawnError, sleep(50).then(() => undefined)]);
    if (failed) {
      throw (failed as NodeJS.ErrnoException).code === 'ENOENT'
        ? new Error(REDIS_INSTALL_HINT)
        : failed;
    }
    if (child.exitCode !== null) return child;
    if (await answersPing(url)) return child;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not become ready; see ${logFile}`);
    }
  }
}

/**
 * Redis must never outlive the process that started it (it would hold the AOF and a port, with
 * nobody to stop it), and it is detached, so nothing stops it when that process dies by kill -9,
 * which runs none of its code. A keeper does: a tiny `sh` in its own process group whose stdin
 * is a pipe from this process. However this process dies, the kernel closes the pipe; `read`
 * sees end of file and the keeper sends Redis SIGTERM, Redis's graceful shutdown (AOF fsynced).
 * Chosen over PR_SET_PDEATHSIG (Linux only, and Node cannot set it without a native addon) and
 * over a keeper that is Redis's parent (we would lose Redis's pid and exit status, which the
 * supervisor below and the tests use). The keeper is killed the moment its Redis exits, so it
 * never signals a pid the system has reused since.
 */
const KEEPER_SCRIPT = 'while read -r _; do :; done; kill -TERM "$1" 2>/dev/null';

function keep(redis: ChildProcess): void {
  if (redis.pid === undefined) return; // spawning failed; launch reports why
  const keeper = spawn('sh', ['-c', KEEPER_SCRIPT, 'atomic-ledger-redis-keeper',
    String(redis.pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  keeper.on('error', () => {}); // no sh: Redis then stops only when we stop it
  keeper.stdin?.on('error', () => {});
  // The pipe is for the kernel to close, never what keeps this process alive.
  keeper.unref();
  (keeper.stdin as Socket | null)?.unref();
  redis.once('exit', () => keeper.kill('SIGKILL'));
}

async function answersPing(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0,
    retryStrategy: () => null, connectTimeout: 500, enableOfflineQueue: false });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG'; // LOADING (AOF replay) rejects, so we wait on
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export interface SupervisedRedis {
  readonly url: string;
  readonly current: () => EmbeddedRedis;
  stop(): Promise<void>;
}

/**
 * The service's embedded Redis, restarted when it exits on its own. Under `appendfsync always`
 * Redis exits on an AOF write error (a full disk) rather than acknowledge a write it could not
 * persist; once space returns, the restart (with torn-tail repair) brings the ledger back
 * without restarting the service. Meanwhile requests answer 503.
 */
export async function superviseEmbeddedRedis(
  options: EmbeddedRedisOptions,
  onEvent: (message: string) => void,
): Promise<SupervisedRedis> {
  let redis = await startEmbeddedRedis(options);
  const port = redis.port;
  let stopping = false;
  const watch = (r: EmbeddedRedis) => {
    r.child.once('exit', (code, signal) => {
      if (!stopping) {
        void restart(`redis-server exited (${signal ?? code}); see ${r.dataDir}/redis.log`);
      }
    });
  };
  const restart = async (why: string): Promise<void> => {
    onEvent(`${why}; restarting it`);
    while (!stopping) {
      await sleep(limits.EMBEDDED_REDIS_RESTART_DELAY_MS);
      if (stopping) return;
      try {
        redis = await startEmbeddedRedis({ ...options, port });
        for (const line of redis.repairs) onEvent(`torn AOF tail repaired: ${line}`);
        onEvent(`redis-server is back on ${redis.url}`);
        watch(redis);
        return;
      } catch (error) {
        onEvent(`redis-server restart failed: ${error instanceof Error ? error.message : error}`);
      }
    }
  };
  watch(redis);
  return {
    url: redis.url,
    current: () => redis,
    async stop() {
      stopping = true;
      await redis.stop();
    },
  };
}
