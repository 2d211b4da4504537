/**
 * Reads back what was acknowledged, while the faults happen: every PROBE_INTERVAL_MS it GETs
 * the writes most recently answered 201 (the clients' history, test/faults/bank/history.ts).
 * An acknowledged write must be visible to every later read through the service; a 404 means
 * the read went to a node without it (a deposed primary that has not yet learned it was
 * replaced, a replica, or the write was lost). Unavailable answers (5xx, timeouts) are fine:
 * only a wrong answer counts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type History, isWrite, type Op } from '../faults/bank/history.js';
import { opId } from '../faults/bank/reads.js';
import { AUTH_HEADER } from '../helpers/auth.js';

const PROBE_INTERVAL_MS = 100;
/** The newest acknowledged writes read back each round. */
const PROBED_PER_ROUND = 3;
const PROBE_TIMEOUT_MS = 2000;

export interface StaleRead {
  /** When the read was sent, and when its write had been acknowledged. */
  at: number;
  acknowledgedAt: number;
  id: string;
}

export class ReadProbe {
  readonly stale: StaleRead[] = [];
  reads = 0;
  private stopped = false;
  private readonly loop: Promise<void>;

  private constructor(private readonly base: string, private readonly history: History) {
    this.loop = this.run();
  }

  static start(base: string, history: History): ReadProbe {
    return new ReadProbe(base, history);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private newest(): Op[] {
    const acknowledged: Op[] = [];
    for (let i = this.history.ops.length - 1; i >= 0; i--) {
      const op = this.history.ops[i] as Op;
      if (isWrite(op.kind) && op.decided?.status === 201) acknowledged.push(op);
      if (acknowledged.length === PROBED_PER_ROUND) break;
    }
    return acknowledged;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await Promise.all(this.newest().map((op) => this.probe(op)));
      await sleep(PROBE_INTERVAL_MS);
    }
  }

  private async probe(op: Op): Promise<void> {
    const at = Date.now();
    const id = opId(op);
    try {
      const res = await fetch(`${this.base}/transfers/${encodeURIComponent(id)}`,
        { headers: AUTH_HEADER, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await res.arrayBuffer();
      this.reads += 1;
      if (res.status === 404) {
        this.stale.push({ at, acknowledgedAt: op.decided?.end ?? 0, id });
      }
    } catch { /* unavailable: not a wrong answer */ }
  }
}
