/**
 * Least-privilege Redis: deploy/redis/users.acl, as shipped (password and key pattern set the
 * way deploy/redis/README.md says), loaded by a real redis-server. The service runs the whole
 * walk-through as the `ledger` user without one refused command, and that user cannot flush,
 * reconfigure, enumerate, debug, stop Redis, grant itself more, or touch keys outside its prefix.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadScripts, LUA_DIR } from '../../src/ledger/scripts.js';
import { fixture, uniqueLedgerName } from '../helpers/ledger.js';
import { fullFlow } from './flow.js';
import {
  grantedCommands, renderAcl, refusedStart, SHIPPED_ACL, startRedis, type TestRedis,
} from './redis.js';

const PASSWORD = 'acl-test-ledger-password-0123456789';
const ADMIN_PASSWORD = 'acl-test-admin-password-0123456789';
const ledgerName = uniqueLedgerName();
const own = (suffix: string) => `test:{${ledgerName}}:${suffix}`;

let server: TestRedis;
let admin: Redis;
let ledgerUser: Redis;
const url = (user: string, password: string) =>
  `redis://${user}:${password}@127.0.0.1:${server.port}`;

function raw(address: string): Redis {
  const client = new Redis(address, { lazyConnect: true, maxRetriesPerRequest: 0,
    enableOfflineQueue: false, retryStrategy: () => null });
  client.on('error', () => {});
  return client;
}

/** ACL LOG entries as objects (Redis replies with flat field/value lists). */
async function aclLog(): Promise<Array<Record<string, string>>> {
  const entries = (await admin.call('ACL', 'LOG')) as unknown[][];
  return entries.map((flat) => {
    const entry: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) entry[String(flat[i])] = String(flat[i + 1]);
    return entry;
  });
}

beforeAll(async () => {
  // The tests' own admin user (not shipped) inspects what the ledger user did.
  const acl = renderAcl(PASSWORD, 'test',
    [`user admin on >${ADMIN_PASSWORD} ~* &* +@all`]);
  const dir = mkdtempSync(join(tmpdir(), 'ledger-acl-'));
  const file = join(dir, 'users.acl');
  writeFileSync(file, acl, { mode: 0o600 });
  // DEBUG on, so that below it is the ACL, not the server's default, that refuses it.
  server = await startRedis({ dir, args: ['--aclfile', file, '--enable-debug-command', 'yes'] });
  admin = raw(url('admin', ADMIN_PASSWORD));
  await admin.connect();
  await admin.set('other:key', 'untouched');
  ledgerUser = raw(url('ledger', PASSWORD));
  await ledgerUser.connect();
});

afterAll(async () => {
  ledgerUser?.disconnect();
  admin?.disconnect();
  await server?.stop();
});

test('the shipped file keeps Redis down until the ledger password is set', async () => {
  const { code, log } = await refusedStart(['--aclfile', SHIPPED_ACL]);
  expect(code).not.toBe(0);
  expect(log).toMatch(/password hash must be exactly 64 characters/);
});

test('the ledger user may run every command the Lua scripts call', () => {
  const granted = grantedCommands(readFileSync(SHIPPED_ACL, 'utf8'), 'ledger');
  const called = new Set<string>();
  for (const file of readdirSync(LUA_DIR, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.lua')) continue;
    for (const [, name] of readFileSync(join(LUA_DIR, file), 'utf8')
      .matchAll(/redis\.p?call\('([A-Za-z]+)'/g)) called.add((name as string).toLowerCase());
  }
  expect(called.size).toBeGreaterThan(0);
  expect([...called].filter((c) => !granted.has(c))).toEqual([]);
});

test('the service runs the full flow as the ledger user, nothing refused', async () => {
  await admin.call('ACL', 'LOG', 'RESET');
  const f = await fixture({ url: url('ledger', PASSWORD), ledgerName });
  try {
    const clients = String(await admin.call('CLIENT', 'LIST'));
    expect(clients).toMatch(/name=atomic-ledger .*user=ledger/);
    await fullFlow(f.app);
  } finally {
    await f.close();
  }
  // ioredis also sends CLIENT SETINFO on connect and ignores a refusal; Redis < 7.2 does not
  // know the command and 7.0 cannot load an ACL file naming it, so the ACL does not grant it.
  const refused = (await aclLog()).filter((e) => e.object !== 'client|setinfo');
  expect(refused).toEqual([]);
});

describe('the ledger user is refused', () => {
  const COMMAND = /^NOPERM.*command|script can't run this command/;
  const KEY = /^NOPERM.*key|script can't access .*keys/i;
  test.each([
    ['FLUSHALL', ['FLUSHALL'], COMMAND],
    ['FLUSHDB', ['FLUSHDB'], COMMAND],
    ['CONFIG SET', ['CONFIG', 'SET', 'appendfsync', 'no'], COMMAND],
    ['CONFIG REWRITE', ['CONFIG', 'REWRITE'], COMMAND],
    ['KEYS', ['KEYS', '*'], COMMAND],
    ['SCAN', ['SCAN', '0'], COMMAND],
    ['DEBUG (enabled on this server)', ['DEBUG', 'SLEEP', '0'], COMMAND],
    ['SHUTDOWN', ['SHUTDOWN', 'NOSAVE'], COMMAND],
    ['SCRIPT FLUSH', ['SCRIPT', 'FLUSH'], COMMAND],
    ['ACL SETUSER (granting itself more)', ['ACL', 'SETUSER', 'ledger', '+@all', '~*'], COMMAND],
    ['ACL LIST', ['ACL', 'LIST'], COMMAND],
    ['CLIENT KILL', ['CLIENT', 'KILL', 'USER', 'admin'], COMMAND],
    // GET, SET and DEL are granted on the locks' keys only (a selector): refused elsewhere.
    ['GET other:key', ['GET', 'other:key'], KEY],
    ['SET other:key', ['SET', 'other:key', 'x'], KEY],
    ['DEL of its own keys', ['DEL', own('meta')], KEY],
    ['SET of its own keys', ['SET', own('meta'), 'x'], KEY],
    ['PUBLISH', ['PUBLISH', 'channel', 'x'], COMMAND],
    ['HGETALL of a key outside the prefix', ['HGETALL', 'other:key'], KEY],
    // Every ledger of the prefix is the service's (ledgers); another prefix is not.
    ['HSET into a ledger of another prefix', ['HSET', 'other:{x}:a:x', 'cur', 'USD'], KEY],
    ['EVAL declaring an outside key', ['EVAL', "return redis.call('HGETALL', KEYS[1])", '1',
      'other:key'], KEY],
    ['EVAL touching an outside key it did not declare', ['EVAL',
      "return redis.call('HGETALL', 'other:key')", '1', own('meta')], KEY],
    ['EVAL calling FLUSHALL', ['EVAL', "return redis.call('FLUSHALL')", '0'], COMMAND],
  ])('%s', async (_name, [command, ...args], refusal) => {
    await expect(ledgerUser.call(command as string, ...(args as string[])))
      .rejects.toThrow(refusal as RegExp);
  });

  test('and nothing changed: data, configuration and the server itself', async () => {
    expect(await admin.get('other:key')).toBe('untouched');
    expect(await admin.exists(own('meta'), own('a:alice'), own('j'))).toBe(3);
    expect(await admin.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    const shas = [...loadScripts().values()].map((s) => s.sha);
    expect(await admin.call('SCRIPT', 'EXISTS', ...shas)).toEqual(shas.map(() => 1));
  });
});

test('CONFIG GET of any parameter is allowed: Redis cannot narrow it to two', async () => {
  // Readiness needs CONFIG GET appendfsync and aof-load-truncated. Redis 7 ACLs cannot allow a
  // subcommand for some arguments only ("Allowing first-arg of a subcommand is not supported"),
  // so the user can read every setting (deploy/redis/README.md says what that exposes).
  expect(await ledgerUser.config('GET', 'maxmemory-policy'))
    .toEqual(['maxmemory-policy', 'noeviction']);
});

test('QUIT, which the service sends on graceful shutdown, is answered', async () => {
  // Redis 7 does not check QUIT (a no-auth command) against the ACL; `+quit` names it anyway,
  // so the file lists every command the service sends.
  const client = raw(url('ledger', PASSWORD));
  await client.connect();
  expect(await client.quit()).toBe('OK');
});

describe('the other users', () => {
  test('a connection that does not log in can do nothing: the default user is off', async () => {
    const anonymous = new Redis(`redis://127.0.0.1:${server.port}`, { lazyConnect: true,
      enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    anonymous.on('error', () => {});
    await anonymous.connect();
    try {
      await expect(anonymous.call('PING')).rejects.toThrow(/^NOAUTH/);
    } finally {
      anonymous.disconnect();
    }
  });

  test("docker-compose.yml's health check gets PONG; its user can run nothing else", async () => {
    const compose = parse(readFileSync('docker-compose.yml', 'utf8'));
    const [cmd, cli, ...args] = compose.services.redis.healthcheck.test as string[];
    expect([cmd, cli]).toEqual(['CMD', 'redis-cli']);
    const check = spawnSync('redis-cli', ['-p', String(server.port), ...args],
      { encoding: 'utf8' });
    expect(check.stdout.trim()).toBe('PONG');
    const probe = raw(`redis://healthcheck:anything@127.0.0.1:${server.port}`);
    await probe.connect();
    try {
      for (const command of [['INFO'], ['GET', own('meta')], ['CONFIG', 'GET', 'dir']]) {
        await expect(probe.call(command[0] as string, ...command.slice(1)))
          .rejects.toThrow(/^NOPERM/);
      }
    } finally {
      probe.disconnect();
    }
  });
});
