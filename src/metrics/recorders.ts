/**
 * The hot path of metrics: what runs on every script call, transfer and HTTP response. Each
 * recorder keeps its series (lean.ts) in a small cache, built once per label set and never
 * per request, so a recording is a map lookup or two and one observe/inc.
 */
import { isPersistenceError, isUnavailableError } from '../redis/errors.js';
import type { LedgerObserver } from '../ledger/types.js';
import { READ_ROUTES, type ReadObserver } from '../redis/replicas.js';
import { REJECTION_REASONS } from '../ledger/status.js';
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

/** How a failed write counts: Redis could not persist, the outcome is unknown, or a bug. */
function failureOutcome(error: unknown): 'persistence_failed' | 'unknown' | 'error' {
  if (isPersistenceError(error)) return 'persistence_failed';
  return isUnavailableError(error) ? 'unknown' : 'error';
}

/** The `outcome` label of ledger_transfers_total: a closed set. */
export const TRANSFER_OUTCOMES = ['committed', 'replayed', 'rejected', 'conflict', 'unknown',
  'persistence_failed', 'error'] as const;

/** The `outcome` label of ledger_account_creations_total: a closed set. */
export const ACCOUNT_OUTCOMES = ['created', 'replayed', 'conflict', 'unknown',
  'persistence_failed', 'error'] as const;

type DecisionObserver = Required<Pick<LedgerObserver,
  'transferDecided' | 'accountDecided' | 'batchRefused' | 'writeFailed' | 'holdsExpired'>>;

/** The `event` label of ledger_holds_total: a closed set. */
export const HOLD_EVENTS = ['opened', 'posted', 'voided', 'expired'] as const;

/**
 * Counts every outcome the ledger decides, and every write that failed (a failed batch counts
 * once, as one transfer: its transfers' outcomes are unknown together). Every series exists
 * from the start at 0, so rate() and the dashboard see it at once.
 */
export function decisionRecorder(transfers: LeanCounter<'outcome' | 'reason'>,
  accounts: LeanCounter<'outcome'>, refusals: LeanCounter<'kind'>,
  holdEvents: LeanCounter<'event'>, sweepCalls: { inc(): void }): DecisionObserver {
  const holds = new Map(HOLD_EVENTS.map((event) => [event, holdEvents.child({ event })]));
  const transfer = new Map(TRANSFER_OUTCOMES.filter((o) => o !== 'rejected')
    .map((outcome) => [outcome, transfers.child({ outcome })]));
  const rejected = new Map(REJECTION_REASONS.map((reason) =>
    [reason, transfers.child({ outcome: 'rejected', reason })]));
  const account = new Map(ACCOUNT_OUTCOMES.map((outcome) =>
    [outcome, accounts.child({ outcome })]));
  const refused = { atomicRejected: refusals.child({ kind: 'rejected' }),
    atomicExists: refusals.child({ kind: 'exists' }) };
  return {
    transferDecided(outcome) {
      if (outcome.kind === 'conflict') return void transfer.get('conflict')?.inc();
      if (outcome.replayed) return void transfer.get('replayed')?.inc();
      const t = outcome.transfer;
      if (t.reason !== undefined) {
        rejected.get(t.reason)?.inc();
        return;
      }
      transfer.get('committed')?.inc();
      if (t.kind === 'hold') holds.get('opened')?.inc();
      else if (t.kind === 'post') holds.get('posted')?.inc();
      else if (t.kind === 'void') holds.get('voided')?.inc();
    },
    holdsExpired(outcome) {
      sweepCalls.inc();
      if (outcome.released.length > 0) holds.get('expired')?.inc(outcome.released.length);
    },
    accountDecided(outcome) {
      account.get(outcome.kind)?.inc();
    },
    batchRefused(refusal) {
      refused[refusal.kind].inc();
    },
    writeFailed(operation, error) {
      const outcome = failureOutcome(error);
      (operation === 'account' ? account : transfer).get(outcome)?.inc();
    },
  };
}

/** Routes that matched nothing (404s) share one label value, so a scan cannot add series. */
export const UNMATCHED_ROUTE = 'unmatched';
/**
 * 422 is a business rejection (an outcome the client asked to have decided, recorded), not an
 * error: its own class, so an error rate over 4xx does not count a healthy ledger's refusals.
 */
const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx', '422'] as const;
const REJECTION_CLASS = 6;

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
      const index = statusCode === 422 ? REJECTION_CLASS : hundreds >= 1 && hundreds <= 5
        ? hundreds : 0;
      let child = byClass[index];
      if (child === undefined) {
        child = histogram.child({ method, route, status_class: STATUS_CLASSES[index] });
        byClass[index] = child;
      }
      child.observe(seconds);
    },
  };
}
