/**
 * The hot path of metrics: what runs on every script call, transfer and HTTP response. Each
 * recorder keeps its series (lean.ts) in a small cache, built once per label set and never
 * per request, so a recording is a map lookup or two and one observe/inc.
 */
import { isPersistenceError, isUnavailableError } from '../ledger/errors.js';
import type { LedgerObserver, TransferOutcome } from '../ledger/ledger.js';
import { READ_ROUTES, type ReadObserver } from '../ledger/replicas.js';
import { REJECTION_REASONS, type RejectionReason } from '../ledger/status.js';
import type { HistogramChild as Child, LeanCounter, LeanHistogram } from './lean.js';

type ScriptHistogram = LeanHistogram<'script' | 'outcome'>;
type HttpHistogram = LeanHistogram<'method' | 'route' | 'status_class'>;

/** A metrics failure is logged, never thrown into a transfer (see ScriptObserver). */
export function scriptRecorder(
  histogram: ScriptHistogram,
  onError: (error: unknown) => void,
): LedgerObserver {
  const children = new Map<string, Map<string, Child>>();
  return {
    scriptCompleted(script, outcome, seconds) {
      try {
        let byOutcome = children.get(script);
        if (byOutcome === undefined) children.set(script, (byOutcome = new Map()));
        let child = byOutcome.get(outcome);
        if (child === undefined) {
          child = histogram.child({ script, outcome });
          byOutcome.set(outcome, child);
        }
        child.observe(seconds);
      } catch (error) {
        onError(error);
      }
    },
  };
}

/** Where reads were served (replicas.ts); every series exists from the start at 0. */
export function readRecorder(counter: LeanCounter<'route'>): Required<ReadObserver> {
  const children = new Map(READ_ROUTES.map((route) => [route, counter.child({ route })]));
  return { readRouted: (route) => children.get(route)?.inc() };
}

/** The `outcome` label of ledger_transfers_total: a closed set. */
export const TRANSFER_OUTCOMES = ['committed', 'replayed', 'rejected', 'conflict', 'unknown',
  'persistence_failed', 'error'] as const;

export interface TransferRecorder {
  /** A transfer the ledger decided (or found decided): counted by outcome. */
  transferDecided(outcome: TransferOutcome): void;
  /** The ledger threw: counted (unknown outcome, persistence refused, or a bug), then rethrown. */
  transferFailed(error: unknown): never;
}

export function transferRecorder(counter: LeanCounter<'outcome' | 'reason'>): TransferRecorder {
  // Every series exists from the start at 0, so rate() and the dashboard see it at once.
  const child = (outcome: string, reason?: RejectionReason) =>
    counter.child(reason === undefined ? { outcome } : { outcome, reason });
  const committed = child('committed');
  const replayed = child('replayed');
  const conflict = child('conflict');
  const unknown = child('unknown');
  const persistenceFailed = child('persistence_failed');
  const failed = child('error');
  const rejected = new Map(REJECTION_REASONS.map((reason) => [reason, child('rejected', reason)]));
  return {
    transferDecided(outcome) {
      if (outcome.kind === 'conflict') conflict.inc();
      else if (outcome.replayed) replayed.inc();
      else if (outcome.transfer.status === 'committed') committed.inc();
      else rejected.get(outcome.transfer.reason as RejectionReason)?.inc();
    },
    transferFailed(error): never {
      if (isPersistenceError(error)) persistenceFailed.inc();
      else if (isUnavailableError(error)) unknown.inc();
      else failed.inc();
      throw error;
    },
  };
}

/** Routes that matched nothing (404s) share one label value, so a scan cannot add series. */
export const UNMATCHED_ROUTE = 'unmatched';
const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export interface HttpRecorder {
  /** `route` is the route pattern (`/transfers/:id`), undefined when nothing matched. */
  record(method: string, route: string | undefined, statusCode: number, seconds: number): void;
}

export function httpRecorder(histogram: HttpHistogram): HttpRecorder {
  // route → method → one child per status class, created when first seen.
  const children = new Map<string, Map<string, Array<Child | undefined>>>();
  return {
    record(method, route = UNMATCHED_ROUTE, statusCode, seconds) {
      let byMethod = children.get(route);
      if (byMethod === undefined) children.set(route, (byMethod = new Map()));
      let byClass = byMethod.get(method);
      if (byClass === undefined) byMethod.set(method, (byClass = []));
      const hundreds = Math.floor(statusCode / 100);
      const index = hundreds >= 1 && hundreds <= 5 ? hundreds : 0;
      let child = byClass[index];
      if (child === undefined) {
        child = histogram.child({ method, route, status_class: STATUS_CLASSES[index] });
        byClass[index] = child;
      }
      child.observe(seconds);
    },
  };
}
