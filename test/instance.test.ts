/**
 * src/instance.ts in one process: the data-dir lock of both kinds (Linux's abstract socket and
 * the socket file used elsewhere, tested here on Linux too), a holder that dies with kill -9, and
 * the busy-port check. test/ops/first-start.test.ts runs the same through the real service.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { ensurePortFree, LOCK_SOCKET_FILE, type LockKind, lockDataDir } from '../src/instance.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-instance-'));
  dirs.push(dir);
  return dir;
}

/** Another process that takes the lock, says so, then waits to be killed. */
async function holderProcess(dir: string, kind: LockKind) {
  const code = `import { lockDataDir } from './src/instance.ts';
    await lockDataDir(${JSON.stringify(dir)}, 4321, ${JSON.stringify(kind)});
    console.log('locked'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  const exit = new Promise((ok) => child.once('exit', ok));
  for (let i = 0; i < 600 && !output.includes('locked'); i++) {
    if (child.exitCode !== null) throw new Error('the holder exited');
    await sleep(50);
  }
  return { pid: child.pid as number, kill: async () => { child.kill('SIGKILL'); await exit; } };
}

describe.each(['abstract', 'file'] as const)('the data-dir lock (%s)', (kind) => {
  test('a second taker is refused with the holder\'s pid and port, until it is released',
    async () => {
      const dir = tempDir();
      const lock = await lockDataDir(dir, 3000, kind);
      lock.setPort(3007);
      await expect(lockDataDir(`${dir}/.`, 3001, kind)).rejects.toThrow(
        `data dir ${lock.dataDir} is in use by another instance (pid ${process.pid}, ` +
        'port 3007): stop that one, or set LEDGER_DATA_DIR to another directory');
      await lock.release();
      await (await lockDataDir(dir, 3001, kind)).release();
    });

  test('a holder killed with kill -9 leaves no stale lock', async () => {
    const dir = tempDir();
    const holder = await holderProcess(dir, kind);
    await expect(lockDataDir(dir, 3001, kind)).rejects.toThrow(
      `(pid ${holder.pid}, port 4321)`);
    await holder.kill();
    // The abstract socket vanished with its process; the socket file stayed, answering nobody.
    expect(existsSync(join(dir, LOCK_SOCKET_FILE))).toBe(kind === 'file');
    const lock = await lockDataDir(dir, 3001, kind);
    await lock.release();
  });
});

test('ensurePortFree: a taken port is named, with the variable that changes it', async () => {
  const taken = createServer();
  await new Promise<void>((ok) => taken.listen(0, '127.0.0.1', ok));
  const port = (taken.address() as { port: number }).port;
  await expect(ensurePortFree('127.0.0.1', port)).rejects.toThrow(
    `port ${port} on 127.0.0.1 is already in use (another instance, or another service): ` +
    'stop it, or set PORT to a free port');
  await new Promise((ok) => taken.close(ok));
  await ensurePortFree('127.0.0.1', port); // free again, and the probe did not keep it
  await ensurePortFree('127.0.0.1', port);
});
