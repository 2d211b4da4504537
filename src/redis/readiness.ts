/**
 * Readiness: Redis answers, our scripts are in its cache, its last AOF write succeeded, and —
 * unless the operator turned the check off — it persists the way a ledger needs:
 * - AOF on, with an fsync policy at least as strong as the one required (LEDGER_APPENDFSYNC);
 * - `aof-load-truncated no`, so a torn tail is refused rather than loaded as half a transfer;
 * - `maxmemory-policy noeviction`, so Redis never drops a balance to make room.
 * INFO gives most of it; the two settings INFO lacks come from CONFIG GET (a least-privilege
 * ACL grants `+config|get` only).
 *
 * Reported but never failing readiness (`advisory`): Redis's busy-reply-threshold against our
 * script budget and command timeout, and each read replica's health (reads fall back to the
 * primary, so a sick replica must not take the service out of rotation).
 */
import type { Redis } from 'ioredis';
import { limits } from '../config/limits.js';
import { connectedAddress } from './client.js';
import { nodeKey, primariesOf } from './cluster.js';
import { DATA_FORMAT_UPGRADES_FROM, DATA_FORMAT_VERSION } from '../ledger/scripts.js';

/** What readiness asks of the ledger (src/ledger/ledger.ts implements it). */
export interface ReadinessSubject {
  /** Puts the scripts into Redis's cache; true when all were there. */
  ensureScripts(): Promise<boolean>;
  /** The data-format version the ledger's data carries (undefined: nothing written yet). */
  dataFormat(): Promise<string | undefined>;
  readonly replicas: readonly Redis[];
  /** Replica acknowledgements the ledger waits for (src/redis/replica-acks.ts), if any. */
  readonly acks?: { readonly required: number } | undefined;
}

export interface PersistencePolicy {
  appendfsync: 'always' | 'everysec';
  check: 'strict' | 'off';
}

export const DEFAULT_PERSISTENCE_POLICY: PersistencePolicy = {
  appendfsync: 'always',
  check: 'strict',
};

export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
  /** `ok` or what an operator should know; never makes the service unready. */
  advisory: Record<string, string>;
  /**
   * INFO persistence + memory + replication as read for the checks, if Redis answered (metrics
   * reuse it).
   */
  info?: Map<string, string>;
}

export function parseInfo(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) map.set(line.slice(0, i), line.slice(i + 1));
  }
  return map;
}

async function configValue(redis: Redis, name: string): Promise<string> {
  try {
    const reply = (await redis.config('GET', name)) as string[];
    return reply[1] ?? '?';
  } catch (error) {
    return `unreadable (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
  }
}

async function persistenceChecks(redis: Redis, info: Map<string, string>, policy: PersistencePolicy,
  checks: Record<string, string>): Promise<void> {
  const aof = info.get('aof_enabled');
  checks.aof = aof === '1' ? 'ok' : `appendonly is off (aof_enabled:${aof ?? '?'})`;
  const fsync = await configValue(redis, 'appendfsync');
  const accepted = policy.appendfsync === 'always' ? ['always'] : ['always', 'everysec'];
  checks.appendfsync = accepted.includes(fsync) ? 'ok'
    : `appendfsync is ${fsync}; LEDGER_APPENDFSYNC=${policy.appendfsync} requires ` +
      `${accepted.join(' or ')}`;
  const truncated = await configValue(redis, 'aof-load-truncated');
  checks.aofLoadTruncated = truncated === 'no' ? 'ok'
    : `aof-load-truncated is ${truncated}: a torn AOF tail would load half a transfer ` +
      '(run Redis with aof-load-truncated no and a torn-tail repair, see docs/guarantees.md)';
  const policyName = info.get('maxmemory_policy');
  checks.maxmemoryPolicy = policyName === 'noeviction' ? 'ok'
    : `maxmemory-policy is ${policyName ?? '?'}, not noeviction`;
}

/**
 * Below our script budget, a normal script of ours could make Redis answer BUSY to everyone
 * else; above our command timeout, a stuck script shows as timeouts and connection resets
 * instead of BUSY, and SCRIPT KILL is accepted only that late.
 */
export function busyThresholdAdvice(value: string): string {
  if (!/^\d+$/.test(value)) return `busy-reply-threshold is ${value}`;
  const ms = Number(value);
  if (ms < limits.SCRIPT_TIME_BUDGET_MS) {
    return `busy-reply-threshold is ${ms} ms, below the scripts' budget ` +
      `(SCRIPT_TIME_BUDGET_MS ${limits.SCRIPT_TIME_BUDGET_MS} ms): normal transfers may make ` +
      'Redis answer BUSY (503) to other requests';
  }
  if (ms >= limits.REDIS_COMMAND_TIMEOUT_MS) {
    return `busy-reply-threshold is ${ms} ms, not below the command timeout ` +
      `(${limits.REDIS_COMMAND_TIMEOUT_MS} ms): a stuck script shows as timeouts and ` +
      `connection resets, and SCRIPT KILL works only after ${ms} ms ` +
      `(recommended: ${limits.REDIS_BUSY_REPLY_THRESHOLD_MS})`;
  }
  return 'ok';
}

/** One replica's health; never throws, never names a password. */
export async function replicaHealth(replica: Redis): Promise<string> {
  const where = `${replica.options.host}:${replica.options.port}`;
  if (replica.status !== 'ready') {
    return `${where}: connection ${replica.status}; reads go to the primary meanwhile`;
  }
  try {
    const info = parseInfo(await replica.info('replication'));
    const role = info.get('role');
    if (role !== 'slave') return `${where}: role ${role ?? '?'}, not a replica`;
    const link = info.get('master_link_status');
    if (link !== 'up') {
      return `${where}: link to its primary is ${link ?? '?'}; it serves stale data unless ` +
        'replica-serve-stale-data is no (then reads go to the primary)';
    }
    return 'ok';
  } catch (error) {
    return `${where}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
}

/**
 * Every write waits for `required` replicas: with fewer online, every write would answer 503
 * after LEDGER_REPLICA_ACK_TIMEOUT_MS, so the instance is not ready (it is again, by itself,
 * once replicas return). A node that is not the primary (a failover under way) fails too.
 */
export function replicaAcksCheck(info: Map<string, string>, required: number): string {
  const role = info.get('role');
  if (role !== 'master') return `Redis is a ${role ?? '?'}, not the primary: writes would fail`;
  const online = [...info].filter(([name, value]) => /^slave[0-9]+$/.test(name)
    && value.includes('state=online')).length;
  return online >= required ? 'ok'
    : `${online} replica(s) online, LEDGER_REPLICA_ACKS=${required}: every write answers 503 ` +
      'until enough return';
}

/** With replica acks: which node is the primary now, and each replica's state and lag. */
function replicationAdvice(redis: Redis, info: Map<string, string>): Record<string, string> {
  const replicas = [...info].filter(([name]) => /^slave[0-9]+$/.test(name)).map(([, value]) => {
    const f = new Map(value.split(',').map((kv) => kv.split('=') as [string, string]));
    return `${f.get('ip')}:${f.get('port')} ${f.get('state')}, lag ${f.get('lag')} s`;
  });
  return { primary: connectedAddress(redis) || 'not connected',
    replicas: replicas.length === 0 ? 'none connected' : replicas.join('; ') };
}

async function advise(redis: Redis, ledger: ReadinessSubject): Promise<Record<string, string>> {
  const advisory: Record<string, string> = {};
  const threshold = await configValue(redis, 'busy-reply-threshold');
  advisory.busyReplyThreshold = busyThresholdAdvice(threshold);
  const health = await Promise.all(ledger.replicas.map(replicaHealth));
  health.forEach((text, i) => { advisory[`replica${i + 1}`] = text; });
  return advisory;
}

export async function checkReadiness(redis: Redis, ledger: ReadinessSubject,
  policy: PersistencePolicy = DEFAULT_PERSISTENCE_POLICY): Promise<Readiness> {
  const checks: Record<string, string> = {};
  let advisory: Record<string, string> = {};
  let info: Map<string, string> | undefined;
  try {
    await ledger.ensureScripts();
    checks.scripts = 'ok';
    const format = await ledger.dataFormat();
    checks.dataFormat = format === undefined || format === DATA_FORMAT_VERSION
      || format === DATA_FORMAT_UPGRADES_FROM ? 'ok'
      : `the ledger's data is in format ${format}; this release reads formats ` +
        `${DATA_FORMAT_UPGRADES_FROM} and ${DATA_FORMAT_VERSION} only, and its scripts refuse ` +
        'to touch it';
    const nodes = primariesOf(redis);
    if (nodes.length === 0) throw new Error('no primary known yet (the slot map is loading)');
    // In a Redis Cluster, every primary must pass (each holds some ledgers); a failing one is
    // named by its address.
    const each = await Promise.all(nodes.map((node) => checkNode(node, ledger, policy)));
    for (const [i, result] of each.entries()) {
      const name = nodes.length === 1 ? '' : `${nodeKey(nodes[i] as Redis)}: `;
      for (const [check, value] of Object.entries(result.checks)) {
        const before = checks[check];
        if (value === 'ok') checks[check] = before ?? 'ok';
        else {
          checks[check] = before === undefined || before === 'ok' ? `${name}${value}`
            : `${before}; ${name}${value}`;
        }
      }
    }
    for (const key of new Set(each.flatMap((e) => Object.keys(e.advisory)))) {
      const values = each.map((e) => e.advisory[key] ?? '?');
      advisory[key] = values.every((v) => v === values[0]) ? values[0] as string
        : values.map((v, i) => `${nodeKey(nodes[i] as Redis)}: ${v}`).join('; ');
    }
    info = each.length === 1 ? each[0]?.info : mergeInfo(each.map((e) => e.info));
  } catch (error) {
    checks.redis = `unreachable: ${error instanceof Error ? error.message : String(error)}`;
  }
  return { ready: Object.values(checks).every((v) => v === 'ok'), checks, advisory,
    ...(info === undefined ? {} : { info }) };
}

/** Persistence, replication and advice of one primary. */
async function checkNode(redis: Redis, ledger: ReadinessSubject, policy: PersistencePolicy):
  Promise<{ checks: Record<string, string>; advisory: Record<string, string>;
    info: Map<string, string> }> {
  const checks: Record<string, string> = {};
  const [persistence, memory, replication] = await Promise.all([redis.info('persistence'),
    redis.info('memory'), redis.info('replication')]);
  const info = parseInfo(`${persistence}\r\n${memory}\r\n${replication}`);
  const required = ledger.acks?.required ?? 0;
  if (required > 0) checks.replicaAcks = replicaAcksCheck(info, required);
  const write = info.get('aof_last_write_status');
  // Checked even with the policy off: a failing disk refuses every write (MISCONF).
  checks.aofLastWrite = write === 'ok' ? 'ok'
    : `aof_last_write_status is ${write ?? '?'} (disk full or I/O error?): writes are refused`;
  if (policy.check === 'strict') await persistenceChecks(redis, info, policy, checks);
  const advisory = await advise(redis, ledger);
  if (required > 0) Object.assign(advisory, replicationAdvice(redis, info));
  return { checks, advisory, info };
}

/**
 * The primaries' INFO as one, for the metrics of a Redis Cluster: memory and delayed fsyncs
 * add up, AOF is on only if on everywhere, a failing write status or a rewrite anywhere shows,
 * and every primary's replicas are listed.
 */
export function mergeInfo(infos: ReadonlyArray<Map<string, string>>): Map<string, string> {
  const out = new Map<string, string>();
  const sum = (name: string) => String(infos.reduce((t, i) => t + Number(i.get(name) ?? 0), 0));
  out.set('used_memory', sum('used_memory'));
  out.set('aof_delayed_fsync', sum('aof_delayed_fsync'));
  out.set('aof_enabled', infos.every((i) => i.get('aof_enabled') === '1') ? '1' : '0');
  out.set('aof_rewrite_in_progress',
    infos.some((i) => i.get('aof_rewrite_in_progress') === '1') ? '1' : '0');
  out.set('aof_last_write_status', infos.map((i) => i.get('aof_last_write_status'))
    .find((v) => v !== 'ok') ?? 'ok');
  let n = 0;
  for (const info of infos) {
    for (const [name, value] of info) {
      if (/^slave[0-9]+$/.test(name)) out.set(`slave${n++}`, value);
    }
  }
  return out;
}
