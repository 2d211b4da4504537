/**
 * The Docker stack's one set-up step (scripts/docker-setup.mjs, docs/docker.md), run as a user
 * runs it, in a copy of what compose reads. It writes the secrets and `.env` with the modes they
 * need; the API key it prints works against the service configured exactly as
 * docker-compose.yml configures it (its environment, interpolated from the written `.env`, and
 * the ledger user of the written ACL on a real redis-server started with compose's arguments);
 * a re-run changes nothing. Where a compose client exists, `docker compose config` accepts the
 * result (that needs no engine and no registry); elsewhere that one test is skipped, saying why.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { authenticate, parseApiKeys } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config/env.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { createRedis } from '../../src/redis/client.js';
import { json, ledgerApp } from '../helpers/ledger.js';
import { startRedis } from '../security/redis.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** What compose reads, and the set-up command itself: a user's checkout, minus the rest. */
const STACK = ['docker-compose.yml', 'Dockerfile', '.dockerignore', 'scripts/docker-setup.mjs',
  'deploy'];
const SECRET_FILES = { apiKey: 'secrets/ledger-api-key', metricsKey: 'secrets/ledger-metrics-key',
  acl: 'secrets/users.acl' };
const PLACEHOLDER = '#REPLACE_WITH_SHA256_HEX_OF_THE_LEDGER_REDIS_PASSWORD';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function copyStack(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-docker-'));
  dirs.push(dir);
  for (const item of STACK) cpSync(join(ROOT, item), join(dir, item), { recursive: true });
  return dir;
}

/** The caller's shell must not shadow .env (compose prefers the shell's values). */
function cleanEnv(): NodeJS.ProcessEnv {
  const { LEDGER_API_KEYS: _keys, LEDGER_REDIS_PASSWORD: _password, ...rest } = process.env;
  return rest;
}

/** As a user types it, from another directory: the script finds the checkout itself. */
function setup(dir: string, ...args: string[]) {
  const run = spawnSync(process.execPath, [join(dir, 'scripts/docker-setup.mjs'), ...args],
    { cwd: tmpdir(), env: cleanEnv(), encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return run;
}

const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');
const mode = (dir: string, file: string) => statSync(join(dir, file)).mode & 0o777;
const sha256hex = (text: string) => createHash('sha256').update(text).digest('hex');

function dotEnv(dir: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of read(dir, '.env').split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match) values[match[1] as string] = match[2] as string;
  }
  return values;
}

interface Compose {
  services: Record<string, { environment?: Record<string, string>; command?: string[] }>;
  secrets: Record<string, { file: string }>;
}
const composeFile = (dir: string) => parse(read(dir, 'docker-compose.yml')) as Compose;

/** Compose's `${NAME:?hint}` interpolation, failing as compose does on an unset NAME. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{(\w+)(?::\?[^}]*)?\}/g, (_all, name: string) => {
    const value = env[name];
    if (value === undefined || value === '') throw new Error(`${name} unset: compose would stop`);
    return value;
  });
}

/** The key and the curl body the command printed. */
function printed(stdout: string): { key: string; body: unknown } {
  const key = /^API key "local" .*:\n {2}(\S+)$/m.exec(stdout)?.[1];
  const body = /-d '(\{.*\})'$/m.exec(stdout)?.[1];
  expect(key, stdout).toBeDefined();
  expect(body, stdout).toBeDefined();
  return { key: key as string, body: JSON.parse(body as string) };
}

describe('npm run docker:setup', () => {
  let dir: string;
  let first: ReturnType<typeof setup>;
  beforeAll(() => {
    dir = copyStack();
    first = setup(dir);
  });

  test('writes .env and the secrets, with modes, and prints the key and the curl', () => {
    expect(mode(dir, '.env')).toBe(0o600);
    expect(mode(dir, 'secrets')).toBe(0o700);
    expect(mode(dir, SECRET_FILES.apiKey)).toBe(0o600);
    // Bind-mounted into containers running as redis and nobody: readable there; the 0700
    // directory keeps other users of the host out.
    expect(mode(dir, SECRET_FILES.metricsKey)).toBe(0o644);
    expect(mode(dir, SECRET_FILES.acl)).toBe(0o644);
    const env = dotEnv(dir);
    expect(env.LEDGER_REDIS_PASSWORD).toMatch(/^[0-9a-f]{64}$/);
    const password = env.LEDGER_REDIS_PASSWORD as string;
    expect(read(dir, SECRET_FILES.acl)).toBe(read(dir, 'deploy/redis/users.acl')
      .replace(PLACEHOLDER, `#${sha256hex(password)}`));
    expect(read(dir, SECRET_FILES.acl)).not.toContain(password);
    const { key, body } = printed(first.stdout);
    expect(read(dir, SECRET_FILES.apiKey)).toBe(`${key}\n`);
    expect(body).toEqual({ id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
    expect(first.stdout).toContain('docker compose up --build');
    expect(first.stdout).toContain(`$(cat ${SECRET_FILES.apiKey})`);
    // Compose's secrets are the files written here.
    for (const { file } of Object.values(composeFile(dir).secrets)) {
      expect(statSync(join(dir, file)).isFile(), file).toBe(true);
    }
  });

  test('the printed key works against the service as compose configures it', async () => {
    const compose = composeFile(dir);
    const environment = Object.fromEntries(Object.entries(compose.services.ledger?.environment
      ?? {}).map(([name, value]) => [name, interpolate(String(value), dotEnv(dir))]));
    // Compose's own Redis arguments, the ACL from the file its secret points to.
    const args = (compose.services.redis?.command ?? []).map((a) =>
      (a === '/deploy/redis/users.acl' ? join(dir, SECRET_FILES.acl) : a));
    const redisServer = await startRedis({ args });
    const config = loadConfig({ ...environment,
      REDIS_URL: environment.REDIS_URL?.replace('@redis:6379', `@127.0.0.1:${redisServer.port}`) });
    const redis = createRedis(config.redisUrl as string);
    redis.on('error', () => {});
    try {
      await redis.connect(); // as the ACL's ledger user, with the password from .env
      const auth = { mode: 'keys' as const, keys: config.apiKeys,
        ratePerSecond: config.ratePerSecond };
      const keys = ledgerKeys(config.keyPrefix, config.ledgerName);
      const { app } = await ledgerApp({ redis, keys, auth });
      await app.ready();
      const as = (secret: string) => ({ ...json, authorization: `Bearer ${secret}` });
      const { key, body } = printed(first.stdout);
      const metricsKey = read(dir, SECRET_FILES.metricsKey).trim();
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      const created = await app.inject({ method: 'POST', url: '/accounts', headers: as(key),
        payload: body as object });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.json()).toMatchObject({ id: 'cash', createdBy: 'local' });
      const scrape = await app.inject({ method: 'GET', url: '/metrics', headers: as(metricsKey) });
      expect(scrape.statusCode).toBe(200);
      expect((await app.inject({ method: 'POST', url: '/accounts', headers: as(metricsKey),
        payload: { id: 'x', currency: 'USD' } })).statusCode).toBe(403);
      expect((await app.inject({ method: 'GET', url: '/accounts/cash',
        headers: as('not-a-key') })).statusCode).toBe(401);
      await app.close();
    } finally {
      redis.disconnect();
      await redisServer.stop();
    }
  });

  test('a re-run changes nothing', () => {
    const files = ['.env', ...Object.values(SECRET_FILES)];
    const before = files.map((f) => [read(dir, f), statSync(join(dir, f)).mtimeMs]);
    const again = setup(dir);
    expect(files.map((f) => [read(dir, f), statSync(join(dir, f)).mtimeMs])).toEqual(before);
    expect(printed(again.stdout).key).toBe(printed(first.stdout).key);
    expect(again.stdout).toContain('nothing changed');
  });
});

test('--force makes every secret anew; other .env lines and valid keys are kept', () => {
  const dir = copyStack();
  const first = setup(dir);
  const other = `payments:write:${sha256hex('payments-secret')}`;
  const env = dotEnv(dir);
  // A user's own setting and key, and the entry the old comments invited to paste literally.
  writeFileSync(join(dir, '.env'), `${read(dir, '.env')}LOG_FORMAT=json\n`
    .replace(/^LEDGER_API_KEYS=(.*)$/m, `LEDGER_API_KEYS=$1,${other},...`));
  const forced = setup(dir, '--force');
  expect(forced.stderr).toMatch(/dropped LEDGER_API_KEYS entry "\.\.\."/);
  const after = dotEnv(dir);
  expect(after.LEDGER_REDIS_PASSWORD).not.toBe(env.LEDGER_REDIS_PASSWORD);
  expect(printed(forced.stdout).key).not.toBe(printed(first.stdout).key);
  expect(read(dir, '.env')).toContain('LOG_FORMAT=json\n');
  const keys = parseApiKeys(after.LEDGER_API_KEYS as string);
  expect(keys.map((k) => k.name)).toEqual(['local', 'prometheus', 'payments']);
  expect(authenticate(keys, printed(forced.stdout).key)?.name).toBe('local');
  expect(authenticate(keys, printed(first.stdout).key)).toBeUndefined();
  const password = after.LEDGER_REDIS_PASSWORD as string;
  expect(read(dir, SECRET_FILES.acl)).toContain(`#${sha256hex(password)}`);
});

test('what it writes stays out of git and out of the image build context', () => {
  const ignored = spawnSync('git', ['check-ignore', '.env', ...Object.values(SECRET_FILES)],
    { cwd: ROOT, encoding: 'utf8' });
  expect(ignored.stdout.trim().split('\n')).toEqual(['.env', ...Object.values(SECRET_FILES)]);
  const excluded = read(ROOT, '.dockerignore').split('\n').map((l) => l.trim());
  expect(excluded).toContain('.env');
  expect(excluded.some((l) => /^\/?secrets\/?$/.test(l)), '.dockerignore: secrets').toBe(true);
});

/** `docker compose` (v2) or `docker-compose` (v1), whichever answers; none: undefined. */
function composeClient(): string[] | undefined {
  for (const client of [['docker', 'compose'], ['docker-compose']]) {
    const probe = spawnSync(client[0] as string, [...client.slice(1), 'version'],
      { encoding: 'utf8' });
    if (probe.status === 0) return client;
  }
  return undefined;
}

const client = composeClient();
const NO_CLIENT = 'no Docker compose client (`docker compose version` and ' +
  '`docker-compose version` both failed)';

test(`docker compose config: hint before set-up, every value after it${client ? ''
  : ` (skipped: ${NO_CLIENT})`}`, (context) => {
  if (client === undefined) return context.skip(NO_CLIENT);
  const dir = copyStack();
  const config = () => spawnSync(client[0] as string, [...client.slice(1), 'config'],
    { cwd: dir, env: cleanEnv(), encoding: 'utf8' });
  const before = config();
  expect(before.status).not.toBe(0);
  expect(before.stderr).toContain('run npm run docker:setup');
  setup(dir);
  const after = config();
  expect(after.status, after.stderr).toBe(0);
  const resolved = parse(after.stdout) as Compose;
  const env = dotEnv(dir);
  const ledger = resolved.services.ledger?.environment ?? {};
  expect(ledger.REDIS_URL).toBe(`redis://ledger:${env.LEDGER_REDIS_PASSWORD}@redis:6379`);
  expect(ledger.LEDGER_API_KEYS).toBe(env.LEDGER_API_KEYS);
  expect(parseApiKeys(ledger.LEDGER_API_KEYS as string)).toHaveLength(2);
  for (const { file } of Object.values(resolved.secrets)) {
    expect(statSync(file).isFile(), file).toBe(true);
  }
});
