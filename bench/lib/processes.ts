/**
 * The bench's children: servers under test, redis-servers and a postgres. Every child is
 * tracked so that none outlives the bench, whether it ends normally, throws, or gets Ctrl-C /
 * SIGTERM / SIGHUP. (Against SIGKILL of the bench, the Node servers also watch their IPC
 * channel: servers/parent-guard.ts.)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync,
  rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Each child, and the signal that stops it at once when the bench exits. */
const children = new Map<ChildProcess, NodeJS.Signals>();
const dirs = new Set<string>();

/**
 * `exitSignal`: SIGKILL, unless the child cleans up faster than it can be killed (postgres:
 * SIGQUIT stops its backends and removes its shared memory; SIGKILL would leak the segment).
 */
export function track(child: ChildProcess, exitSignal: NodeJS.Signals = 'SIGKILL'): ChildProcess {
  children.set(child, exitSignal);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A directory removed when the bench exits, however it exits (AOFs can be gigabytes). */
export function trackDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const TEMP_PREFIX = 'ledger-bench-';
const OWNER_FILE = 'bench.pid';

/**
 * The bench's working directory, marked with our pid so a later run can tell it is stale;
 * `kind` names a second one (postgres needs one its own user owns).
 */
export function makeWorkDir(kind = ''): string {
  const dir = trackDir(mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}${kind}`)));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

/**
 * A bench killed with SIGKILL cannot stop its redis-servers and postgres (its Node servers
 * stop on their own: parent-guard.ts). The next run stops them: a redis-server or postgres
 * process whose working directory lies in a bench directory whose owner is dead (postgres
 * and its backends work in their data directory). Nothing else is touched.
 */
export function reapStaleRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    const dir = join(tmpdir(), name);
    const ownerFile = join(dir, OWNER_FILE);
    if (!name.startsWith(TEMP_PREFIX) || !existsSync(ownerFile)) continue;
    if (alive(Number(readFileSync(ownerFile, 'utf8')))) continue;
    const stale = staleProcesses(dir);
    // SIGQUIT: postgres's immediate shutdown, which removes its shared memory segment (one
    // SIGKILLed leaves it behind); SIGKILL for whatever has not gone within 5 s.
    for (const p of stale) sendSignal(p.pid, p.what === 'postgres' ? 'SIGQUIT' : 'SIGKILL');
    waitUntilGone(stale.map((p) => p.pid), 5000);
    for (const p of stale) {
      if (running(p.pid)) sendSignal(p.pid, 'SIGKILL');
      console.error(`bench: stopped ${p.what} ${p.pid} left by a killed run in ${dir}`);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function staleProcesses(dir: string): Array<{ pid: number; what: string }> {
  const found: Array<{ pid: number; what: string }> = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const what = ['redis-server', 'postgres'].find((name) => cmdline.includes(name));
      if (what !== undefined && cwd.startsWith(`${dir}/`)) found.push({ pid, what });
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

function sendSignal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone meanwhile (a backend its postmaster stopped first)
  }
}

/** Blocks (the `exit` event allows nothing else) until the processes are gone, or `ms`. */
function waitUntilGone(pids: ReadonlyArray<number | undefined>, ms: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < ms && pids.some(running); i++) Atomics.wait(pause, 0, 0, 1);
}

/** Alive and not a zombie: a child killed while we block cannot be reaped, yet is gone. */
function running(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return alive(pid); // no /proc: fall back to a signal probe
  }
}

/**
 * Synchronous, because the `exit` event allows nothing else: signal, wait until the children
 * are gone (milliseconds; the tsx CLI SIGKILLs us soon after a Ctrl-C), SIGKILL any left,
 * remove the files.
 */
function killEverythingNow(): void {
  for (const [child, signal] of children) child.kill(signal);
  waitUntilGone([...children.keys()].map((c) => c.pid), 2000);
  for (const child of children.keys()) {
    if (running(child.pid)) child.kill('SIGKILL');
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

export function installCleanup(): void {
  process.on('exit', killEverythingNow);
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // `on`, not `once`: Ctrl-C reaches us twice (from the terminal, and relayed by the tsx
    // CLI), and a second signal with no listener left would kill us mid-cleanup.
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.error(`\nbench: ${signal}: stopping every server, redis-server and postgres`);
      process.exit(130); // runs the exit handler above
    });
  }
}

/** CPU seconds (user + system, all threads) a live process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces or parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds of a process and its children (postgres: the postmaster and its backends):
 * each live child's own, and through the parent's cutime/cstime those of children that
 * exited (and were reaped) meanwhile.
 */
export function treeCpuSeconds(rootPid: number): number {
  const fieldsOf = (pid: number | string) => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  };
  const root = fieldsOf(rootPid);
  // utime stime cutime cstime are fields 14-17 of stat; here 11-14 (state is 0).
  let ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(root[i]), 0);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const fields = fieldsOf(pid);
      if (Number(fields[1]) === rootPid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited while we looked
    }
  }
  return ticks / CLOCK_TICKS;
}

/** CPU seconds the whole machine has spent busy (not idle, not waiting on I/O), from /proc. */
export function machineBusySeconds(): number {
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/);
  const values = ticks.filter(Boolean).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const busy = values.slice(0, 8).reduce((sum, v, i) => (i === 3 || i === 4 ? sum : sum + v), 0);
  return busy / CLOCK_TICKS;
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface Server {
  readonly name: string;
  readonly base: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** SIGTERM (the product shuts down gracefully and writes its CPU profile), then SIGKILL. */
  stop(): Promise<void>;
}

export interface ServerSpec {
  name: string;
  /** Absolute path of the TypeScript entry point. */
  script: string;
  port: number;
  env: NodeJS.ProcessEnv;
  /** A path that answers 200 once the server can take load. */
  readyPath: string;
  logFile: string;
  nodeFlags?: string[];
}

const GUARD = pathToFileURL(join(ROOT, 'bench/servers/parent-guard.ts')).href;

/**
 * Runs `node --import tsx` directly (not the tsx CLI, which would add a second process), so the
 * pid we read CPU from is the server itself. Output goes to a log file: a pipe nobody reads
 * would fill and stall the server, and the product logs every request at `info`.
 */
export async function startServer(spec: ServerSpec): Promise<Server> {
  const log = openSync(spec.logFile, 'a');
  const args = [...(spec.nodeFlags ?? []), '--import', 'tsx', '--import', GUARD, spec.script];
  const child = track(spawn(process.execPath, args, {
    cwd: ROOT, env: { ...spec.env, PORT: String(spec.port) },
    stdio: ['ignore', log, log, 'ipc'],
  }));
  closeSync(log);
  const base = `http://127.0.0.1:${spec.port}`;
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const server: Server = {
    name: spec.name, base, child, pid: child.pid as number, logFile: spec.logFile,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${spec.name} exited before it was ready:\n${logTail(spec.logFile)}`);
    }
    try {
      const response = await fetch(`${base}${spec.readyPath}`);
      await response.arrayBuffer();
      if (response.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${spec.name} was not ready within 60 s:\n${logTail(spec.logFile)}`);
    }
    await sleep(100);
  }
}

export function logTail(file: string, lines = 20): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
