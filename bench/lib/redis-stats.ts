/**
 * What the bench reads from Redis around each segment: CPU, memory, AOF size and script time.
 * Deltas of INFO, because INFO cpu and the AOF size cannot be reset; commandstats is reset
 * (CONFIG RESETSTAT) before each segment so that its figures are that segment's alone.
 */
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { parseInfo } from '../../src/redis/readiness.js';

/** Commands that run a script; the product uses EVALSHA, the others keep a rewrite counted. */
const SCRIPT_COMMANDS = ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro'];

export interface RedisSnapshot {
  /** used_cpu_sys + used_cpu_user: the whole redis-server process, fsync threads included. */
  cpuSeconds: number;
  usedMemory: number;
  aofCurrentSize: number;
  aofRewrites: number;
  aofRewriting: boolean;
  /** everysec: writes Redis held back because a background fsync was still running. */
  aofDelayedFsync: number;
  /** Calls and microseconds of script commands since the last CONFIG RESETSTAT. */
  scriptCalls: number;
  scriptUsec: number;
}

/** `calls=12,usec=345,...` of one cmdstat_ line. */
function commandStat(value: string | undefined, name: string): number {
  const match = value === undefined ? null : new RegExp(`(?:^|,)${name}=(\\d+)`).exec(value);
  return match ? Number(match[1]) : 0;
}

export async function snapshot(redis: Redis): Promise<RedisSnapshot> {
  const info = parseInfo(await redis.info('cpu', 'memory', 'persistence', 'commandstats'));
  // CONFIG RESETSTAT zeroes aof_rewrites and aof_delayed_fsync too: callers take their
  // `before` after the reset.
  const num = (key: string) => {
    const value = Number(info.get(key));
    if (!Number.isFinite(value)) throw new Error(`INFO has no numeric ${key}`);
    return value;
  };
  let scriptCalls = 0;
  let scriptUsec = 0;
  for (const command of SCRIPT_COMMANDS) {
    scriptCalls += commandStat(info.get(`cmdstat_${command}`), 'calls');
    scriptUsec += commandStat(info.get(`cmdstat_${command}`), 'usec');
  }
  return {
    cpuSeconds: num('used_cpu_sys') + num('used_cpu_user'),
    usedMemory: num('used_memory'),
    aofCurrentSize: num('aof_current_size'),
    aofRewrites: num('aof_rewrites'),
    aofRewriting: info.get('aof_rewrite_in_progress') === '1'
      || info.get('aof_rewrite_scheduled') === '1',
    aofDelayedFsync: num('aof_delayed_fsync'),
    scriptCalls,
    scriptUsec,
  };
}

/**
 * Waits for a background AOF rewrite (Redis's automatic one, at 2x growth past 64 MB) to end,
 * so that its fork's CPU does not land in the next segment. A rewrite that starts during a
 * segment is recorded there, and that segment's AOF bytes are not used.
 */
export async function waitForRewrite(redis: Redis, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await snapshot(redis)).aofRewriting && Date.now() < deadline) await sleep(200);
}

export function redisServerVersion(): string {
  try {
    const text = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    return /v=(\S+)/.exec(text)?.[1] ?? text.trim();
  } catch {
    return 'unknown';
  }
}
