/**
 * deploy/redis/entrypoint.sh, the torn-tail-safe start for the container Redis, run for real
 * (with the real redis-check-aof) on AOFs made by a real Redis; only `redis-server` itself is a
 * stub that prints its arguments, since the script ends by exec-ing it.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { AOF_DIR_NAME, newestIncrFile } from '../../src/redis/aof-repair.js';
import { startEmbeddedRedis } from '../../src/redis/embedded.js';
import { fixture, json } from '../helpers/ledger.js';

const ENTRYPOINT = resolve('deploy/redis/entrypoint.sh');
let root: string;
let stubs: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ledger-entrypoint-'));
  stubs = join(root, 'bin');
  spawnSync('mkdir', ['-p', stubs]);
  writeFileSync(join(stubs, 'redis-server'), '#!/bin/sh\necho "redis-server $*"\n');
  chmodSync(join(stubs, 'redis-server'), 0o755);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A data dir with an AOF of a few real transfers, left by kill -9. */
async function crashedLedger(name: string): Promise<string> {
  const dir = join(root, name);
  const redis = await startEmbeddedRedis({ dataDir: dir });
  const f = await fixture({ url: redis.url });
  for (const [id, od] of [['cash', 'unlimited'], ['alice', '0']]) {
    await f.app.inject({ method: 'POST', url: '/accounts', headers: json,
      payload: { id, currency: 'USD', overdraftLimit: od } });
  }
  for (let i = 0; i < 5; i++) {
    await f.app.inject({ method: 'POST', url: '/transfers', headers: json,
      payload: { id: `t${i}`, from: 'cash', to: 'alice', amount: '7' } });
  }
  await f.close();
  await redis.kill();
  return dir;
}

function run(dir: string) {
  const r = spawnSync('sh', [ENTRYPOINT, '--port', '6390'], {
    env: { PATH: `${stubs}:/usr/bin:/bin`, REDIS_DATA_DIR: dir }, encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const incr = (dir: string) => join(dir, AOF_DIR_NAME, newestIncrFile(dir) as string);

test('a valid AOF: starts Redis at once, refusing torn tails from then on', async () => {
  const dir = await crashedLedger('valid');
  const r = run(dir);
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^redis-server --port 6390 --dir .* --aof-load-truncated no\n$/);
  expect(readdirSync(dir).some((d) => d.startsWith('aof-backup-'))).toBe(false);
});

test('a tail torn inside a transfer\'s MULTI block: backed up, cut, started', async () => {
  const dir = await crashedLedger('torn');
  const file = incr(dir);
  const bytes = readFileSync(file);
  truncateSync(file, bytes.lastIndexOf('*1\r\n$5\r\nMULTI\r\n') + 50);
  const r = run(dir);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/torn AOF tail in .*: cutting \d+ bytes after offset \d+/);
  expect(r.stdout).toMatch(/^redis-server --port 6390/);
  expect(readdirSync(dir).filter((d) => d.startsWith('aof-backup-'))).toHaveLength(1);
  // A real Redis now loads it as is, with the torn transfer wholly absent.
  const redis = await startEmbeddedRedis({ dataDir: dir });
  expect(redis.repairs).toEqual([]);
  await redis.stop();
});

test('damage before the tail: refuses and touches nothing', async () => {
  const dir = await crashedLedger('middle');
  const file = incr(dir);
  const bytes = readFileSync(file);
  bytes.write('X', bytes.indexOf('\r\n*', 100) + 2);
  writeFileSync(file, bytes);
  const r = run(dir);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/damaged other than in the tail/);
  expect(r.stdout).toBe('');
  expect(readFileSync(file).equals(bytes)).toBe(true);
});

test('the entrypoint cuts at most AOF_TORN_TAIL_BYTES_MAX by default, as the service does', () => {
  const script = readFileSync(resolve('deploy/redis/entrypoint.sh'), 'utf8');
  expect(/MAX_CUT=\$\{AOF_TORN_TAIL_BYTES_MAX:-(\d+)\}/.exec(script)?.[1])
    .toBe(String(limits.AOF_TORN_TAIL_BYTES_MAX));
});
