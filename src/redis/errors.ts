/**
 * Which Redis failures are an *unknown outcome* (the client must retry with the same id) and
 * which are bugs. A timeout or dropped connection never proves a script did not run; ioredis may
 * even re-send it after reconnecting. Only idempotent scripts make that safe.
 */
import { ReplyError } from 'ioredis';

/** Error replies Redis gives when it cannot take writes now; nothing ran, a retry may succeed. */
const TRANSIENT_REPLY_PREFIXES = [
  'BUSY', // another script is running past busy-reply-threshold
  'LOADING', // loading the AOF after a restart
  'OOM', // maxmemory reached with noeviction
  'READONLY', // we reached a replica (failover in progress)
  'MASTERDOWN',
  'NOREPLICAS',
  // Redis Cluster: a slot moving (TRYAGAIN) or moved (MOVED, ASK: src/redis/cluster.ts follows
  // them until its retry budget is spent), or a failover (CLUSTERDOWN).
  'TRYAGAIN',
  'CLUSTERDOWN',
  'MOVED ',
  'ASK ',
  // A blocked WAIT released because the primary became a replica (a failover): the writes it
  // waited for may be on no replica, an unknown outcome.
  'UNBLOCKED',
];

/**
 * ioredis's own messages for a lost or unusable connection. Too long for one line as a literal:
 * the source is exactly that of the former /…/ literal.
 */
const CONNECTION_FAILURE = new RegExp(
  'Connection is closed|Command timed out|enableOfflineQueue|Stream isn\'t writeable|' +
  'ECONNREFUSED|ECONNRESET|EPIPE|Too many Cluster redirections|Cluster isn\'t ready',
);

/**
 * An operator's SCRIPT KILL stopped our script. Redis kills only a script that has not written
 * (after a write it answers UNKILLABLE), so this attempt changed nothing: safe to retry.
 */
const KILLED_SCRIPT = 'Script killed by user';

/**
 * The ledger's ReplyMismatchError (src/ledger/errors.ts): a reply that was not the command's
 * own, so the connection was reset. Matched by name: this module knows nothing of the ledger.
 */
const REPLY_MISMATCH = 'ReplyMismatchError';

/** src/redis/replica-acks.ts: too few replicas acknowledged a write in time. */
const REPLICA_ACK = 'ReplicaAckError';

/** The ledger's StaleTargetError: a target read on another node than its script ran on. */
const STALE_TARGET = 'StaleTargetError';

/** src/redis/cluster.ts: no primary was known for the script's slot (nothing was sent). */
const CLUSTER_UNROUTED = 'ClusterUnroutedError';

export function isUnavailableError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof ReplyError || error.name === 'ReplyError') {
    return TRANSIENT_REPLY_PREFIXES.some((p) => error.message.startsWith(p)) ||
      error.message.includes(KILLED_SCRIPT);
  }
  // Connection closed, command timed out, offline queue disabled, retries exhausted (also a
  // cluster's redirections): all come from ioredis itself, not from a Redis reply.
  return (
    error.name === 'MaxRetriesPerRequestError' || error.name === REPLY_MISMATCH ||
    error.name === REPLICA_ACK || error.name === STALE_TARGET ||
    error.name === CLUSTER_UNROUTED || CONNECTION_FAILURE.test(error.message)
  );
}

/**
 * Redis refused the command because it cannot persist (disk full, AOF write error). The `#!lua`
 * flags make Redis check this before a script starts, so this attempt wrote nothing.
 */
export function isPersistenceError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError' &&
    error.message.startsWith('MISCONF');
}
