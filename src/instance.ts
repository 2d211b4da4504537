/**
 * What one instance of the service holds exclusively, claimed before anything starts: its data
 * directory (the embedded Redis's AOF; two redis-servers appending to one AOF corrupt it) and
 * its HTTP port. Both checks run before Redis starts, so a second `npm start` fails at once and
 * says why, and never touches the running instance.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, realpathSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';

/**
 * How long a refused start waits for the running instance to say who it is. It answers from its
 * event loop, at once unless that loop is blocked; past this the message just lacks pid and port.
 */
const HOLDER_ANSWER_TIMEOUT_MS = 3000;

/** What the holder of a data dir tells a second instance, for its error message. */
export interface Holder {
  pid: number;
  port: number;
}

export interface DataDirLock {
  /** The data dir, resolved (symlinks too): two spellings of one directory are one lock. */
  readonly dataDir: string;
  /** The port the instance serves, once known (PORT=0 picks one at listen). */
  setPort(port: number): void;
  release(): Promise<void>;
}

/**
 * `abstract` (Linux): a socket in the abstract namespace, named after the data dir's real path.
 * Binding it is atomic, and the kernel removes it when the last descriptor closes, so a holder
 * killed with kill -9 leaves nothing stale: the lock cannot outlive its process. (Node opens
 * every descriptor close-on-exec, so the redis-server we spawn does not inherit it.) Abstract
 * names belong to a network namespace: two containers with their own network, sharing one data
 * volume, do not see each other's lock.
 *
 * `file` (other systems, where no abstract namespace exists): a socket file in the data dir.
 * A crash leaves the file behind; a start that finds it and gets no answer on it takes it for
 * stale and replaces it. That is weaker: two starts racing over a stale file can both win, and
 * a data dir whose path is long (over about 100 bytes) cannot hold the socket at all.
 */
export type LockKind = 'abstract' | 'file';

export const LOCK_SOCKET_FILE = 'instance.sock';

export function defaultLockKind(): LockKind {
  return process.platform === 'linux' ? 'abstract' : 'file';
}

function lockAddress(dataDir: string, kind: LockKind): string {
  if (kind === 'file') return join(dataDir, LOCK_SOCKET_FILE);
  const digest = createHash('sha256').update(dataDir).digest('hex').slice(0, 32);
  return `\0atomic-ledger/data-dir/${digest}`;
}

/** Takes the data dir for this process, or throws naming the directory and its holder. */
export async function lockDataDir(dir: string, port: number,
  kind: LockKind = defaultLockKind()): Promise<DataDirLock> {
  mkdirSync(dir, { recursive: true });
  const dataDir = realpathSync(dir);
  const address = lockAddress(dataDir, kind);
  const holder: Holder = { pid: process.pid, port };
  const server = createServer((socket) => {
    socket.on('error', () => {}); // a peer that hangs up early is no concern of ours
    socket.end(`${JSON.stringify(holder)}\n`);
  });
  // Never what keeps the process alive: the service's own server and Redis do that.
  server.unref();
  for (let attempt = 1; ; attempt++) {
    const error = await listenOn(server, address);
    if (error === undefined) break;
    if (error.code !== 'EADDRINUSE') throw error;
    const running = await askHolder(address);
    if (running === 'nobody' && kind === 'file' && attempt === 1) {
      unlinkSync(address); // left by a holder that crashed: nobody answers on it
      continue;
    }
    throw new Error(inUse(dataDir, running));
  }
  return {
    dataDir,
    setPort(actual) { holder.port = actual; },
    release: () => new Promise((ok) => server.close(() => ok())),
  };
}

function inUse(dataDir: string, running: Holder | 'nobody' | 'silent'): string {
  const who = typeof running === 'object'
    ? `another instance (pid ${running.pid}, port ${running.port})`
    : 'another instance (it did not say which)';
  return `data dir ${dataDir} is in use by ${who}: stop that one, or set LEDGER_DATA_DIR ` +
    'to another directory';
}

function listenOn(server: Server, address: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((ok) => {
    const onError = (error: NodeJS.ErrnoException) => ok(error);
    server.once('error', onError);
    server.listen(address, () => {
      server.off('error', onError);
      ok(undefined);
    });
  });
}

/** The holder's answer; `nobody` when no one listens there, `silent` when no answer came. */
function askHolder(address: string): Promise<Holder | 'nobody' | 'silent'> {
  return new Promise((ok) => {
    let text = '';
    const socket = connect(address);
    socket.setTimeout(HOLDER_ANSWER_TIMEOUT_MS, () => {
      socket.destroy();
      ok('silent');
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => { text += chunk; });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      ok(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'nobody' : 'silent');
    });
    socket.on('end', () => ok(parseHolder(text)));
  });
}

function parseHolder(text: string): Holder | 'silent' {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (Number.isInteger(value.pid) && Number.isInteger(value.port)) {
      return { pid: value.pid as number, port: value.port as number };
    }
  } catch { /* not our protocol */ }
  return 'silent';
}

/**
 * Fails at once when HOST:PORT is taken, before Redis starts and the scripts load, instead of
 * Fastify's bare EADDRINUSE seconds later. The probe is closed at once; a process taking the
 * port in between still meets Fastify's own error.
 */
export async function ensurePortFree(host: string, port: number): Promise<void> {
  if (port === 0) return; // any free port will do
  const probe = createServer();
  const error = await new Promise<NodeJS.ErrnoException | undefined>((ok) => {
    probe.once('error', ok);
    probe.listen({ host, port, exclusive: true }, () => ok(undefined));
  });
  if (error === undefined) {
    await new Promise((ok) => probe.close(ok));
    return;
  }
  if (error.code === 'EADDRINUSE') {
    throw new Error(`port ${port} on ${host} is already in use (another instance, or another ` +
      'service): stop it, or set PORT to a free port');
  }
  if (error.code === 'EACCES') {
    throw new Error(`port ${port} needs privileges this process lacks: set PORT to 1024 or ` +
      'above');
  }
  throw new Error(`cannot listen on ${host}:${port} (${error.code}): check HOST and PORT`);
}
