/**
 * Long polls of the journal (`GET /journal?wait=`): a request waits until its ledger's journal
 * has a record after the one it named. However many requests wait on a ledger, one loop per
 * ledger watches it: every JOURNAL_POLL_INTERVAL_MS one read of the journal's newest id (the
 * primary's), and every waiter whose seq is below it is woken. The loop stops when nobody waits.
 * A commit is seen within one interval, far inside the contract's 100 ms, for ~50 cheap reads a
 * second per watched ledger, whether one client or a thousand wait.
 */
import { limits } from '../config/limits.js';
import type { Ledger } from './ledger.js';

interface Waiter {
  after: bigint;
  wake: () => void;
}

interface Watched {
  ledger: Ledger;
  waiters: Set<Waiter>;
}

export class JournalWatch {
  private readonly watched = new Map<string, Watched>();
  private closing = false;

  constructor(private readonly onError: (error: unknown) => void = () => {},
    private readonly intervalMs: number = limits.JOURNAL_POLL_INTERVAL_MS) {}

  /**
   * Resolves once `ledger`'s journal has a record after seq `after`, or after `timeoutMs`, or
   * when `signal` aborts (the client went away), or when the watch closes (the service stops):
   * the caller reads the journal again in every case.
   */
  wait(ledger: Ledger, after: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closing || timeoutMs <= 0 || signal?.aborted) return Promise.resolve();
    const name = ledger.keys.ledger;
    let watched = this.watched.get(name);
    const start = watched === undefined;
    if (watched === undefined) {
      watched = { ledger, waiters: new Set() };
      this.watched.set(name, watched);
    }
    const entry = watched;
    const done = new Promise<void>((resolve) => {
      const waiter: Waiter = { after: BigInt(after), wake: () => finish() };
      const timer = setTimeout(() => finish(), timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        entry.waiters.delete(waiter);
        resolve();
      };
      signal?.addEventListener('abort', finish, { once: true });
      entry.waiters.add(waiter);
    });
    // After the waiter is in: the loop ends as soon as it finds nobody waiting.
    if (start) void this.loop(name, entry);
    return done;
  }

  /** Whether close() was called: a waiter reads once more and answers. */
  get closed(): boolean {
    return this.closing;
  }

  /** Wakes every waiter and stops watching (the service is closing). */
  close(): void {
    this.closing = true;
    for (const watched of this.watched.values()) {
      for (const waiter of [...watched.waiters]) waiter.wake();
    }
  }

  private async loop(name: string, watched: Watched): Promise<void> {
    try {
      while (watched.waiters.size > 0 && !this.closing) {
        await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
        let head: bigint;
        try {
          head = BigInt(await watched.ledger.journalHead());
        } catch (error) {
          // Redis unreachable: the waiters time out and read again (their read answers 503).
          this.onError(error);
          continue;
        }
        for (const waiter of [...watched.waiters]) if (waiter.after < head) waiter.wake();
      }
    } finally {
      this.watched.delete(name);
      // A waiter added after the last check but before the delete would have no loop.
      if (watched.waiters.size > 0 && !this.closing) {
        this.watched.set(name, watched);
        void this.loop(name, watched);
      }
    }
  }
}
