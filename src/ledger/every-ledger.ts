/**
 * Background work done for every ledger, one instance per ledger at a time: the hold sweeper
 * and the journal followers (the change-data publisher). One timer for all ledgers; each
 * ledger's worker is made once and kept (handles come and go in the directory's LRU, workers
 * and their locks stay), and the work of each ledger runs under that worker's own lock, so the
 * instances share the ledgers and no key is shared by all of them.
 */
import type { LedgerDirectory } from './directory.js';
import type { Ledger } from './ledger.js';

/** Runs `run` every `intervalMs`, one run at a time, from start() until stop(). */
export class Repeat {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly intervalMs: number, private readonly run: () => Promise<unknown>,
    private readonly onError: (error: unknown) => void) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stops, and waits for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.run().then(() => undefined, this.onError).finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }
}

export interface EveryLedgerOptions<W extends { stop(): Promise<void> }, R> {
  directory: LedgerDirectory;
  intervalMs: number;
  /** The worker of a ledger, made the first time the ledger is seen. */
  make: (ledger: Ledger) => W;
  /** One pass of a ledger's work. */
  work: (worker: W, ledger: Ledger) => Promise<R>;
  /** A ledger's failure (its node down): reported, and the other ledgers go on. */
  onError: (error: unknown) => void;
  /** After each pass over the ledgers (metrics). Must not throw. */
  afterPass?: () => void;
}

export class EveryLedger<W extends { stop(): Promise<void> }, R = unknown> {
  /** By ledger name. */
  private readonly workers = new Map<string, W>();
  private readonly repeat: Repeat;

  constructor(private readonly options: EveryLedgerOptions<W, R>) {
    this.repeat = new Repeat(options.intervalMs, () => this.runOnce(), options.onError);
  }

  start(): void {
    this.repeat.start();
  }

  /** Stops the timer, waits for a pass in progress, and stops every worker. */
  async stop(): Promise<void> {
    await this.repeat.stop();
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
  }

  /** One pass over every ledger the directory knows: each one's result (failures left out). */
  async runOnce(): Promise<R[]> {
    const ledgers = await this.options.directory.all();
    const results: R[] = [];
    await Promise.all(ledgers.map(async (ledger) => {
      try {
        results.push(await this.options.work(this.workerOf(ledger), ledger));
      } catch (error) {
        this.options.onError(error);
      }
    }));
    this.options.afterPass?.();
    return results;
  }

  private workerOf(ledger: Ledger): W {
    let worker = this.workers.get(ledger.keys.ledger);
    if (worker === undefined) {
      worker = this.options.make(ledger);
      this.workers.set(ledger.keys.ledger, worker);
    }
    return worker;
  }
}
