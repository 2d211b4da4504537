/**
 * Disk-level faults: an AOF torn inside a transfer's MULTI block (what a crash mid-write leaves),
 * and a full disk (a small tmpfs, filled). Independent of src/redis: the test must not trust
 * the code it checks to find the file it damages.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, truncateSync,
  writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MULTI = Buffer.from('*1\r\n$5\r\nMULTI\r\n');
const EXEC = Buffer.from('*1\r\n$4\r\nEXEC\r\n');
/** Bytes kept of the command the cut lands in: the file ends inside it, mid-header. */
const TORN_BYTES_INTO_COMMAND = 3;

/** The newest incremental AOF file named by the manifest under the data dir. */
export function newestIncrAof(dataDir: string): string {
  // The live AOF directory only: after a repair, an `aof-backup-*` copy sits beside it (and
  // sorts first), and tearing that one would leave the live AOF whole.
  const dir = join(dataDir, 'appendonlydir'); // Redis's default appenddirname, which we keep
  const manifest = readdirSync(dir).find((f) => f.endsWith('.manifest'));
  const incr = manifest === undefined ? [] : readFileSync(join(dir, manifest), 'utf8')
    .split('\n').map((line) => /^file (\S+) seq \d+ type i$/.exec(line.trim())?.[1])
    .filter((name): name is string => name !== undefined);
  const newest = incr[incr.length - 1];
  if (newest === undefined) throw new Error(`no AOF manifest with an incremental file in ${dir}`);
  return join(dir, newest);
}

export interface Tear {
  file: string;
  sizeBefore: number;
  multiAt: number;
  cutAt: number;
  /** The complete commands of the block left before the cut (Redis must not apply them). */
  completeCommandsKept: number;
}

/**
 * Cuts the newest AOF so that it ends inside its last MULTI…EXEC block, a few bytes into the
 * block's last command: every earlier command of the block stays complete, which is what lets
 * Redis's `aof-load-truncated yes` load half of a transfer. The block must mention `mustContain`.
 */
export function tearInsideLastMulti(dataDir: string, mustContain: string): Tear {
  const file = newestIncrAof(dataDir);
  const aof = readFileSync(file);
  const multiAt = aof.lastIndexOf(MULTI);
  const execAt = aof.indexOf(EXEC, multiAt);
  if (multiAt < 0 || execAt < 0) throw new Error(`${file}: no complete MULTI…EXEC block`);
  const block = aof.subarray(multiAt, execAt);
  if (!block.includes(Buffer.from(mustContain))) {
    throw new Error(`${file}: the last MULTI block does not mention ${mustContain}`);
  }
  const starts: number[] = [];
  for (let i = MULTI.length; i < block.length; i++) {
    if (block[i] === 0x2a && block[i - 1] === 0x0a && block[i - 2] === 0x0d) starts.push(i);
  }
  const lastCommand = starts[starts.length - 1];
  if (lastCommand === undefined || starts.length < 2) {
    throw new Error(`${file}: the last MULTI block has fewer than two commands`);
  }
  const cutAt = multiAt + lastCommand + TORN_BYTES_INTO_COMMAND;
  truncateSync(file, cutAt);
  return { file, sizeBefore: aof.length, multiAt, cutAt, completeCommandsKept: starts.length - 1 };
}

/** Why this process cannot mount a tmpfs (it takes root on Linux), or undefined if it can. */
export function tmpfsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `mounting a tmpfs needs Linux, not ${process.platform}`;
  if (process.getuid?.() !== 0) return `mounting a tmpfs needs root (uid ${process.getuid?.()})`;
  try {
    const dir = mountTmpfs(1024 * 1024);
    unmountTmpfs(dir);
    return undefined;
  } catch (error) {
    // A container without CAP_SYS_ADMIN: root, yet mount is refused.
    const stderr = String((error as { stderr?: unknown }).stderr ?? error).trim();
    return `mount -t tmpfs failed: ${stderr.split('\n')[0]}`;
  }
}

export function mountTmpfs(bytes: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-fulldisk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  return dir;
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', [dir], { stdio: 'pipe' });
  rmdirSync(dir);
}

/** Writes `path` until the file system is full (ENOSPC); returns the bytes written. */
export function fillDisk(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 9, 1]) {
      const chunk = Buffer.alloc(size);
      for (let i = 0; i < 1_000_000; i++) {
        try {
          written += writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}
