/**
 * LEDGER_WORKERS > 1, on node:cluster. The primary forks the workers, keeps that many running,
 * gathers their metrics for whichever of them serves `GET /metrics`, and stops them; each worker
 * is the service of server.ts on the shared port (the primary accepts connections and hands them
 * round-robin to the workers). With server.ts this is the process layer, but it never touches
 * the `process` global: server.ts hands it the command line, the environment and the signals,
 * and decides when to exit.
 *
 * IPC, serialization `advanced` (so a NaN or an Infinity in a metric survives):
 * - worker → primary `{ type: 'ledger:gather', id }`: a scrape wants the whole service.
 * - primary → each listening worker `{ type: 'ledger:collect', gather }`.
 * - worker → primary `{ type: 'ledger:collected', gather, metrics | error }`: its registry.
 * - primary → the asking worker `{ type: 'ledger:gathered', id, text | error }`, once every
 *   worker asked has answered or METRICS_GATHER_TIMEOUT_MS has passed.
 * Shutdown needs no message: the primary sends SIGTERM, as an operator would.
 */
import cluster, { type Worker } from 'node:cluster';
import { limits } from './config/limits.js';
import { ClusterMetrics, type MetricJson } from './metrics/cluster.js';
import { METRICS_GATHER_TIMEOUT_MS } from './metrics/constants.js';

/** Set by the primary in each worker's environment; not configuration. */
export const WORKER_ENV = { slot: 'LEDGER_WORKER_SLOT', redisUrl: 'LEDGER_WORKER_REDIS_URL' };

type Message =
  | { type: 'ledger:gather'; id: number }
  | { type: 'ledger:collect'; gather: number }
  | { type: 'ledger:collected'; gather: number; metrics?: MetricJson[]; error?: string }
  | { type: 'ledger:gathered'; id: number; text?: string; error?: string };

function isMessage(value: unknown): value is Message {
  const type = (value as { type?: unknown } | null)?.type;
  return typeof type === 'string' && type.startsWith('ledger:');
}

/** A closed channel (the other side exited) is not an error here: exits are handled apart. */
function send(worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message, undefined, () => {});
}

// ---- the primary ----

export interface PrimaryOptions {
  workers: number;
  /** Each worker's command line: the primary's own (under `npm start`, tsx's loader with it). */
  exec: string;
  execArgv: string[];
  args: string[];
  /** The Redis every worker uses: the embedded one, or REDIS_URL. */
  redisUrl: string;
  log(message: string): void;
}

export interface Primary {
  /** Every worker listens; rejects when one exits before it does (a busy port, say). */
  readonly listening: Promise<void>;
  /**
   * SIGTERM to every worker (each closes gracefully), SIGKILL to any still running after
   * `waitMs`; no worker is replaced from now on. True when every worker exited with code 0.
   */
  stop(waitMs: number): Promise<boolean>;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  listening: boolean;
}

/**
 * When the next replacement may start: at once while fewer than WORKER_RESTARTS_MAX started
 * within the last WORKER_RESTART_WINDOW_MS (`starts`: their times, ascending, future ones
 * included), else when the oldest of the last WORKER_RESTARTS_MAX leaves the window.
 */
export function nextStartAt(starts: readonly number[], now: number): number {
  const max = limits.WORKER_RESTARTS_MAX;
  const recent = starts.filter((t) => t > now - limits.WORKER_RESTART_WINDOW_MS);
  if (recent.length < max) return Math.max(now, recent.at(-1) ?? now);
  return (recent[recent.length - max] as number) + limits.WORKER_RESTART_WINDOW_MS;
}

function exitOf(worker: Worker): Promise<number | null> {
  const child = worker.process;
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((ok) => child.once('exit', (code) => ok(code)));
}

export function startPrimary(options: PrimaryOptions): Primary {
  cluster.setupPrimary({ exec: options.exec, execArgv: options.execArgv, args: options.args,
    serialization: 'advanced' });
  const slots: Slot[] = Array.from({ length: options.workers },
    (_, i) => ({ index: i + 1, worker: undefined, listening: false }));
  const metrics = new ClusterMetrics();
  const gatherer = createGatherer(slots, metrics);
  let started = false;
  let stopping = false;
  let starts: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let listened: { ok: () => void; fail: (error: Error) => void } | undefined;
  const listening = new Promise<void>((ok, fail) => { listened = { ok, fail }; });

  const fork = (slot: Slot) => {
    const worker = cluster.fork({ [WORKER_ENV.slot]: String(slot.index),
      [WORKER_ENV.redisUrl]: options.redisUrl });
    Object.assign(slot, { worker, listening: false });
    worker.on('error', (error) => options.log(`worker ${slot.index}: ${error.message}`));
    worker.on('message', (message: unknown) => gatherer.onMessage(worker, message));
    worker.on('listening', () => {
      slot.listening = true;
      if (!started && slots.every((s) => s.listening)) {
        started = true;
        listened?.ok();
      }
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, signal ?? `code ${code}`));
  };

  const onExit = (slot: Slot, worker: Worker, how: string) => {
    metrics.retire(worker.id);
    if (slot.worker === worker) Object.assign(slot, { worker: undefined, listening: false });
    const who = `worker ${slot.index} (pid ${worker.process.pid})`;
    if (stopping) return;
    if (!started) {
      listened?.fail(new Error(`${who} exited (${how}) before listening; its error is above`));
      return;
    }
    const now = Date.now();
    const at = nextStartAt(starts, now);
    starts = [...starts.filter((t) => t > now - limits.WORKER_RESTART_WINDOW_MS), at];
    options.log(`${who} exited (${how}); ` + (at === now ? 'replacing it'
      : `replacing it in ${at - now} ms (${limits.WORKER_RESTARTS_MAX} replacements within ` +
        `${limits.WORKER_RESTART_WINDOW_MS} ms)`));
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopping) return;
      metrics.restarted();
      fork(slot);
    }, at - now);
    timers.add(timer);
  };

  for (const slot of slots) fork(slot);
  return {
    listening,
    async stop(waitMs) {
      stopping = true;
      for (const timer of timers) clearTimeout(timer);
      const workers = slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
      for (const worker of workers) worker.process.kill('SIGTERM');
      const deadline = setTimeout(() => {
        for (const worker of workers) worker.process.kill('SIGKILL');
      }, waitMs);
      const codes = await Promise.all(workers.map(exitOf));
      clearTimeout(deadline);
      return codes.every((code) => code === 0);
    },
  };
}

interface Gathering {
  readonly asked: readonly Worker[];
  readonly answers: Map<number, MetricJson[]>;
  replied: number;
  finish(): void;
}

/** The primary's side of `GET /metrics`: ask every listening worker, answer the one asking. */
function createGatherer(slots: readonly Slot[], metrics: ClusterMetrics) {
  let next = 0;
  const pending = new Map<number, Gathering>();

  const gather = (requester: Worker, id: number) => {
    const gatherId = next++;
    const asked = slots.flatMap((s) => (s.listening && s.worker ? [s.worker] : []));
    const answers = new Map<number, MetricJson[]>();
    const finish = () => {
      clearTimeout(timer);
      pending.delete(gatherId);
      // A worker that exited meanwhile is counted by what it left (ClusterMetrics.retire) only.
      // In slot order (as asked), so each scrape lists per-worker series the same way.
      const alive = new Set(slots.map((s) => s.worker?.id));
      const fresh = new Map(asked.flatMap((w) => {
        const metrics = answers.get(w.id);
        return alive.has(w.id) && metrics !== undefined ? [[w.id, metrics] as const] : [];
      }));
      const late = asked.filter((w) => alive.has(w.id) && !fresh.has(w.id)).map((w) => w.id);
      metrics.render(gatherId, fresh, late).then(
        (text) => send(requester, { type: 'ledger:gathered', id, text }),
        (error: unknown) => send(requester, { type: 'ledger:gathered', id,
          error: error instanceof Error ? error.message : String(error) }));
    };
    const timer = setTimeout(finish, METRICS_GATHER_TIMEOUT_MS);
    pending.set(gatherId, { asked, answers, replied: 0, finish });
    for (const worker of asked) send(worker, { type: 'ledger:collect', gather: gatherId });
    if (asked.length === 0) finish();
  };

  return {
    onMessage(worker: Worker, message: unknown) {
      if (!isMessage(message)) return;
      if (message.type === 'ledger:gather') gather(worker, message.id);
      if (message.type !== 'ledger:collected') return;
      const gathering = pending.get(message.gather);
      if (gathering === undefined) return; // too late: that scrape was answered without it
      if (message.metrics !== undefined) gathering.answers.set(worker.id, message.metrics);
      gathering.replied++;
      if (gathering.replied === gathering.asked.length) gathering.finish();
    },
  };
}

// ---- a worker ----

export interface WorkerContext {
  /** 1…LEDGER_WORKERS; a replacement takes the slot of the worker it replaces. */
  slot: number;
  redisUrl: string;
}

export function workerContext(env: NodeJS.ProcessEnv): WorkerContext {
  const slot = Number(env[WORKER_ENV.slot]);
  const redisUrl = env[WORKER_ENV.redisUrl];
  if (!Number.isInteger(slot) || slot < 1 || redisUrl === undefined) {
    throw new Error('a cluster worker started without its slot and Redis URL from the primary');
  }
  return { slot, redisUrl };
}

export interface WorkerChannel {
  /** The whole service's metrics as Prometheus text, from the primary. */
  gather(): Promise<string>;
  /** Answers the primary's collects with this (the worker's registry as JSON). */
  answerCollects(collect: () => Promise<unknown>): void;
}

export function workerChannel(): WorkerChannel {
  const worker = cluster.worker;
  if (worker === undefined) throw new Error('workerChannel() outside a cluster worker');
  let next = 0;
  let collect: (() => Promise<unknown>) | undefined;
  const waiting = new Map<number, (reply: { text?: string; error?: string }) => void>();
  worker.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.type === 'ledger:gathered') waiting.get(message.id)?.(message);
    if (message.type !== 'ledger:collect') return;
    const gather = message.gather;
    if (collect === undefined) {
      send(worker, { type: 'ledger:collected', gather, error: 'metrics not created yet' });
      return;
    }
    collect().then(
      (metrics) => send(worker, { type: 'ledger:collected', gather,
        metrics: metrics as MetricJson[] }),
      (error: unknown) => send(worker, { type: 'ledger:collected', gather, error: String(error) }));
  });
  // The primary answers within METRICS_GATHER_TIMEOUT_MS even when workers do not; past twice
  // that, it is the primary that is stuck, and the scrape fails (500) rather than hang.
  const gather = () => new Promise<string>((ok, fail) => {
    const id = next++;
    const timer = setTimeout(() => {
      waiting.delete(id);
      fail(new Error(`metrics: the primary did not answer within ` +
        `${2 * METRICS_GATHER_TIMEOUT_MS} ms`));
    }, 2 * METRICS_GATHER_TIMEOUT_MS);
    timer.unref();
    waiting.set(id, (reply) => {
      clearTimeout(timer);
      waiting.delete(id);
      if (reply.text !== undefined) ok(reply.text);
      else fail(new Error(`metrics: gathering failed in the primary: ${reply.error}`));
    });
    send(worker, { type: 'ledger:gather', id });
  });
  return { gather, answerCollects: (fn) => { collect = fn; } };
}
