/**
 * The archiver on a thread of its own (node:worker_threads), as the service runs it: copying a
 * page (decoding Redis's replies, hashing, building PostgreSQL's rows) is CPU work, and on the
 * service's event loop it took turns with the HTTP requests; the bench measured single
 * transfers at 0.56x with the archiver on. The thread has its own event loop, its own Redis
 * connection and PostgreSQL pool; what it does reaches the service's metrics and log as
 * messages, and how busy the service's event loop is reaches it (the archiver yields to a busy
 * service: archiver.ts ArchiveYield). A thread that fails (an error at start, Redis down
 * before it connected) is started again after ARCHIVE_THREAD_RESTART_MS, until the service
 * stops it.
 */
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { limits } from '../config/limits.js';
import type { Config } from '../config/env.js';
import type { ScriptObserver } from '../ledger/scripts.js';
import type { ArchiveErrorReason, ArchiveObserver } from './archiver.js';

/** What the thread is started with (workerData): plain data, copied to it. */
export interface ThreadData {
  config: Config;
  /** The Redis URL the service uses (the embedded Redis's, when REDIS_URL is unset). */
  url: string;
}

/**
 * A message to the thread: stop, or how busy the service's event loop was over the last
 * ARCHIVE_INTERVAL_MS (0..1), for the archiver to yield to it (archiver.ts ArchiveYield).
 */
export type ToThread = 'stop' | { type: 'load'; utilisation: number };

/** A message from the thread. */
export type ThreadMessage =
  | { type: 'archived'; records: number; rejections: number }
  | { type: 'freed'; records: number }
  | { type: 'yielded' }
  | { type: 'error'; reason: ArchiveErrorReason }
  | { type: 'lag'; records: number; seconds: number; decided: number }
  | { type: 'script'; script: string; outcome: string; seconds: number }
  | { type: 'warn'; message: string; error: string }
  | { type: 'stopped' };

export interface ArchiverThreadOptions extends ThreadData {
  observer?: ArchiveObserver;
  scripts?: ScriptObserver;
  /** A page not copied, a PostgreSQL connection dropped, the thread failed: for the log. */
  warn: (message: string, error: string) => void;
}

/**
 * The entry point, next to this file: .js once built. Run from source (tsx), it is .ts, and a
 * worker thread does not inherit the loader tsx registered in this one (`--import tsx` in its
 * flags is not enough on Node 20): the thread registers it first.
 */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(`./thread-main${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url);

function spawnThread(data: ThreadData): Worker {
  if (!FROM_SOURCE) return new Worker(ENTRY, { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(`import(${JSON.stringify(tsx)}).then(({ register }) => { register(); ` +
    `return import(${JSON.stringify(ENTRY.href)}); });`, { eval: true, workerData: data });
}

export class ArchiverThread {
  private worker: Worker | undefined;
  private stopping = false;
  private restart: NodeJS.Timeout | undefined;
  private load: NodeJS.Timeout | undefined;

  constructor(private readonly options: ArchiverThreadOptions) {}

  start(): void {
    if (this.stopping || this.worker !== undefined) return;
    const { config, url } = this.options;
    const worker = spawnThread({ config, url });
    this.worker = worker;
    worker.on('message', (message: ThreadMessage) => this.receive(message));
    // This thread's event loop is the one serving requests: how busy it was, sent at once (the
    // thread's first pass knows it) and then each interval.
    this.sendLoad(worker);
    clearInterval(this.load);
    this.load = setInterval(() => this.sendLoad(worker), limits.ARCHIVE_INTERVAL_MS);
    this.load.unref();
    worker.on('error', (error) => this.options.warn('archive: the archiver\'s thread failed; ' +
      'it starts again', String(error?.stack ?? error)));
    worker.on('exit', () => {
      if (this.worker === worker) {
        this.worker = undefined;
        clearInterval(this.load);
      }
      if (!this.stopping) {
        this.restart = setTimeout(() => this.start(), limits.ARCHIVE_THREAD_RESTART_MS);
        this.restart.unref();
      }
    });
  }

  /** Asks the thread to finish its page and close its connections; ends it if it does not. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restart);
    clearInterval(this.load);
    const worker = this.worker;
    if (worker === undefined) return;
    const exited = new Promise<void>((ok) => worker.once('exit', () => ok()));
    worker.postMessage('stop' satisfies ToThread);
    const timer = setTimeout(() => void worker.terminate(), limits.ARCHIVE_THREAD_STOP_MS);
    await exited;
    clearTimeout(timer);
  }

  /** This event loop's utilisation since the last sample (at first: since construction). */
  private sampled: EventLoopUtilization = performance.eventLoopUtilization();

  private sendLoad(worker: Worker): void {
    const now = performance.eventLoopUtilization();
    const load: ToThread = { type: 'load',
      utilisation: performance.eventLoopUtilization(now, this.sampled).utilization };
    this.sampled = now;
    worker.postMessage(load);
  }

  private receive(m: ThreadMessage): void {
    const o = this.options.observer ?? {};
    switch (m.type) {
      case 'archived': o.archived?.(m.records, m.rejections); break;
      case 'freed': o.freed?.(m.records); break;
      case 'yielded': o.yielded?.(); break;
      case 'error': o.error?.(m.reason); break;
      case 'lag': o.lag?.(m.records, m.seconds, m.decided); break;
      case 'script': this.options.scripts?.scriptCompleted?.(m.script, m.outcome, m.seconds);
        break;
      case 'warn': this.options.warn(m.message, m.error); break;
      case 'stopped': break;
    }
  }
}
