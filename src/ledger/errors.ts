/**
 * The ledger's own failures. Redis's (unavailable, cannot persist) are classified in
 * src/redis/errors.ts.
 */

/**
 * A reply that answers another command: the connection was desynced and has been reset. An
 * unknown outcome (src/redis/errors.ts matches it by name): the client retries with the same id.
 */
export class ReplyMismatchError extends Error {
  override name = 'ReplyMismatchError';
}

/** A script reply that breaks its contract, or stored data that breaks ours: never user input. */
export class LedgerInvariantError extends Error {
  override name = 'LedgerInvariantError';
}
