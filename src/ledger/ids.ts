import { v7 } from 'uuid';

/**
 * The id of an account created without one: a UUID v7 (RFC 9562), which sorts by creation time.
 * Its time is the ledger's clock, not the machine's, so that it is the instant of the account's
 * `createdAt` (and follows a test's fixed clock); the other bits are random.
 */
export function uuidv7(nowMs: number): string {
  return v7({ msecs: nowMs });
}
