/**
 * A real RabbitMQ for the change-data-capture tests, started and killed like the test Redis:
 * its own temp dir (data, logs, config, HOME with its Erlang cookie), its own node name, its own
 * epmd port, AMQP port and distribution port, all on loopback. The machine may run a RabbitMQ of
 * its own (5672, 25672, epmd on 4369): nothing here reads its config, talks to its epmd or uses
 * its ports. Linux only: the broker's processes are told apart by a marker in their environment
 * (/proc/<pid>/environ), which beam.smp, its port programs and the epmd it starts all inherit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync,
  readFileSync, realpathSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'amqplib';
import { freePort } from '../../src/redis/embedded.js';

export interface TestBroker {
  /** amqp://guest:guest@127.0.0.1:<port> (guest may log in from loopback, RabbitMQ's default). */
  readonly url: string;
  readonly port: number;
  /** The broker's temp dir: its mnesia (queues, messages), logs, config and HOME. */
  readonly dir: string;
  /** beam.smp's pid while the broker runs, else undefined. */
  pid(): number | undefined;
  /** SIGKILL to beam.smp (what a crash looks like to its message store); resolves once it is
   * gone. Its epmd stays, as it would on a machine whose broker crashed. */
  kill9(): Promise<void>;
  /** Starts it again on the same node name, data dir and ports; resolves when AMQP answers. */
  start(): Promise<void>;
  /** For good: kills the broker and its epmd, removes the dir. */
  stop(): Promise<void>;
}

/**
 * How long after its last declaration a topology is sure to survive kill9(). RabbitMQ 3.10 keeps
 * exchanges, queues and bindings in Mnesia, which appends a transaction's commit decision to its
 * log through disk_log's write cache: written out by the next synchronous log write or by the
 * cache's 2 s timer. A queue declared just before a kill -9 may be gone after the restart, and
 * with it the messages already confirmed into it (measured here, queue declared last: gone in 6
 * of 28 runs killed ~10 ms after it, 1 of 10 at ~230 ms, none of 16 at 1 s or 3 s). A binding
 * declared after the queue wrote the queue's decision out (20 runs of 20), but only this wait
 * covers whatever was declared last.
 */
export const TOPOLOGY_DURABLE_AFTER_MS = 2500;

export const RABBITMQ_INSTALL_HINT = 'rabbitmq-server was not found (PATH, /usr/sbin, ' +
  '/usr/lib/rabbitmq/bin). Install it: sudo apt-get install -y --no-install-recommends ' +
  'rabbitmq-server (scripts/setup.mjs does so when run as root)';

/** Set to the broker's dir in the environment of every process of that broker. */
const MARKER = 'LEDGER_TEST_RABBITMQ';
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** Attempts at the first start: a port picked free may be taken before the broker binds it. */
const FIRST_START_ATTEMPTS = 4;
const PROBE_INTERVAL_MS = 100;
/** Port programs and processes we killed are gone within milliseconds; this is a backstop. */
const EXIT_WAIT_MS = 10_000;
/** What a lost race for one of our ports looks like in the broker's output: the AMQP listener,
 * the distribution listener, or epmd's port held by something that is not an epmd. */
const PORT_CLASH = /eaddrinuse|could not bind to distribution port|no_reg_reply_from_epmd/;

/**
 * The server script. Debian's /usr/sbin/rabbitmq-server is a wrapper that re-runs it as the
 * rabbitmq user with `su`, from /var/lib/rabbitmq and with its output in /var/log/rabbitmq (and
 * refuses other users): it could not use our temp dir. The script itself lies beside it.
 */
export function findRabbitmqServer(): string | undefined {
  const candidates = [
    ...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '')
      .map((d) => join(d, 'rabbitmq-server')),
    '/usr/sbin/rabbitmq-server',
    '/usr/lib/rabbitmq/bin/rabbitmq-server',
  ];
  for (const candidate of candidates) {
    if (!executable(candidate)) continue;
    const real = realpathSync(candidate);
    if (basename(real) !== 'rabbitmq-script-wrapper') return candidate;
    const script = join(dirname(real), 'rabbitmq-server');
    if (executable(script)) return script;
  }
  return undefined;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

interface Ports {
  amqp: number;
  dist: number;
  epmd: number;
}

interface Proc {
  pid: number;
  comm: string;
}

/** The live processes of the broker in `dir`: start script, beam.smp, its port programs
 * (erl_child_setup, inet_gethost, the disk monitor's sh) and its epmd. A zombie holds no port
 * and no file, and this machine's init may reap it late: it counts as gone. */
function processesOf(dir: string): Proc[] {
  const needle = Buffer.from(`\0${MARKER}=${dir}\0`);
  const found: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`);
      if (!Buffer.concat([Buffer.from('\0'), environ]).includes(needle)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const state = stat.charAt(close + 2);
      if (state === 'Z' || state === 'X') continue;
      found.push({ pid: Number(entry), comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // gone meanwhile, or not ours to read (then not ours at all)
    }
  }
  return found;
}

function killAll(procs: readonly Proc[]): void {
  for (const p of procs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function until(ok: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await ok()) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    const done = (answer: boolean) => {
      socket.destroy();
      ok(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** Whose broker answers AMQP on the url: ours (its cluster name), another, or none yet. */
async function probe(url: string, clusterName: string): Promise<'ours' | 'other' | 'none'> {
  try {
    const connection = await connect(url, { timeout: 2000 });
    connection.on('error', () => {});
    const name = connection.connection.serverProperties.cluster_name;
    await connection.close().catch(() => {});
    return name === clusterName ? 'ours' : 'other';
  } catch {
    return 'none';
  }
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return `(no ${file})`;
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Dirs of the brokers not yet stopped, for the exit hook. */
const live = new Set<string>();
let exitHookInstalled = false;

/**
 * When the test process exits without stop() (a failed test, an uncaught error), its brokers
 * and epmds go with it. Synchronous: an 'exit' listener cannot wait. Death by a signal runs no
 * code at all; the keeper below covers that.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const dir of live) {
      try {
        killAll(processesOf(dir));
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // the keeper tries again once this process is gone
      }
    }
  });
}

/**
 * A tiny `sh` in its own process group whose stdin is a pipe from this process: however this
 * process dies (kill -9 included), the kernel closes the pipe, `read` sees end of file, and the
 * keeper kills every process carrying the broker's marker, then removes its dir. It selects by
 * the exact marker, so it never kills a process that merely reuses a pid.
 */
const KEEPER_SCRIPT = 'while read -r _; do :; done; ' +
  `for f in $(grep -lsxzF "${MARKER}=$1" /proc/[0-9]*/environ); do ` +
  'p=${f#/proc/}; kill -KILL "${p%/environ}" 2>/dev/null; done; rm -rf "$1"';

function keep(dir: string): ChildProcess {
  const keeper = spawn('sh', ['-c', KEEPER_SCRIPT, 'ledger-rabbitmq-keeper', dir], {
    stdio: ['pipe', 'ignore', 'ignore'], detached: true, env: withoutMarker(process.env),
  });
  keeper.on('error', () => {}); // no sh: the exit hook still runs on an ordinary exit
  keeper.stdin?.on('error', () => {});
  keeper.unref();
  (keeper.stdin as Socket | null)?.unref();
  return keeper;
}

function withoutMarker(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy[MARKER];
  return copy;
}

export async function startBroker(
  options: { startTimeoutMs?: number } = {},
): Promise<TestBroker> {
  const binary = findRabbitmqServer();
  if (binary === undefined) throw new Error(RABBITMQ_INSTALL_HINT);
  if (!existsSync('/proc/self/environ')) {
    throw new Error('test/helpers/rabbitmq.ts tells its processes apart through /proc (Linux)');
  }
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const dir = mkdtempSync(join(tmpdir(), 'ledger-rabbitmq-'));
  const local = `ledger-test-${randomBytes(6).toString('hex')}`;
  const node = `${local}@localhost`;
  // The broker reports its cluster name on every connection: it tells ours from any other
  // server that might have taken the port. It defaults to the node name; we set it explicitly.
  const clusterName = local;
  const home = join(dir, 'home');
  const mnesiaBase = join(dir, 'mnesia');
  const logBase = join(dir, 'log');
  const output = join(dir, 'broker.out');
  const configFile = join(dir, 'rabbitmq.conf');
  for (const d of [home, mnesiaBase, logBase]) mkdirSync(d);
  // No plugins: no management listener (15672), nothing but AMQP.
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
  // Replaces /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node (and its ports).
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '');

  let ports: Ports = { amqp: 0, dist: 0, epmd: 0 };
  let child: ChildProcess | undefined;
  let stopped = false;
  live.add(dir);
  installExitHook();
  const keeper = keep(dir);

  const url = () => `amqp://guest:guest@127.0.0.1:${ports.amqp}`;

  const pickPorts = async (): Promise<Ports> => {
    const picked = new Set<number>();
    const next = async () => {
      for (;;) {
        const port = await freePort();
        // Never the machine's broker's ports, even if it is down right now.
        if (![5672, 25672, 4369].includes(port) && !picked.has(port)) {
          picked.add(port);
          return port;
        }
      }
    };
    return { amqp: await next(), dist: await next(), epmd: await next() };
  };

  const writeConfig = () => {
    writeFileSync(configFile, [
      '# Written by test/helpers/rabbitmq.ts for one test broker.',
      `listeners.tcp.default = 127.0.0.1:${ports.amqp}`,
      `cluster_name = ${clusterName}`,
      '',
    ].join('\n'));
  };

  const environment = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      // The caller's RabbitMQ and Erlang settings (a node name, a config, ERL_FLAGS, an epmd
      // port) would be the machine's broker's: none pass. NOTIFY_SOCKET would make the script
      // behave as under systemd.
      if (/^(RABBITMQ_|ERL_)/.test(key) || key === 'NOTIFY_SOCKET' || key === 'HOME') continue;
      env[key] = value;
    }
    return {
      ...env,
      [MARKER]: dir,
      HOME: home, // the Erlang cookie goes here
      RABBITMQ_NODENAME: node,
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: configFile,
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'), // absent: none
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: mnesiaBase,
      RABBITMQ_LOG_BASE: logBase,
      RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
      RABBITMQ_DIST_PORT: String(ports.dist),
      // The distribution listener on loopback only (its default is every interface).
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      // The node starts its own epmd (`epmd -daemon`), which inherits these: its own port, on
      // loopback. It outlives the node, as epmd does; stop() kills it.
      ERL_EPMD_PORT: String(ports.epmd),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
    };
  };

  /** Kills the broker's VM and script, and epmd too when `all`; waits until they are gone. */
  const kill = async (all: boolean) => {
    const current = child;
    const targets = () => processesOf(dir).filter((p) => all || p.comm !== 'epmd');
    // The VM first: the script (our child) then reaps it and exits; killing both at once would
    // leave the VM to init, which may reap it late.
    killAll(targets().filter((p) => p.comm === 'beam.smp'));
    if (current && !(await until(() => exited(current), EXIT_WAIT_MS))) {
      killAll(targets());
    }
    // epmd never exits on its own (init reaps it: it daemonized).
    killAll(targets().filter((p) => p.comm === 'epmd'));
    // Port programs exit on end of file from the dead VM; anything left is killed.
    if (!(await until(() => targets().length === 0, EXIT_WAIT_MS / 2))) killAll(targets());
    if (!(await until(() => targets().length === 0, EXIT_WAIT_MS / 2))) {
      throw new Error(`processes of the test broker in ${dir} survived SIGKILL: ` +
        targets().map((p) => `${p.pid} ${p.comm}`).join(', '));
    }
    if (current && !(await until(() => exited(current), EXIT_WAIT_MS))) {
      throw new Error(`the start script of the test broker in ${dir} did not exit`);
    }
  };

  type Outcome = 'ready' | 'clash' | 'failed';

  /** One start on the current ports; on anything but 'ready' the VM is killed again. */
  const launch = async (deadline: number): Promise<{ outcome: Outcome; why: string }> => {
    const from = existsSync(output) ? statSync(output).size : 0;
    const out = openSync(output, 'a');
    let spawnError: Error | undefined;
    const current = spawn(binary, [], {
      cwd: dir, env: environment(), detached: true, stdio: ['ignore', out, out],
    });
    closeSync(out);
    current.on('error', (error) => {
      spawnError = error;
    });
    // The exit hook and the keeper stop it; it must not hold the test process open.
    current.unref();
    child = current;
    const since = () => readFileSync(output).subarray(from).toString();
    for (;;) {
      if (spawnError) return { outcome: 'failed', why: `cannot run ${binary}: ${spawnError}` };
      // The script exits 0 whatever happened to the VM: its output says what did.
      if (exited(current)) {
        const clash = PORT_CLASH.exec(since());
        return clash
          ? { outcome: 'clash', why: `a port was taken (${clash[0]})` }
          : { outcome: 'failed', why: 'the broker exited during its start' };
      }
      const answer = await probe(url(), clusterName);
      if (answer === 'ours') return { outcome: 'ready', why: '' };
      if (answer === 'other') {
        await kill(false);
        return { outcome: 'clash', why: `another AMQP server answers on port ${ports.amqp}` };
      }
      if (Date.now() > deadline) {
        await kill(false);
        return { outcome: 'failed', why: `AMQP did not answer within ${startTimeoutMs} ms` };
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  };

  // Boot failures go to the script's output; the rest, after the first second, to the log.
  const failure = (why: string) => new Error(`test RabbitMQ (${node}, ${dir}): ${why}; ` +
    `its output ends:\n${tail(output, 25)}\nits log ends:\n` +
    tail(join(logBase, `${node}.log`), 25));

  const running = () => child !== undefined && !exited(child);

  const destroy = async () => {
    try {
      await kill(true);
    } finally {
      keeper.kill('SIGKILL');
      live.delete(dir);
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    }
  };

  // The first start, on fresh ports each attempt when one was taken meanwhile.
  const deadline = Date.now() + startTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    ports = await pickPorts();
    writeConfig();
    let result: { outcome: Outcome; why: string };
    try {
      result = await launch(deadline);
    } catch (error) {
      await destroy();
      throw error;
    }
    if (result.outcome === 'ready') break;
    const error = failure(result.why);
    if (result.outcome === 'failed' || attempt === FIRST_START_ATTEMPTS) {
      await destroy();
      throw error;
    }
    // Another try on other ports: this try's epmd goes (its port is given up), and so does
    // whatever the failed boot left in mnesia.
    await kill(true);
    rmSync(mnesiaBase, { recursive: true, force: true });
    mkdirSync(mnesiaBase);
  }

  return {
    get url() {
      return url();
    },
    get port() {
      return ports.amqp;
    },
    dir,
    pid() {
      if (!running()) return undefined;
      return processesOf(dir).find((p) => p.comm === 'beam.smp')?.pid;
    },
    async kill9() {
      if (stopped) throw new Error('kill9: the test broker was stopped');
      if (!running()) throw new Error('kill9: the test broker is not running');
      const beam = processesOf(dir).find((p) => p.comm === 'beam.smp');
      if (!beam) throw new Error(`kill9: no beam.smp runs for the test broker in ${dir}`);
      process.kill(beam.pid, 'SIGKILL');
      await kill(false);
    },
    async start() {
      if (stopped) throw new Error('start: the test broker was stopped for good');
      if (running()) throw new Error('start: the test broker is running');
      const { outcome, why } = await launch(Date.now() + startTimeoutMs);
      if (outcome !== 'ready') {
        await kill(false);
        throw failure(why);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await destroy();
    },
  };
}
