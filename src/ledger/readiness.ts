/**
 * Readiness: Redis answers, our scripts are in its cache, and it persists the way a ledger
 * needs (AOF on, no eviction, last AOF write succeeded). Reads INFO only, so it works under a
 * least-privilege ACL that forbids CONFIG.
 */
import type { Redis } from 'ioredis';
import type { Ledger } from './ledger.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
}

export function parseInfo(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) map.set(line.slice(0, i), line.slice(i + 1));
  }
  return map;
}

export async function checkReadiness(redis: Redis, ledger: Ledger): Promise<Readiness> {
  const checks: Record<string, string> = {};
  try {
    await ledger.ensureScripts();
    checks.scripts = 'ok';
    const info = parseInfo(`${await redis.info('persistence')}\r\n${await redis.info('memory')}`);
    const aof = info.get('aof_enabled');
    checks.aof = aof === '1' ? 'ok' : `appendonly is off (aof_enabled:${aof ?? '?'})`;
    const policy = info.get('maxmemory_policy');
    checks.maxmemoryPolicy = policy === 'noeviction' ? 'ok' : `maxmemory-policy is ${policy ?? '?'}, not noeviction`;
    const write = info.get('aof_last_write_status');
    checks.aofLastWrite = write === 'ok' ? 'ok' : `aof_last_write_status is ${write ?? '?'}`;
  } catch (error) {
    checks.redis = `unreachable: ${error instanceof Error ? error.message : String(error)}`;
  }
  return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
}
