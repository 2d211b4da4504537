/**
 * What the bank clients saw: every operation with every HTTP attempt, and the fault windows.
 * The checker and the table read only this and the service's HTTP API.
 */

/** How one HTTP attempt ended, as a client sees it. */
export type AnswerClass =
  | '201' | '200' | '409' | '422' // decided (200: an account that already existed)
  | '503 UNAVAILABLE' | '503 PERSISTENCE_FAILED' | '5xx other' // ambiguous: retry, same id
  | 'timeout' | 'connection error' // ambiguous too
  | 'unexpected'; // a 4xx no correct ledger gives to these requests

export interface Attempt {
  start: number;
  end: number;
  answer: AnswerClass;
  status: number;
  /** The problem `code`, for problem answers. */
  code?: string;
  text: string;
  replayed: boolean;
}

/** The writes a client makes and the checker verifies one by one (201 or 422 each). */
export const WRITE_KINDS = ['transfer', 'hold', 'post', 'void', 'reversal'] as const;
export type WriteKind = (typeof WRITE_KINDS)[number];
export type OpKind = 'setup' | WriteKind | 'replay' | 'conflict';

export type OpOutcome =
  | 'committed' | 'rejected' // a write (or set-up) decided: 201 / 422
  | 'replay identical' | 'replay differs' // a retry of a decided id with the same body
  | 'conflict 409' | 'conflict differs' // a decided id with another amount or metadata
  | 'unexpected' // an answer no correct ledger gives (see the attempt)
  | 'unresolved'; // still ambiguous

/** A transfer, or with `pending` a hold. */
export interface TransferBody {
  id: string;
  from: string;
  to: string;
  amount: string;
  metadata: Record<string, string>;
  pending?: true;
  timeoutSeconds?: number;
}

/** A post, void or reversal: its target (the hold, or the original) is named in the path. */
export interface TargetedBody {
  id: string;
  amount?: string;
  metadata: Record<string, string>;
}

export interface Op {
  kind: OpKind;
  /** POST path: /transfers, /transfers/{target}/post etc., or /accounts for set-up accounts. */
  path: string;
  body: TransferBody | TargetedBody | Record<string, unknown>;
  /** A post's or void's hold, a reversal's original (for replays: the replayed op's). */
  target?: string;
  /** For replays and conflicts: the op whose decided answer is compared. */
  of?: Op;
  attempts: Attempt[];
  outcome: OpOutcome;
  /** The deciding answer (201 or 422 for a write). */
  decided?: Attempt;
  start: number;
  end?: number;
  note?: string;
}

export interface FaultWindow {
  name: string;
  start: number;
  end?: number;
}

export class History {
  readonly ops: Op[] = [];
  readonly faults: FaultWindow[] = [];
  /** Writes decided by a client (201 or 422), for replays and conflicts to pick from. */
  readonly decided: Op[] = [];
  /** Holds committed, for posts and voids to pick from... */
  readonly holds: Op[] = [];
  /** ...mostly among these, by id: not yet seen settled by a client. */
  readonly openHolds = new Map<string, Op>();
  /** Transfers and posts committed by clients, for reversals to pick from. */
  readonly reversible: Op[] = [];

  add(op: Op): Op {
    this.ops.push(op);
    return op;
  }

  /** Opens a fault window; call the returned function when the fault is over. */
  fault(name: string): () => void {
    const window: FaultWindow = { name, start: Date.now() };
    this.faults.push(window);
    return () => { window.end ??= Date.now(); };
  }

  /** Runs `body` as one fault window. */
  async during<T>(name: string, body: () => Promise<T>): Promise<T> {
    const end = this.fault(name);
    try {
      return await body();
    } finally {
      end();
    }
  }

  inFault(from: number, to: number): boolean {
    return this.faults.some((f) => from <= (f.end ?? Number.POSITIVE_INFINITY) && to >= f.start);
  }

  /** Plain transfers (set-up funding included) decided so. */
  transfersWith(outcome: 'committed' | 'rejected'): Op[] {
    return this.ops.filter((op) => (op.kind === 'transfer' || op.kind === 'setup')
      && op.path === '/transfers' && op.outcome === outcome);
  }

  /** Every write (transfers, holds, posts, voids, reversals; set-up funding too) decided so. */
  writesWith(outcome: 'committed' | 'rejected'): Op[] {
    return this.ops.filter((op) => op.outcome === outcome && (isWrite(op.kind)
      || (op.kind === 'setup' && op.path === '/transfers')));
  }
}

export function isWrite(kind: OpKind): kind is WriteKind {
  return (WRITE_KINDS as readonly string[]).includes(kind);
}

/** A write's kind as the ledger records it (set-up funding is a transfer). */
export function writeKind(op: Op): WriteKind {
  return isWrite(op.kind) ? op.kind : 'transfer';
}

export function isDecided(answer: AnswerClass): boolean {
  return answer === '201' || answer === '200' || answer === '409' || answer === '422';
}

export function isAmbiguous(answer: AnswerClass): boolean {
  return answer.startsWith('503') || answer === '5xx other' || answer === 'timeout'
    || answer === 'connection error';
}

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
