/**
 * The Docker stack's one set-up step (scripts/docker-setup.mjs, docs/docker.md), run as a user
 * runs it, in a copy of what compose reads. It writes the secrets and `.env` with the modes they
 * need; the API key it prints works against the service configured exactly as
 * docker-compose.yml configures it (its environment, interpolated from the written `.env`, and
 * the ledger user of the written ACL on a real redis-server started with compose's arguments);
 * a re-run changes nothing. Where a compose client exists, `docker compose config` accepts the
 * result (that needs no engine and no registry); elsewhere that one test is skipped, saying why.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { authenticate, parseApiKeys } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config/env.js';
import { ledgerKeys } from '../../src/ledger/keys.js';
import { createRedis, createSentinelRedis } from '../../src/redis/client.js';
import { freePort } from '../../src/redis/embedded.js';
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

// --- Profile ha (docs/high-availability.md) -------------------------------------------------

const HA_DATA_NODES = ['redis-1', 'redis-2', 'redis-3'];
const HA_SENTINELS = ['sentinel-1', 'sentinel-2', 'sentinel-3'];
const HA_SERVICES = [...HA_DATA_NODES, ...HA_SENTINELS, 'ledger-ha', 'prometheus-ha',
  'grafana-ha'];
const DEFAULT_SERVICES = ['redis', 'ledger', 'prometheus', 'grafana'];

interface HaService {
  profiles?: string[];
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  /** Short syntax in the file and in compose v1's output; v2 prints the long one. */
  volumes?: Array<string | { source: string; target: string; read_only?: boolean }>;
  networks?: Record<string, { aliases?: string[] } | null> | string[];
}

const volume = (v: string | { source: string; target: string; read_only?: boolean }) =>
  (typeof v === 'string' ? v : `${v.source}:${v.target}${v.read_only ? ':ro' : ''}`);

/** `directive value…` lines of a redis.conf-format file, comments and blanks dropped. */
function directives(file: string): Map<string, string> {
  return new Map(read(ROOT, file).split('\n').map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => [l.slice(0, l.lastIndexOf(' ')), l.slice(l.lastIndexOf(' ') + 1)]));
}

/**
 * What the HA profile must be, on compose's resolved config (or the file with `.env` filled
 * in): the four default services untouched by it; three data nodes started by start.sh (which
 * includes ha.conf: AOF always); three Sentinels with quorum 2; a ledger on those Sentinels.
 */
function expectHaProfile(services: Record<string, HaService>, env: Record<string, string>) {
  const names = Object.keys(services);
  expect(names.filter((n) => services[n]?.profiles === undefined).sort())
    .toEqual([...DEFAULT_SERVICES].sort());
  expect(names.filter((n) => services[n]?.profiles?.join() === 'ha').sort())
    .toEqual([...HA_SERVICES].sort());
  for (const name of DEFAULT_SERVICES) { // compose v2 prints the implicit `default` network
    expect(Object.keys(services[name]?.networks ?? {}).filter((n) => n !== 'default'), name)
      .toEqual([]);
  }
  const redisArgs = (services.redis?.command ?? []).join(' ');
  expect(redisArgs).toContain('--appendonly yes');
  const ha = directives('deploy/redis/ha/ha.conf');
  expect([ha.get('appendonly'), ha.get('appendfsync')]).toEqual(['yes', 'always']);
  for (const [role, nodes] of [['redis', HA_DATA_NODES], ['sentinel', HA_SENTINELS]] as const) {
    for (const name of nodes) {
      const s = services[name] as HaService;
      expect(s.entrypoint, name).toEqual(['/bin/sh', '/deploy/redis/ha/start.sh']);
      expect(s.command, name).toEqual([role]);
      expect(s.environment?.HA_ANNOUNCE_HOST, name).toBe(name);
      expect(s.volumes?.map(volume).some((v) => /deploy\/redis\/ha:\/deploy\/redis\/ha:ro$/
        .test(v)), name).toBe(true);
    }
  }
  const [, primary, port, quorum] = /^sentinel monitor ledger (\S+) (\d+) (\d+)$/m
    .exec(read(ROOT, 'deploy/redis/ha/sentinel.conf')) ?? [];
  expect([primary, port, quorum]).toEqual(['redis-1', '6379', '2']);
  const sentinelPort = directives('deploy/redis/ha/sentinel.conf').get('port');
  const ledger = services['ledger-ha']?.environment ?? {};
  expect(ledger.REDIS_SENTINELS?.split(','))
    .toEqual(HA_SENTINELS.map((name) => `${name}:${sentinelPort}`));
  expect(ledger).toMatchObject({ REDIS_SENTINEL_NAME: 'ledger', LEDGER_REPLICA_ACKS: '1',
    REDIS_USERNAME: 'ledger', REDIS_PASSWORD: env.LEDGER_REDIS_PASSWORD,
    REDIS_SENTINEL_PASSWORD: env.LEDGER_REDIS_PASSWORD, LEDGER_API_KEYS: env.LEDGER_API_KEYS });
  expect(ledger.REDIS_URL).toBeUndefined();
  // The shipped prometheus.yml (target ledger:3000) and Grafana datasource (prometheus:9090)
  // find the HA ledger and Prometheus under these names on the ha network.
  const aliases = (name: string) => (services[name]?.networks as Record<string,
    { aliases?: string[] }>).ha?.aliases;
  expect([aliases('ledger-ha'), aliases('prometheus-ha')]).toEqual([['ledger'], ['prometheus']]);
}

test('profile ha: the set as the file declares it, with .env filled in', () => {
  const dir = copyStack();
  setup(dir);
  const env = dotEnv(dir);
  const services = parse(interpolate(read(dir, 'docker-compose.yml'), env)).services;
  expectHaProfile(services as Record<string, HaService>, env);
});

test('docs/high-availability.md gives every recommended setting its value from the files', () => {
  const rows = new Map([...read(ROOT, 'docs/high-availability.md')
    .matchAll(/^\| `([^`]+)` \| (?:quorum )?`([^`]*)` \|/gm)].map((m) => [m[1], m[2]]));
  const ha = directives('deploy/redis/ha/ha.conf');
  expect(ha.size).toBeGreaterThanOrEqual(15);
  for (const [directive, value] of ha) expect(rows.get(directive), directive).toBe(value);
  for (const [directive, value] of directives('deploy/redis/ha/sentinel.conf')) {
    if (/^sentinel (monitor|down-after|failover-timeout|parallel-syncs)/.test(directive)) {
      expect(rows.get(directive), directive).toBe(value);
    }
  }
});

test(`docker compose --profile ha config: the HA set as compose resolves it${client ? ''
  : ` (skipped: ${NO_CLIENT})`}`, (context) => {
  if (client === undefined) return context.skip(NO_CLIENT);
  const dir = copyStack();
  setup(dir);
  const config = spawnSync(client[0] as string, [...client.slice(1), '--profile', 'ha', 'config'],
    { cwd: dir, env: cleanEnv(), encoding: 'utf8' });
  expect(config.status, config.stderr).toBe(0);
  expectHaProfile((parse(config.stdout) as { services: Record<string, HaService> }).services,
    dotEnv(dir));
});

/**
 * The HA profile's scripts run for real, without Docker: deploy/redis/ha/start.sh starts the
 * three data nodes and three Sentinels on loopback (each announces 127.0.0.1 and its own port),
 * with the ACL docker:setup renders plus a test-only admin to read ACL LOG; the service's
 * Sentinel-mode connection (src/redis/client.ts) writes and WAITs for one replica while
 * failover.sh moves the primary.
 */
describe('profile ha, run from its scripts on loopback', () => {
  const ADMIN = 'ha-test-admin-password';
  const nodes = new Map<string, { port: number; child?: ChildProcess }>();
  const clients: Redis[] = [];
  let dir: string;
  let password: string;
  let newPrimary: number;
  const port = (name: string) => nodes.get(name)?.port as number;
  const killAll = () => { for (const n of nodes.values()) n.child?.kill('SIGKILL'); };

  function start(name: string): void {
    const node = nodes.get(name) as { port: number; child?: ChildProcess };
    const data = join(dir, 'nodes', name);
    mkdirSync(data, { recursive: true });
    const log = openSync(`${data}.log`, 'a');
    node.child = spawn('sh', [join(dir, 'deploy/redis/ha/start.sh'),
      name.startsWith('sentinel') ? 'sentinel' : 'redis'], { stdio: ['ignore', log, log],
      env: { ...process.env, HA_ANNOUNCE_HOST: '127.0.0.1', HA_PORT: String(node.port),
        HA_INITIAL_PRIMARY: `127.0.0.1 ${port('redis-1')}`, REDIS_DATA_DIR: data,
        HA_SECRETS_DIR: join(dir, 'ha-secrets'), LEDGER_ACL_FILE: join(dir, 'test.acl') } });
  }

  /** A connection as `user` (Sentinels: `default` when user is undefined), closed at the end. */
  async function connect(name: string, user: string | undefined, secret: string) {
    const client = new Redis({ port: port(name), username: user, password: secret,
      lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null,
      enableReadyCheck: false }); // INFO, which the Sentinels' default user may not run
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    return client;
  }

  /** One command on a connection of its own (the node may not be up yet). */
  async function ask(name: string, user: string | undefined, secret: string, ...args: string[]) {
    const client = await connect(name, user, secret);
    try {
      return await client.call(args[0] as string, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }

  async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const value = await check().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        const logs = [...nodes.keys()].map((n) => `${n}: ${read(dir, `nodes/${n}.log`)
          .split('\n').slice(-4).join('\n')}`);
        throw new Error(`timed out waiting for ${what}\n${logs.join('\n')}`);
      }
      await sleep(100);
    }
  }

  const fields = (text: string) => Object.fromEntries(text.split('\r\n')
    .filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));
  const replication = async (name: string) =>
    fields(String(await ask(name, 'ledger', password, 'INFO', 'replication')));
  const pairs = (flat: unknown) => Object.fromEntries((flat as string[])
    .flatMap((v, i, all) => (i % 2 === 0 ? [[v, all[i + 1]]] : [])));

  beforeAll(async () => {
    dir = copyStack();
    setup(dir);
    password = dotEnv(dir).LEDGER_REDIS_PASSWORD as string;
    writeFileSync(join(dir, 'test.acl'), `${read(dir, SECRET_FILES.acl)}` +
      `user admin on >${ADMIN} ~* &* +@all\n`);
    for (const name of [...HA_DATA_NODES, ...HA_SENTINELS]) {
      nodes.set(name, { port: await freePort() });
    }
    process.once('exit', killAll);
    for (const name of HA_DATA_NODES) start(name);
    await until('the data nodes', async () => (await replication('redis-3')).role);
    for (const name of HA_SENTINELS) start(name);
  });

  afterAll(async () => {
    for (const client of clients) client.disconnect();
    const exited = [...nodes.values()].flatMap(({ child }) =>
      (child && child.exitCode === null && child.signalCode === null ? [once(child, 'exit')] : []));
    killAll();
    await Promise.all(exited);
  });

  test('every data node runs ha.conf; the Sentinels find the replicas and each other', async () => {
    const mb = (v: string) =>
      v.replace(/^(\d+)mb$/, (_all, n: string) => String(Number(n) * 1048576));
    for (const name of HA_DATA_NODES) {
      const node = await connect(name, 'ledger', password);
      for (const [directive, value] of directives('deploy/redis/ha/ha.conf')) {
        const [, got] = (await node.call('CONFIG', 'GET', directive)) as string[];
        expect(got, `${name} ${directive}`).toBe(value === '""' ? '' : mb(value));
      }
    }
    // As the ledger: the Sentinels' default user, with the ledger's password.
    const master = await until('2 replicas and 2 other Sentinels', async () => {
      const m = pairs(await ask('sentinel-1', undefined, password, 'SENTINEL', 'MASTER',
        'ledger'));
      return m['num-slaves'] === '2' && m['num-other-sentinels'] === '2' ? m : undefined;
    });
    expect(master).toMatchObject({ ip: '127.0.0.1', port: String(port('redis-1')), quorum: '2',
      'down-after-milliseconds': '5000', 'failover-timeout': '60000', 'parallel-syncs': '1' });
  });

  test('failover.sh moves the primary under acknowledged writes, losing none', async () => {
    // The service's own Sentinel-mode connection.
    const ledger = createSentinelRedis({ sentinels: HA_SENTINELS.map((n) => ({ host: '127.0.0.1',
      port: port(n) })), name: 'ledger', username: 'ledger', password,
    sentinelPassword: password });
    ledger.on('error', () => {});
    clients.push(ledger);
    const acked: string[] = [];
    let stop = false;
    const writes = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await ledger.hset('ledger:{main}:ha-test', String(i), '1');
          if ((await ledger.wait(1, 500)) >= 1) acked.push(String(i));
        } catch { /* no answer: an unknown outcome, never counted as acknowledged */ }
        await sleep(5);
      }
    })();
    try {
      await until('acknowledged writes', async () => acked.length >= 20 || undefined);
      const failover = spawn('sh', [join(dir, 'deploy/redis/ha/failover.sh')], { env: {
        ...process.env, HA_SECRETS_DIR: join(dir, 'ha-secrets'),
        HA_SENTINEL: `127.0.0.1 ${port('sentinel-1')}` }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      failover.stdout.on('data', (d) => { output += d; });
      failover.stderr.on('data', (d) => { output += d; });
      const [code] = await once(failover, 'exit');
      expect(code, output).toBe(0);
      newPrimary = await until('another primary', async () => {
        const reply = await ask('sentinel-1', undefined, password, 'SENTINEL',
          'GET-MASTER-ADDR-BY-NAME', 'ledger');
        const at = (reply as string[])[1];
        return Number(at) !== port('redis-1') ? Number(at) : undefined;
      });
      const before = acked.length;
      await until('acknowledged writes on the new primary', async () =>
        acked.length >= before + 20 || undefined);
    } finally {
      stop = true;
      await writes;
    }
    const name = [...nodes.keys()].find((n) => port(n) === newPrimary) as string;
    const present = await (await connect(name, 'ledger', password))
      .hmget('ledger:{main}:ha-test', ...acked);
    expect(acked.filter((_id, i) => present[i] === null)).toEqual([]);
  });

  test('the old primary is a replica, also after a restart; no command was refused', async () => {
    await until('redis-1 to be a replica', async () =>
      ((await replication('redis-1')).role === 'slave' || undefined));
    expect(read(dir, 'nodes/redis-1/redis.conf'))
      .toMatch(new RegExp(`^replicaof "?127\\.0\\.0\\.1"? ${newPrimary}$`, 'm'));
    const old = nodes.get('redis-1')?.child as ChildProcess;
    const exited = once(old, 'exit');
    old.kill('SIGKILL');
    await exited;
    start('redis-1');
    await until('the restarted node to follow the new primary', async () => {
      const r = await replication('redis-1');
      return r.master_port === String(newPrimary) && r.master_link_status === 'up' || undefined;
    });
    const sentinelAdmin = read(dir, 'ha-secrets/admin.password');
    for (const name of nodes.keys()) {
      const admin = await connect(name, 'admin', name.startsWith('sentinel') ? sentinelAdmin
        : ADMIN);
      const log = ((await admin.call('ACL', 'LOG')) as unknown[]).map(pairs)
        .filter((e) => e.object !== 'client|setinfo');
      expect(log, name).toEqual([]);
    }
  });
});
