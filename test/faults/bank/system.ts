/**
 * The system under test, as separate processes: a redis-server with AOF (started by
 * src/redis/embedded.ts on the scenario's data dir), the fault proxy in front of it, and the
 * service itself (`node --import tsx src/server.ts`) talking to Redis through the proxy. Each
 * piece can be killed, stopped and restarted; Redis always on the same port and the same AOF.
 * With `embedded`, the service runs its own redis-server instead, as `npm start` does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type EmbeddedRedis, freePort, startEmbeddedRedis } from '../../../src/redis/embedded.js';
import { FaultProxy } from './proxy.js';
import { API_KEYS_ENV } from '../../helpers/auth.js';

export type Appendfsync = 'always' | 'everysec';

/** The service starts in about 1–2 s here (tsx compiles on the fly); 2 cores are shared. */
const SERVICE_READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 50;
/** Keeps the tail of the service's output for a failure message, not the whole run. */
const SERVICE_OUTPUT_KEPT_CHARS = 20_000;
/** A supervisor (systemd, Kubernetes) would restart a dead Redis; this is its pause. */
const SUPERVISOR_RESTART_DELAY_MS = 200;
const SUPERVISOR_RESTARTS_MAX = 50;

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every child this module started, killed if the test process exits first (no orphans). */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export interface SystemOptions {
  dataDir: string;
  appendfsync: Appendfsync;
  ledgerName: string;
  /**
   * The default deployment: no REDIS_URL, the service runs its own redis-server under the data
   * dir (no proxy then, and Redis is only restarted with the service).
   */
  embedded?: boolean;
  /** More environment for the service process (e.g. LEDGER_CDC_AMQP_URL); it wins over ours. */
  env?: Record<string, string>;
}

export class ServiceProcess {
  private output = '';
  private constructor(readonly child: ChildProcess, readonly base: string) {
    const keep = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-SERVICE_OUTPUT_KEPT_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static spawn(port: number, env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', ...env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track(child);
    return new ServiceProcess(child, `http://127.0.0.1:${port}`);
  }

  get log(): string {
    return this.output;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  async waitReady(timeoutMs = SERVICE_READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`service exited: ${this.output}`);
      try {
        const res = await fetch(`${this.base}/readyz`, { signal: AbortSignal.timeout(2000) });
        last = `${res.status} ${await res.text()}`;
        if (res.status === 200) return;
      } catch (error) {
        last = String(error);
      }
      await sleep(READY_POLL_MS);
    }
    throw new Error(`service not ready after ${timeoutMs} ms (last: ${last}); ` +
      `output: ${this.output}`);
  }

  async kill(): Promise<void> {
    if (this.exited) return;
    const exit = new Promise((ok) => this.child.once('exit', ok));
    this.child.kill('SIGKILL');
    await exit;
  }
}

export class BankSystem {
  redis!: EmbeddedRedis;
  proxy!: FaultProxy;
  service!: ServiceProcess;
  /** Every repair the embedded Redis reported at a start, in order. */
  readonly repairs: string[][] = [];
  redisStarts = 0;
  supervisorRestarts = 0;
  private servicePort = 0;
  private supervising = false;
  private restarting: Promise<void> | undefined;

  private constructor(readonly options: SystemOptions) {}

  static async start(options: SystemOptions): Promise<BankSystem> {
    const system = new BankSystem(options);
    if (!options.embedded) {
      await system.startRedis();
      system.proxy = await FaultProxy.start(system.redis.port);
    }
    system.servicePort = await freePort();
    await system.startService();
    return system;
  }

  get base(): string {
    return `http://127.0.0.1:${this.servicePort}`;
  }

  /** Starts redis-server on the same data dir (and port, after the first start). */
  async startRedis(): Promise<EmbeddedRedis> {
    const port = this.redisStarts === 0 ? undefined : this.redis.port;
    this.redis = await startEmbeddedRedis({ dataDir: this.options.dataDir, port,
      appendfsync: this.options.appendfsync });
    this.redisStarts += 1;
    track(this.redis.child);
    const repairs = (this.redis as { repairs?: readonly string[] }).repairs;
    this.repairs.push(repairs === undefined ? ['<EmbeddedRedis has no repairs field>']
      : [...repairs]);
    if (this.supervising) this.watchRedis();
    return this.redis;
  }

  async killRedis(): Promise<void> {
    const redis = this.redis;
    this.continueRedis(); // SIGKILL works on a stopped process too; SIGCONT keeps it simple
    await redis.kill();
  }

  async crashRedis(downMs: number): Promise<void> {
    await this.killRedis();
    await sleep(downMs);
    await this.startRedis();
  }

  stopRedis(): void {
    process.kill(this.redis.child.pid as number, 'SIGSTOP');
  }

  continueRedis(): void {
    const pid = this.redis.child.pid;
    if (pid !== undefined && this.redis.child.exitCode === null) process.kill(pid, 'SIGCONT');
  }

  /** Restart Redis whenever it exits on its own (e.g. an AOF write error under `always`). */
  superviseRedis(): void {
    this.supervising = true;
    this.watchRedis();
  }

  private watchRedis(): void {
    const redis = this.redis;
    redis.child.once('exit', (_code, signal) => {
      if (!this.supervising || signal === 'SIGKILL' || signal === 'SIGTERM') return;
      if (this.supervisorRestarts >= SUPERVISOR_RESTARTS_MAX) return;
      this.supervisorRestarts += 1;
      this.restarting = this.restartSupervised();
    });
  }

  private async restartSupervised(): Promise<void> {
    for (let i = 0; i < SUPERVISOR_RESTARTS_MAX; i++) {
      await sleep(SUPERVISOR_RESTART_DELAY_MS);
      try {
        await this.startRedis();
        return;
      } catch { /* e.g. still no space for its files: try again */ }
    }
  }

  /** Stops supervising and waits for a restart in progress, so the caller owns Redis again. */
  async unsupervise(): Promise<void> {
    this.supervising = false;
    await this.restarting;
  }

  async startService(): Promise<void> {
    this.service = ServiceProcess.spawn(this.servicePort, {
      ...(this.options.embedded ? { REDIS_URL: '', LEDGER_DATA_DIR: this.options.dataDir }
        : { REDIS_URL: this.proxy.url }),
      LEDGER_NAME: this.options.ledgerName,
      // Authentication on, as in production; also keeps the embedded case from making a dev key.
      LEDGER_API_KEYS: API_KEYS_ENV,
      LEDGER_APPENDFSYNC: this.options.appendfsync,
      ...this.options.env,
    });
    await this.service.waitReady();
  }

  /**
   * A crash of Redis with a restart on the same AOF. Embedded, the service is killed with its
   * Redis (-9 both) and started again, as a supervisor would after a host crash.
   */
  async crashAndRestart(downMs: number): Promise<void> {
    if (!this.options.embedded) return this.crashRedis(downMs);
    await this.service.kill();
    killEmbeddedRedis(this.options.dataDir);
    await sleep(downMs);
    await this.startService();
  }

  /** A direct connection to Redis (not through the proxy), for checks and CONFIG. */
  async admin<T>(use: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = new Redis(this.redis.url, { lazyConnect: true, maxRetriesPerRequest: 0,
      enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: 2000,
      retryStrategy: () => null });
    redis.on('error', () => {});
    try {
      await redis.connect();
      return await use(redis);
    } finally {
      redis.disconnect();
    }
  }

  async close(): Promise<void> {
    this.supervising = false;
    await this.restarting?.catch(() => {});
    await this.service?.kill();
    await this.proxy?.close();
    if (this.redis) await this.killRedis();
    if (this.options.embedded) killEmbeddedRedis(this.options.dataDir);
  }
}

/** The redis-server a service started under `dataDir` (its pid file), killed with -9. */
function killEmbeddedRedis(dataDir: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, 'redis.pid'), 'utf8').trim());
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server')) return;
  } catch {
    return; // no pid file, or that process is gone
  }
  process.kill(pid, 'SIGKILL');
}
