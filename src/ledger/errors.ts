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

/**
 * A post, void or reversal found its target's accounts different at every attempt: the target
 * was read on one Redis node and the script ran on another (a failover in progress), not a bug.
 * An unknown outcome (src/redis/errors.ts matches it by name): the client retries with its id.
 */
export class StaleTargetError extends Error {
  override name = 'StaleTargetError';
}

/**
 * A record was archived (freed from Redis, src/archive/) and the archive cannot give it: not
 * configured (LEDGER_ARCHIVE_URL unset), down, or missing it. Nothing was written: 503, and the
 * client retries with the same id.
 */
export class ArchiveUnavailableError extends Error {
  override name = 'ArchiveUnavailableError';
}

/** A script reply that breaks its contract, or stored data that breaks ours: never user input. */
export class LedgerInvariantError extends Error {
  override name = 'LedgerInvariantError';
}
