/**
 * A real PostgreSQL for tests, started and killed like the test RabbitMQ
 * (test/helpers/rabbitmq.ts): initdb into its own temp dir, the server on a free loopback port
 * with its socket in that dir, a random scram password, the database `ledger`. The machine's
 * own PostgreSQL (5432, its data, its socket in /var/run/postgresql) is never used. Linux only:
 * a cluster's processes are told apart by their working directory (/proc/<pid>/cwd), its data
 * directory, which the postmaster enters and every backend inherits.
 *
 * The first half is shared with the bench's PostgreSQL (bench/lib/postgres.ts): finding the
 * binaries, the user it runs as, initdb, the server's command line, waiting until it is ready.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync, chownSync, closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync,
  readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { freePort } from '../../src/redis/embedded.js';
import { logTail } from '../../bench/lib/processes.js';

/** Where a Debian/Ubuntu `postgresql` package puts its binaries (not on PATH there). */
const DEBIAN_VERSIONS_DIR = '/usr/lib/postgresql';
/** The machine's own PostgreSQL listens here: never ours. */
const MACHINE_PORT = 5432;
/** The superuser initdb creates; the password is random per cluster. */
export const POSTGRES_ROLE = 'ledger';
/** initdb and a first start take seconds; a minute means something is wrong. */
export const POSTGRES_START_TIMEOUT_MS = 60_000;

export const POSTGRES_INSTALL_HINT = 'initdb and postgres were not found (PATH, ' +
  `${DEBIAN_VERSIONS_DIR}/<version>/bin). Install them without the cluster the package would ` +
  'start on 5432: sudo mkdir -p /etc/postgresql-common/createcluster.d && echo ' +
  '\'create_main_cluster = false\' | sudo tee /etc/postgresql-common/createcluster.d/' +
  'atomic-ledger.conf >/dev/null && sudo apt-get install -y --no-install-recommends ' +
  'postgresql (scripts/setup.mjs does so when run as root)';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * A directory holding both initdb and postgres: PATH first, then the newest
 * /usr/lib/postgresql/<version>/bin. Null when there is none.
 */
export function findPostgresBin(): string | null {
  const fromPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  let versions: string[] = [];
  try {
    versions = readdirSync(DEBIAN_VERSIONS_DIR).filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
  } catch {
    // no Debian-style install
  }
  const candidates = [...fromPath, ...versions.map((v) => join(DEBIAN_VERSIONS_DIR, v, 'bin'))];
  for (const dir of candidates) {
    if (!executable(join(dir, 'initdb'))) continue;
    // initdb looks for postgres beside its own real path (symlinks, as in /usr/local/bin,
    // resolved): that directory must hold both.
    const real = dirname(realpathSync(join(dir, 'initdb')));
    if (executable(join(real, 'postgres'))) return real;
  }
  return null;
}

export function postgresAvailable(): boolean {
  return findPostgresBin() !== null;
}

/** How initdb and postgres are spawned: in their dir, as whom, with which environment. */
export type PostgresRunAs = { cwd: string; env: NodeJS.ProcessEnv; uid?: number; gid?: number };

/**
 * initdb and postgres refuse to run as root (a server bug must not own the machine), so as
 * root they run as `nobody`, and `dir` is handed to it. Node's spawn sets the uid and gid itself
 * (and drops supplementary groups), which needs neither runuser, su nor setpriv, and leaves the
 * pid we hold that of postgres itself, so signals and /proc CPU reach it directly.
 */
export function postgresRunAs(dir: string): PostgresRunAs {
  const as: PostgresRunAs = { cwd: dir, env: { ...process.env, LC_ALL: 'C' } };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return as;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n')
    .find((l) => l.startsWith('nobody:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error('running as root, and there is no user `nobody` to run postgres as');
  }
  chownSync(dir, Number(uid), Number(gid));
  return { ...as, uid: Number(uid), gid: Number(gid) };
}

/** initdb into `dir`/data, its superuser `ledger` with a random password (returned). */
export function initCluster(bin: string, dir: string, as: PostgresRunAs): string {
  const password = randomBytes(18).toString('base64url');
  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, password, { mode: 0o600 });
  if (as.uid !== undefined) chownSync(passwordFile, as.uid, as.gid as number);
  // Passwords, not trust: the port is on loopback, but other local users could reach it.
  // C collation: ids compare byte by byte, the fastest choice a team would make for ids.
  execFileSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', POSTGRES_ROLE,
    `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'],
  { ...as, stdio: ['ignore', 'ignore', 'pipe'], timeout: POSTGRES_START_TIMEOUT_MS });
  rmSync(passwordFile);
  return password;
}

/** A free loopback port for a cluster, never the machine's PostgreSQL's. */
export async function postgresPort(): Promise<number> {
  const port = await freePort();
  if (port === MACHINE_PORT) throw new Error('never the machine\'s PostgreSQL port 5432');
  return port;
}

export function postgresLogFile(dir: string): string {
  return join(dir, 'postgres.log');
}

/**
 * The postmaster on `dir`/data: postgres's own defaults for everything but where it listens
 * (loopback, `port`, its socket in `dir`, not the machine's /var/run/postgresql) and
 * `settings` (name=value). Its output is appended to postgresLogFile(dir).
 */
export function spawnPostgres(bin: string, dir: string, port: number, as: PostgresRunAs,
  settings: readonly string[]): ChildProcess {
  const log = openSync(postgresLogFile(dir), 'a');
  try {
    return spawn(join(bin, 'postgres'), ['-D', join(dir, 'data'), '-p', String(port),
      '-k', dir, '-c', 'listen_addresses=127.0.0.1', ...settings.flatMap((s) => ['-c', s])],
    { ...as, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function exitOf(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((ok) => child.once('exit', () => ok()));
}

/** One connection attempt's limit: something else that took the port and never answers must
 * not hold the wait past our postgres's exit. */
const CONNECT_ATTEMPT_MS = 5000;

/** Connects as soon as postgres accepts connections; throws if it exits or takes too long. */
export async function connectWhenReady(child: ChildProcess, url: string, logFile: string,
  timeoutMs = POSTGRES_START_TIMEOUT_MS): Promise<pg.Client> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited(child)) {
      throw new Error(`postgres exited before it was ready:\n${logTail(logFile)}`);
    }
    const client = new pg.Client({ connectionString: url,
      connectionTimeoutMillis: CONNECT_ATTEMPT_MS });
    try {
      await client.connect();
      return client;
    } catch {
      await client.end().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`postgres not ready:\n${logTail(logFile)}`);
    await sleep(100);
  }
}

// --- The test harness ---------------------------------------------------------------------

export interface TestPostgres {
  /** postgres://ledger:<password>@127.0.0.1:<port>/ledger; the database `ledger` exists. */
  readonly url: string;
  readonly port: number;
  /** The cluster's temp dir: data/ (PGDATA), its socket, postgres.log. */
  readonly dir: string;
  /** The postmaster's pid while it runs, else undefined. */
  pid(): number | undefined;
  /** SIGKILL to the postmaster and every backend (what a crash looks like to its WAL);
   * resolves once they are gone. */
  kill9(): Promise<void>;
  /** SIGINT: fast shutdown (open transactions roll back, a checkpoint); resolves on exit. */
  stopFast(): Promise<void>;
  /** Starts it again on the same data dir and port (crash recovery after kill9()); resolves
   * when it accepts connections to `ledger`; throws with its log if the port was taken. */
  start(): Promise<void>;
  /** For good: kills it if it runs, removes the dir. */
  close(): Promise<void>;
}

/**
 * Small, so that many clusters fit a 2-core box at once. Durability at PostgreSQL's defaults
 * (fsync stated: the tests kill it and expect committed rows back). Dynamic shared memory in
 * files under data/ rather than /dev/shm: a cluster killed and then removed leaves none behind.
 */
const TEST_SETTINGS = ['cluster_name=ledger-test', 'fsync=on', 'shared_buffers=32MB',
  'max_connections=50', 'dynamic_shared_memory_type=mmap'];
/** Attempts at the first start: a port picked free may be taken before postgres binds it. */
const FIRST_START_ATTEMPTS = 4;
/** Fast shutdown writes a checkpoint: seconds at worst on a busy disk. */
const STOP_TIMEOUT_MS = 60_000;
/** Killed processes are gone within milliseconds; this is a backstop. */
const EXIT_WAIT_MS = 10_000;

/** Running (not a zombie: it holds no port and no shared memory any more). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.charAt(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** The live processes working in `dir` or below: the postmaster and its backends (data/). */
function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if ((cwd === dir || cwd.startsWith(`${dir}/`)) && processRunning(Number(entry))) {
        found.push(Number(entry));
      }
    } catch {
      // gone meanwhile, or not ours to read (then not ours at all)
    }
  }
  return found;
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  }
}

async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (ok()) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

/** Blocks (an `exit` listener can do nothing else) until nothing runs in `dir`, or `ms`. */
function waitUntilEmptySync(dir: string, ms: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + ms;
  while (processesIn(dir).length > 0 && Date.now() < deadline) Atomics.wait(pause, 0, 0, 10);
}

/**
 * A postmaster killed with SIGKILL leaves its small System V segment (the next start on the
 * same data dir removes it). Before the dir goes: removed here, if postmaster.pid still names
 * it (key and id) and nothing is attached. Best effort: without ipcrm it stays.
 */
function removeOrphanSegment(dir: string): void {
  try {
    const [key, id] = (readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8')
      .split('\n')[6] ?? '').trim().split(/\s+/);
    if (key === undefined || id === undefined) return;
    const row = readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1)
      .map((l) => l.trim().split(/\s+/)).find((f) => f[0] === key && f[1] === id);
    if (row?.[6] === '0') spawnSync('ipcrm', ['-m', id], { stdio: 'ignore' });
  } catch {
    // no postmaster.pid (a clean exit removes it), or no /proc/sysvipc
  }
}

/** SIGQUIT (immediate shutdown: postgres removes its shared memory), then SIGKILL; waits. */
function reapSync(dir: string): void {
  signal(processesIn(dir), 'SIGQUIT');
  waitUntilEmptySync(dir, 5000);
  signal(processesIn(dir), 'SIGKILL');
  waitUntilEmptySync(dir, 2000);
  removeOrphanSegment(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Dirs of the clusters not yet closed, for the exit hook. */
const live = new Set<string>();
let exitHookInstalled = false;

/**
 * When the test process exits without close() (a failed test, an uncaught error), its clusters
 * go with it. Death by a signal runs no code at all; the keeper below covers that.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of live) {
      try {
        reapSync(dir);
      } catch {
        // the keeper tries again once this process is gone
      }
    }
  });
}

/**
 * A tiny `sh` in its own process group whose stdin is a pipe from this process: however this
 * process dies (kill -9 included), the kernel closes the pipe, `read` sees end of file, and the
 * keeper stops every process working in the cluster's dir (SIGQUIT, then SIGKILL after 5 s),
 * removes the segment of a postmaster killed before (as removeOrphanSegment does), then the
 * dir. A process that merely reuses a pid works elsewhere: it is left alone.
 */
const KEEPER_SCRIPT = 'while read -r _; do :; done; d=$1; ' +
  'pids() { for p in /proc/[0-9]*; do case $(readlink "$p/cwd" 2>/dev/null) in ' +
  '"$d"|"$d"/*) echo "${p#/proc/}";; esac; done; }; ' +
  'p=$(pids); [ -n "$p" ] && kill -QUIT $p 2>/dev/null; ' +
  'i=0; while [ $i -lt 50 ] && [ -n "$(pids)" ]; do sleep 0.1; i=$((i+1)); done; ' +
  'p=$(pids); [ -n "$p" ] && kill -KILL $p 2>/dev/null; ' +
  'set -- $(sed -n 7p "$d/data/postmaster.pid" 2>/dev/null); ' +
  '[ $# -eq 2 ] && awk -v k="$1" -v i="$2" \'$1 == k && $2 == i && $7 == 0 { print i }\' ' +
  '/proc/sysvipc/shm 2>/dev/null | while read -r s; do ipcrm -m "$s"; done; rm -rf "$d"';

function keep(dir: string): ChildProcess {
  const keeper = spawn('sh', ['-c', KEEPER_SCRIPT, 'ledger-postgres-keeper', dir], {
    cwd: '/', stdio: ['pipe', 'ignore', 'ignore'], detached: true,
  });
  keeper.on('error', () => {}); // no sh: the exit hook still runs on an ordinary exit
  keeper.stdin?.on('error', () => {});
  keeper.unref();
  (keeper.stdin as Socket | null)?.unref();
  return keeper;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const bin = findPostgresBin();
  if (bin === null) throw new Error(POSTGRES_INSTALL_HINT);
  if (!existsSync('/proc/self/cwd')) {
    throw new Error('test/helpers/postgres.ts tells its processes apart through /proc (Linux)');
  }
  // The real path: /proc/<pid>/cwd shows it so, whatever links lead to the temp dir.
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'ledger-postgres-')));
  const logFile = postgresLogFile(dir);
  live.add(dir);
  installExitHook();
  const keeper = keep(dir);
  let child: ChildProcess | undefined;
  let port = 0;
  let password = '';
  let closed = false;
  const base = () => `postgres://${POSTGRES_ROLE}:${password}@127.0.0.1:${port}`;
  const isRunning = () => child !== undefined && !exited(child);

  /** SIGKILL to the postmaster first (it forks no more), then to the rest; waits. */
  const killAll = async () => {
    const postmaster = child;
    if (postmaster && !exited(postmaster)) postmaster.kill('SIGKILL');
    signal(processesIn(dir), 'SIGKILL');
    const gone = await until(() => {
      signal(processesIn(dir), 'SIGKILL'); // one forked just before the postmaster died
      return processesIn(dir).length === 0 && (!postmaster || exited(postmaster));
    }, EXIT_WAIT_MS);
    if (!gone) {
      throw new Error(`processes of the test PostgreSQL in ${dir} survived SIGKILL: ` +
        processesIn(dir).join(', '));
    }
  };

  /** One start on `port`; resolves when `database` takes connections (the client is closed). */
  const launch = async (as: PostgresRunAs, database: string): Promise<pg.Client> => {
    const current = spawnPostgres(bin, dir, port, as, TEST_SETTINGS);
    current.unref(); // the exit hook and the keeper stop it: it must not hold the tests open
    child = current;
    try {
      return await connectWhenReady(current, `${base()}/${database}`, logFile);
    } catch (error) {
      await killAll();
      throw error;
    }
  };

  const destroy = async () => {
    try {
      if (isRunning()) signal([child!.pid!], 'SIGQUIT'); // it removes its shared memory
      if (!(await until(() => processesIn(dir).length === 0, EXIT_WAIT_MS))) await killAll();
    } finally {
      removeOrphanSegment(dir);
      keeper.kill('SIGKILL');
      live.delete(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    }
  };

  let as: PostgresRunAs;
  try {
    as = postgresRunAs(dir);
    password = initCluster(bin, dir, as);
    for (let attempt = 1; ; attempt++) {
      port = await postgresPort();
      const from = existsSync(logFile) ? statSync(logFile).size : 0;
      let admin: pg.Client;
      try {
        admin = await launch(as, 'postgres');
      } catch (error) {
        const lost = /Address already in use/.test(readFileSync(logFile).subarray(from)
          .toString());
        if (lost && attempt < FIRST_START_ATTEMPTS) continue;
        throw error;
      }
      try {
        await admin.query('CREATE DATABASE ledger');
      } finally {
        await admin.end();
      }
      break;
    }
  } catch (error) {
    await destroy();
    throw new Error(`test PostgreSQL (${dir}): ${(error as Error).message}`, { cause: error });
  }

  return {
    get url() {
      return `${base()}/ledger`;
    },
    get port() {
      return port;
    },
    dir,
    pid() {
      return isRunning() ? child!.pid : undefined;
    },
    async kill9() {
      if (closed) throw new Error('kill9: the test PostgreSQL was closed');
      if (!isRunning()) throw new Error('kill9: the test PostgreSQL is not running');
      await killAll();
    },
    async stopFast() {
      if (closed) throw new Error('stopFast: the test PostgreSQL was closed');
      const postmaster = child;
      if (!postmaster || !isRunning()) {
        throw new Error('stopFast: the test PostgreSQL is not running');
      }
      postmaster.kill('SIGINT');
      if (!(await until(() => exited(postmaster) && processesIn(dir).length === 0,
        STOP_TIMEOUT_MS))) {
        await killAll();
        throw new Error(`stopFast: the test PostgreSQL did not stop within ${STOP_TIMEOUT_MS}` +
          ` ms (killed):\n${logTail(logFile)}`);
      }
    },
    async start() {
      if (closed) throw new Error('start: the test PostgreSQL was closed');
      if (isRunning()) throw new Error('start: the test PostgreSQL is running');
      const client = await launch(as, 'ledger');
      await client.end();
    },
    async close() {
      if (closed) return;
      closed = true;
      await destroy();
    },
  };
}
