/**
 * A real redis-server for the security tests, with the settings a ledger needs (AOF, fsync
 * always, aof-load-truncated no, noeviction) plus what these tests add: the shipped ACL file and
 * TLS. `startEmbeddedRedis` takes no extra arguments, so these tests spawn redis-server
 * themselves, on a free loopback port in a temporary directory; never the Redis on 6379.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { freePort } from '../../src/redis/embedded.js';
import { authenticateInjects, ledgerApp } from '../helpers/ledger.js';

export const SHIPPED_ACL = fileURLToPath(new URL('../../deploy/redis/users.acl', import.meta.url));
/** What an operator replaces in the shipped file: until then, Redis refuses to start. */
export const PASSWORD_PLACEHOLDER = '#REPLACE_WITH_SHA256_HEX_OF_THE_LEDGER_REDIS_PASSWORD';
/** The shipped key pattern: LEDGER_KEY_PREFIX=ledger, every ledger and the ledgers' index. */
export const SHIPPED_KEY_PATTERN = '~ledger:*';
/** The selector that alone may GET, SET, DEL and PEXPIRE: the locks (lua/lock-1.lua). */
export const SHIPPED_LOCK_PATTERN = '~ledger:{*}:lock:*';
const START_TIMEOUT_MS = 10_000;

function replaceOnce(text: string, from: string, to: string): string {
  const parts = text.split(from);
  if (parts.length !== 2) {
    throw new Error(`users.acl: expected one ${from}, found ${parts.length - 1}`);
  }
  return parts.join(to);
}

/**
 * The shipped ACL as an operator would deploy it: the password as its SHA-256, the key patterns
 * for this prefix; `extraLines` add users (the tests' own admin, to inspect).
 */
export function renderAcl(password: string, prefix: string,
  extraLines: string[] = []): string {
  const sha = createHash('sha256').update(password).digest('hex');
  let text = readFileSync(SHIPPED_ACL, 'utf8');
  text = replaceOnce(text, PASSWORD_PLACEHOLDER, `#${sha}`);
  text = replaceOnce(text, SHIPPED_KEY_PATTERN, `~${prefix}:*`);
  text = replaceOnce(text, SHIPPED_LOCK_PATTERN, `~${prefix}:{*}:lock:*`);
  return `${text.trimEnd()}\n${extraLines.map((l) => `${l}\n`).join('')}`;
}

/** The `+command` / `+command|sub` rules of one user line of an ACL file, lower-cased. */
export function grantedCommands(acl: string, user: string): Set<string> {
  const line = acl.split('\n').find((l) => l.startsWith(`user ${user} `));
  if (line === undefined) throw new Error(`no user ${user}`);
  // A selector, `(~pattern +cmd …)`, grants its commands on its keys only; counted as granted.
  return new Set(line.replace(/[()]/g, ' ').split(/\s+/).filter((r) => r.startsWith('+'))
    .map((r) => r.slice(1)));
}

export interface TestRedis {
  /** The TCP port, or the TLS port when started with TLS. */
  readonly port: number;
  readonly dir: string;
  log(): string;
  /** SIGTERM (the ledger user cannot SHUTDOWN), then removes the directory. */
  stop(): Promise<void>;
}

export interface TestRedisOptions {
  dir?: string;
  /** Listen on a TLS port only (`--port 0`); the caller passes the certificate arguments. */
  tls?: boolean;
  args?: string[];
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Starts redis-server; resolves once its log says it accepts connections. */
export async function startRedis(options: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ledger-security-'));
  const port = await freePort();
  if (port === 6379) throw new Error('tests must never use the shared Redis on 6379');
  const logFile = join(dir, 'redis.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const listen = options.tls ? ['--port', '0', '--tls-port', String(port)]
    : ['--port', String(port)];
  const child = spawn('redis-server', [...listen, '--bind', '127.0.0.1',
    '--dir', dir, '--logfile', logFile, '--daemonize', 'no', '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--aof-load-truncated', 'no',
    '--maxmemory-policy', 'noeviction', ...(options.args ?? [])], { stdio: 'ignore' });
  const stop = async () => {
    if (!exited(child)) {
      const gone = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!/Ready to accept connections/.test(log())) {
    if (exited(child) || Date.now() > deadline) {
      const tail = log().split('\n').slice(-5).join('\n');
      await stop();
      throw new Error(`redis-server did not start:\n${tail}`);
    }
    await sleep(20);
  }
  return { port, dir, log, stop };
}

/** Runs redis-server expecting it to refuse to start; resolves with its log. */
export async function refusedStart(args: string[]): Promise<{ code: number | null; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-security-'));
  const logFile = join(dir, 'redis.log');
  const child = spawn('redis-server', ['--port', String(await freePort()), '--bind', '127.0.0.1',
    '--dir', dir, '--logfile', logFile, '--daemonize', 'no', '--save', '', ...args],
  { stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
  const code = await new Promise<number | null>((ok) => child.once('exit', ok));
  clearTimeout(timer);
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  rmSync(dir, { recursive: true, force: true });
  return { code, log };
}

/**
 * The app over a connection the test made (for options `fixture` does not take, like a TLS
 * CA), built the way test/helpers/ledger.ts builds it: the test keys, authentication on.
 */
export async function appOver(redis: Redis, ledgerName: string): Promise<App> {
  const { app } = await ledgerApp({ redis, keys: ledgerKeys('test', ledgerName) });
  authenticateInjects(app);
  await app.ready();
  return app;
}
