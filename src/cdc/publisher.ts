/**
 * Change data out (LEDGER_CDC_AMQP_URL): every committed record of every ledger, in seq order
 * per ledger, published to the broker at least once. Each instance runs one; a lock per ledger
 * (`<prefix>:{<ledger>}:lock:cdc`) lets one of them publish that ledger at a time, so the order
 * holds and the work is shared ledger by ledger. The follower (src/ledger/follower.ts) saves a
 * ledger's position only after the broker confirmed the page: a crash repeats, never skips.
 */
import { limits } from '../config/limits.js';
import type { LedgerDirectory } from '../ledger/directory.js';
import { EveryLedger } from '../ledger/every-ledger.js';
import { type FollowerProgress, JournalFollower } from '../ledger/follower.js';
import { AmqpSink, CdcBackoffError, type CdcObserver } from './amqp.js';

/** The follower's name: its lock `lock:cdc` and its position in the positions hash. */
export const CDC_FOLLOWER = 'cdc';

export interface CdcPublisherOptions {
  directory: LedgerDirectory;
  url: string;
  exchange: string;
  observer?: CdcObserver;
  /** A ledger's pass failed (broker or Redis down): logged; the next pass tries again. */
  onError: (error: unknown) => void;
  intervalMs?: number;
}

export class CdcPublisher {
  private readonly sink: AmqpSink;
  private readonly every: EveryLedger<JournalFollower, number>;
  /** The ledgers this instance publishes now, and how far behind each is. */
  private readonly progress = new Map<string, FollowerProgress>();

  constructor(options: CdcPublisherOptions) {
    this.sink = new AmqpSink({ url: options.url, exchange: options.exchange,
      ...(options.observer === undefined ? {} : { observer: options.observer }) });
    this.every = new EveryLedger({
      directory: options.directory,
      intervalMs: options.intervalMs ?? limits.CDC_INTERVAL_MS,
      // Waiting out the reconnect pause is not a failure of its own.
      onError: (error) => { if (!(error instanceof CdcBackoffError)) options.onError(error); },
      make: (ledger) => new JournalFollower({ ledger, name: CDC_FOLLOWER, sink: this.sink,
        lockTtlMs: limits.CDC_LOCK_TTL_MS, pageSize: limits.CDC_PAGE_RECORDS_MAX,
        onProgress: (p) => {
          this.progress.set(p.ledger, p);
          // Now, not after the pass: a pass that cannot keep up goes on for a long time.
          options.observer?.lag?.(this.lagRecords(), this.lagSeconds());
        } }),
      afterPass: () => {
        options.observer?.lag?.(this.lagRecords(), this.lagSeconds());
        // Idle too, the broker connection is kept (or retried): see AmqpSink.ready.
        void this.sink.ready();
      },
      work: async (follower, ledger) => {
        try {
          return await follower.runOnce();
        } finally {
          // Another instance publishes this ledger: its lag is that instance's to report.
          if (!follower.holding) this.progress.delete(ledger.keys.ledger);
        }
      },
    });
  }

  start(): void {
    this.every.start();
  }

  /** Stops publishing (a page in flight is finished), releases the locks, closes the broker. */
  async stop(): Promise<void> {
    await this.every.stop();
    await this.sink.close();
  }

  /** One pass over every ledger (tests): the records published. */
  async publishOnce(): Promise<number> {
    return (await this.every.runOnce()).reduce((sum, n) => sum + n, 0);
  }

  /** Records committed and not yet published, summed over the ledgers this instance publishes. */
  lagRecords(): number {
    let sum = 0;
    for (const p of this.progress.values()) sum += p.lagRecords;
    return sum;
  }

  /** Age of the oldest record not yet published, over those ledgers (s; 0 when none). */
  lagSeconds(): number {
    let max = 0;
    for (const p of this.progress.values()) max = Math.max(max, p.lagSeconds);
    return max;
  }
}
