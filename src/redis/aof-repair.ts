/**
 * Torn-tail repair of a multi-part AOF. A crash (OS, power, full disk) can leave the newest
 * incremental AOF file ending inside a write, often inside a script's MULTI/EXEC block. Redis's
 * default `aof-load-truncated yes` drops that block on the next start but cuts the file only
 * back to its last complete command, so the half block is still in the file, and merges into
 * the next write's block at the start after that: half a transfer, one restart late (seen on
 * 7.0.15; test/faults/batch-durability.test.ts). We run Redis with `aof-load-truncated no`;
 * when it refuses, this cuts the tail back to the last complete command outside any MULTI with
 * `redis-check-aof --fix`, after backing the files up, and only when the damage is confined to
 * the tail of the newest file. Anything else
 * (damage in the middle, a large cut) is left for a human: we never throw away acknowledged data.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { limits } from '../config/limits.js';

export const AOF_DIR_NAME = 'appendonlydir';
export const AOF_FILE_NAME = 'appendonly.aof';

export interface AofCheck {
  valid: boolean;
  /** The file where checking stopped, where its valid part ends, and the damaged byte count. */
  file?: string;
  okUpTo?: number;
  damagedBytes?: number;
  output: string;
}

/** How Redis described the damage when it refused to load. */
export type AofDamage = 'truncated' | 'bad-format';

export function manifestPath(dataDir: string): string {
  return join(dataDir, AOF_DIR_NAME, `${AOF_FILE_NAME}.manifest`);
}

/** The newest incremental file named in the manifest (the only one a crash can tear). */
export function newestIncrFile(dataDir: string): string | undefined {
  const manifest = manifestPath(dataDir);
  if (!existsSync(manifest)) return undefined;
  const incr = readFileSync(manifest, 'utf8').split('\n')
    .map((line) => /^file (\S+) seq \d+ type i$/.exec(line.trim())?.[1])
    .filter((name): name is string => name !== undefined);
  return incr[incr.length - 1];
}

function runCheck(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync('redis-check-aof', args, { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export function checkAof(dataDir: string): AofCheck {
  const { status, output } = runCheck([manifestPath(dataDir)]);
  if (status === 0) return { valid: true, output };
  // The last "AOF analyzed" line names the file that failed and the damaged byte count.
  const analyzed = [...output.matchAll(
    /AOF analyzed: filename=(\S+), size=\d+, ok_up_to=(\d+), ok_up_to_line=\d+, diff=(\d+)/g)];
  const last = analyzed[analyzed.length - 1];
  if (!last) return { valid: false, output };
  return {
    valid: false, file: last[1], okUpTo: Number(last[2]), damagedBytes: Number(last[3]), output,
  };
}

/**
 * A torn tail, and nothing else: the damage is in the newest file, no larger than the bound,
 * and either Redis hit the end of the file inside a command or MULTI block (a truncated write),
 * or the damaged bytes are all zero (a tail the file system extended but never wrote).
 */
function tornTailOnly(dataDir: string, check: AofCheck, damage: AofDamage): string | undefined {
  const newest = newestIncrFile(dataDir);
  if (check.file === undefined || check.okUpTo === undefined || check.damagedBytes === undefined) {
    return 'redis-check-aof did not say where the damage is';
  }
  if (check.file !== newest) {
    return `the damage is in ${check.file}, not in the newest file ${newest}`;
  }
  if (check.damagedBytes > limits.AOF_TORN_TAIL_BYTES_MAX) {
    return `${check.damagedBytes} damaged bytes exceed AOF_TORN_TAIL_BYTES_MAX`;
  }
  if (damage === 'truncated') return undefined;
  const tail = readFileSync(join(dataDir, AOF_DIR_NAME, check.file)).subarray(check.okUpTo);
  return tail.every((b) => b === 0) ? undefined : 'bytes that are not a torn tail (bad format)';
}

export interface Repair {
  /** What was cut, in redis-check-aof's words (file, bytes before and after). */
  cut: string[];
  backupDir: string;
}

/**
 * Repairs a torn tail, or throws explaining why it will not. `damage` is what Redis reported
 * when it refused to load; `now` names the backup folder.
 */
export function repairTornTail(dataDir: string, damage: AofDamage, now: Date): Repair {
  const check = checkAof(dataDir);
  if (check.valid) throw new Error('the AOF is valid; nothing to repair');
  const refusal = tornTailOnly(dataDir, check, damage);
  if (refusal !== undefined) {
    throw new Error(`the AOF is damaged other than in the tail of its newest file (${refusal}); ` +
      'not cutting it automatically. ' +
      `Inspect it with \`redis-check-aof ${manifestPath(dataDir)}\`.` +
      `\n${check.output}`);
  }
  const backupDir = join(dataDir, `aof-backup-${now.toISOString().replace(/[:.]/g, '-')}`);
  cpSync(join(dataDir, AOF_DIR_NAME), backupDir, { recursive: true });
  const fix = runCheck(['--fix', manifestPath(dataDir)], 'y\n');
  if (fix.status !== 0 || !checkAof(dataDir).valid) {
    throw new Error(`redis-check-aof --fix failed; the original files are in ${backupDir}` +
      `\n${fix.output}`);
  }
  const cut = fix.output.split('\n').filter((l) =>
    /This will shrink|Reached EOF|Expected|Successfully truncated/.test(l))
    .map((l) => l.replace(/^Continue\? \[y\/N\]: /, '').trim());
  return { cut, backupDir };
}
