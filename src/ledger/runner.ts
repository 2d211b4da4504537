/**
 * Runs the ledger's scripts and proves each reply is the command's own; reads go to a replica or
 * the primary (src/redis/replicas.ts). The transport half of the ledger: no decisions here.
 */
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import {
  asCluster, type ClusterRetryReason, ensureScriptsEverywhere, runOnSlot,
} from '../redis/cluster.js';
import type { NodeAcks } from '../redis/replica-acks.js';
import { type ReadOptions, ReadRouting } from '../redis/replicas.js';
import { LedgerInvariantError, ReplyMismatchError } from './errors.js';
import { runScript, type Script, type ScriptArg } from './scripts.js';
import { type ScriptStatus, statusName } from './status.js';
import type { LedgerObserver } from './types.js';

export class ScriptRunner {
  readonly reads: ReadRouting;
  private readonly lastResetMs = new Map<Redis, number>();
  /** Scripts flagged `no-writes`: nothing of theirs to acknowledge. */
  private readonly readOnly: ReadonlySet<string>;

  /**
   * `redis` serves reads from the primary and loads scripts; `writer` runs the writing scripts
   * (the same connection, unless replica acks give the writes their own, replica-acks.ts).
   */
  constructor(private readonly redis: Redis, readonly scripts: Map<string, Script>,
    replicas: readonly Redis[], private readonly observer: LedgerObserver | undefined,
    private readonly writer: Redis = redis, private readonly nodeAcks?: NodeAcks) {
    this.reads = new ReadRouting(replicas);
    this.readOnly = new Set([...scripts.values()]
      .filter((s) => /^#!lua flags=.*no-writes/.test(s.source)).map((s) => s.name));
  }

  /**
   * Runs a script and proves the reply is its own: element `echoAt` must echo `tag`. Replies on
   * one connection come back in order, so a lost or extra reply (a broken proxy, a desynced
   * stream) would hand every later command another's reply; and a timed-out command leaves the
   * connection in an unknown state. Both reset the connection and answer 503 (outcome unknown):
   * the client retries with the same id, which is always safe.
   * A BUSY reply (another script past busy-reply-threshold) or READONLY (the primary became a
   * replica; ioredis reconnects, see client.ts) is thrown as it is: 503, retry with the same id.
   * `on` is the connection for a read; writes go to the writer.
   */
  async run(name: string, keys: string[], args: readonly ScriptArg[], echoAt: number,
    tag: string,
    on: Redis = this.writer): Promise<unknown[]> {
    let reply: unknown;
    const cluster = asCluster(on);
    let node = on;
    let asked = false;
    try {
      if (cluster === undefined) {
        reply = await runScript(on, this.script(name), keys, args, this.observer);
      } else {
        ({ reply, node, asked } = await runOnSlot(cluster, this.script(name), keys, args,
          this.observer, this.onClusterRetry));
      }
    } catch (error) {
      if (error instanceof Error && /Command timed out/.test(error.message)) {
        this.resetConnection(cluster === undefined ? on : node);
      }
      throw error;
    }
    if (!Array.isArray(reply) || reply[echoAt] !== tag) {
      this.resetConnection(node);
      throw new ReplyMismatchError(`${name}: a reply that is not this command's (tag ${tag})`);
    }
    // A cluster's write is acknowledged by the replicas of the node that ran it, before the
    // ledger sees it (single-node modes wait in Ledger.write, on the writer connection).
    if (cluster !== undefined && this.nodeAcks !== undefined && on === this.writer
      && !this.readOnly.has(name)) {
      const meta = keys[0] as string;
      await this.nodeAcks.covered(node, (n) => {
        // Adjacent to the HSET (same turn, same connection), as for the script itself.
        if (asked) void n.asking().catch(() => {});
        return n.hset(meta, 'w', String(Date.now()));
      });
    }
    return reply;
  }

  private readonly onClusterRetry = (reason: ClusterRetryReason) => {
    this.observer?.clusterRetried?.(reason);
  };

  /** A read, on a replica or the primary as `options` and the replicas' health decide. */
  read(name: string, keys: string[], args: readonly ScriptArg[], echoAt: number, tag: string,
    options: ReadOptions | undefined): Promise<unknown[]> {
    if (options?.from === 'writer') {
      this.observer?.readRouted?.('primary');
      return this.run(name, keys, args, echoAt, tag, this.writer);
    }
    return this.reads.run(options,
      (on) => this.run(name, keys, args, echoAt, tag, on ?? this.redis), this.observer);
  }

  /** Several reads on one connection (a replica or the primary), as `read` chooses it. */
  readOn<T>(options: ReadOptions | undefined, body: (on: Redis) => Promise<T>): Promise<T> {
    return this.reads.run(options, (on) => body(on ?? this.redis), this.observer);
  }

  /**
   * Drops the connection and reconnects (ioredis re-sends what was in flight); once per burst.
   * Only a connected client: ioredis ends a client for good (status `end`) when it is told to
   * reconnect while it is still connecting, as a Sentinel client often is (asking the Sentinels).
   */
  private resetConnection(redis: Redis): void {
    if (redis.status !== 'ready' && redis.status !== 'connect') return;
    const now = Date.now();
    if (now - (this.lastResetMs.get(redis) ?? 0) < limits.REDIS_CONNECTION_RESET_INTERVAL_MS) {
      return;
    }
    this.lastResetMs.set(redis, now);
    redis.disconnect(true);
  }

  private script(name: string): Script {
    const script = this.scripts.get(name);
    if (!script) throw new Error(`no script ${name}`);
    return script;
  }

  /** Puts every script into Redis's cache; used at start-up and by the readiness check. */
  ensureScripts(): Promise<boolean> {
    return ensureScriptsEverywhere(this.redis, this.scripts.values());
  }
}

/** `{ status, id, ... }` of a writing script (the id already checked by `run`) → status, rest. */
export function replyStatus(reply: unknown[]): [ScriptStatus, ...unknown[]] {
  if (typeof reply[0] !== 'number') {
    // The reply's content stays out of the message: it can hold metadata, which is not logged.
    throw new LedgerInvariantError(
      `script reply is not { status, id, ... } (first: ${typeof reply[0]})`,
    );
  }
  return [statusName(reply[0]), ...reply.slice(2)];
}
