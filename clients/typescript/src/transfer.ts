/**
 * `transfer`: `POST /transfers` until the service gives a decided answer, following the rules of
 * docs/api.md ("Retrying safely"):
 *
 * - every attempt sends the same request: the same id, the same fields (the id is the
 *   idempotency key, so a retry can never apply a transfer twice);
 * - a decided answer ends it: 201 committed, 422 rejected (recorded under the id), 409 (the id was
 *   decided with other fields); any other 4xx refuses the request (fix it; nothing was recorded);
 * - an undecided one is retried: a network error, a timeout, 408, 429 or a 5xx (503: Redis
 *   unavailable, the outcome unknown), after the answer's `Retry-After` when it has one and
 *   otherwise after an exponential backoff with jitter;
 * - after `maxAttempts` it stops, undecided: the transfer may or may not be applied. Keep the
 *   request and send it again later (with this function): it will be decided exactly once.
 */
import type { CommittedTransfer, LedgerClient, paths, TransferRequest } from './client.js';

type Responses = paths['/transfers']['post']['responses'];
type ProblemOf<R> = R extends { content: { 'application/problem+json': infer P } } ? P : never;

/** A 422: the transfer is rejected, and recorded so (its `code` says why). */
export type TransferRejection = ProblemOf<Responses[422]>;
/** A 409: the id was decided before with other fields (a bug in the caller). */
export type TransferConflict = ProblemOf<Responses[409]>;
/** Any problem `POST /transfers` documents. */
export type TransferProblem = ProblemOf<Responses[keyof Responses]>;

type Decision =
  | { outcome: 'committed'; transfer: CommittedTransfer; replayed: boolean }
  | { outcome: 'rejected'; problem: TransferRejection; replayed: boolean }
  | { outcome: 'conflict'; problem: TransferConflict }
  /** Malformed, unauthorised, too large…: nothing recorded; the id is still free. */
  | { outcome: 'refused'; status: number; problem: TransferProblem | undefined };

/** What `transfer` ended with, and after how many attempts. */
export type TransferResult =
  (Decision | { outcome: 'undecided'; reason: string }) & { attempts: number };

export interface RetryOptions {
  /** Attempts in all, the first one included. Default 10. */
  maxAttempts?: number;
  /** The backoff before the second attempt; it doubles with each attempt. Default 100 ms. */
  baseDelayMs?: number;
  /** The backoff grows to this at most (a `Retry-After` may ask for longer). Default 10 s. */
  maxDelayMs?: number;
  /** One attempt's time limit, the answer's body included. Default 15 s. */
  attemptTimeoutMs?: number;
  /** How to wait (tests pass their own). */
  sleep?: (ms: number) => Promise<void>;
  /** 0 ≤ x < 1, for the jitter (tests pass their own). */
  random?: () => number;
  /** Told before each wait. */
  onRetry?: (retry: { attempt: number; delayMs: number; reason: string }) => void;
}

const DEFAULTS = {
  maxAttempts: 10,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  // Above the service's own 10 s request budget, so that it answers 503 before we give up.
  attemptTimeoutMs: 15_000,
  sleep: (ms: number) => new Promise<void>((resolve) => { setTimeout(resolve, ms); }),
  random: Math.random,
};

type Attempt =
  | { decided: true; decision: Decision }
  | { decided: false; reason: string; retryAfterMs: number | undefined };

export async function transfer(client: LedgerClient, request: TransferRequest,
  options: RetryOptions = {}): Promise<TransferResult> {
  const o = { ...DEFAULTS, ...options };
  let reason = 'no attempt made';
  for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
    const answer = await attemptOnce(client, request, o.attemptTimeoutMs);
    if (answer.decided) return { ...answer.decision, attempts: attempt };
    reason = answer.reason;
    if (attempt === o.maxAttempts) break;
    const delayMs = Math.max(answer.retryAfterMs ?? 0, backoffMs(attempt, o));
    o.onRetry?.({ attempt, delayMs, reason });
    await o.sleep(delayMs);
  }
  return { outcome: 'undecided', reason, attempts: o.maxAttempts };
}

/** Statuses whose answer is not a decision: try again. */
function isUndecided(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

async function attemptOnce(client: LedgerClient, request: TransferRequest,
  timeoutMs: number): Promise<Attempt> {
  let answer;
  try {
    answer = await client.POST('/transfers',
      { body: request, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    // The request may have been applied: only a decided answer says.
    const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { decided: false, reason: why, retryAfterMs: undefined };
  }
  const { data, error, response } = answer;
  const replayed = response.headers.get('Idempotent-Replayed') === 'true';
  if (data !== undefined) {
    return { decided: true, decision: { outcome: 'committed', transfer: data, replayed } };
  }
  if (isUndecided(response.status)) {
    return { decided: false, reason: `HTTP ${response.status}`,
      retryAfterMs: retryAfterMs(response.headers.get('Retry-After')) };
  }
  if (error?.status === 422) {
    return { decided: true, decision: { outcome: 'rejected', problem: error, replayed } };
  }
  if (error?.status === 409) {
    return { decided: true, decision: { outcome: 'conflict', problem: error } };
  }
  return { decided: true,
    decision: { outcome: 'refused', status: response.status, problem: error } };
}

/** Exponential, capped, half of it random: retries of many clients do not arrive together. */
function backoffMs(attempt: number, o: typeof DEFAULTS): number {
  const cap = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1));
  return cap / 2 + o.random() * (cap / 2);
}

/** `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from now. */
export function retryAfterMs(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
