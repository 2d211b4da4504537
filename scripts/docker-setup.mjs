// The one step before `docker compose up --build` (docs/docker.md): writes the stack's secrets
// and the `.env` compose reads, then prints the API key to call the ledger with.
//   .env                        LEDGER_REDIS_PASSWORD and LEDGER_API_KEYS; other lines kept   0600
//   secrets/ledger-api-key      the caller key `local` (write, metrics, admin)                0600
//   secrets/ledger-metrics-key  Prometheus's key `prometheus` (metrics only)                 0644
//   secrets/users.acl           deploy/redis/users.acl with the password's SHA-256           0644
// The two 0644 files are bind-mounted into containers whose users (redis, nobody) are not the
// host's user, so they must be world-readable there; secrets/ itself is 0700 on the host.
// Idempotent: existing secrets are kept (a running stack keeps working); `--force` makes all of
// them anew. Plain Node, no dependencies: a Docker user need not have run `npm ci`.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ENV_FILE = '.env';
const SECRETS_DIR = 'secrets';
const API_KEY_FILE = 'secrets/ledger-api-key';
const METRICS_KEY_FILE = 'secrets/ledger-metrics-key';
const ACL_FILE = 'secrets/users.acl';
const ACL_TEMPLATE = 'deploy/redis/users.acl';
/** What the template holds in place of the hash (test/security/redis.ts checks the same). */
const PASSWORD_PLACEHOLDER = '#REPLACE_WITH_SHA256_HEX_OF_THE_LEDGER_REDIS_PASSWORD';
/** Our entries of LEDGER_API_KEYS (src/auth/keys.ts: name:scope+scope:sha256hex). */
const CALLER = { name: 'local', scopes: 'write+metrics+admin' };
const SCRAPER = { name: 'prometheus', scopes: 'metrics' };
/** The same rules as src/auth/keys.ts, so that no entry kept here stops the service. */
const SCOPE = '(read|write|metrics|admin)';
const ENTRY = new RegExp(`^([A-Za-z0-9_.-]{1,64}):${SCOPE}(\\+${SCOPE})*:[0-9a-f]{64}$`);
/** Unreserved URL characters: the password goes into REDIS_URL unescaped. */
const URL_SAFE = /^[A-Za-z0-9._~-]+$/;
const BASE = 'http://127.0.0.1:3000';

const path = (file) => join(root, file);
const sha256hex = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
/** As src/auth/keys.ts newSecret: 32 random bytes, base64url. */
const newSecret = () => randomBytes(32).toString('base64url');

function fail(message) {
  console.error(`docker-setup: ${message}`);
  process.exit(1);
}

/** Writes only when the content differs (a re-run changes nothing), then enforces the mode. */
function write(file, text, mode) {
  const target = path(file);
  const changed = !existsSync(target) || readFileSync(target, 'utf8') !== text;
  if (changed) {
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, text, { mode });
    renameSync(temporary, target);
  }
  chmodSync(target, mode);
  return changed;
}

function readSecret(file, force) {
  if (force || !existsSync(path(file))) return undefined;
  const secret = readFileSync(path(file), 'utf8').trim();
  return secret === '' ? undefined : secret;
}

/** `.env` as lines, and the value of each NAME=value line (compose's format, unquoted). */
function readEnv() {
  const text = existsSync(path(ENV_FILE)) ? readFileSync(path(ENV_FILE), 'utf8') : '';
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const values = new Map();
  for (const line of lines) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (match) values.set(match[1], match[2].trim().replace(/^(['"])(.*)\1$/, '$2'));
  }
  return { lines, values };
}

/** The Redis password: the one in .env unless forced; refused if a URL would need it escaped. */
function redisPassword(values, force) {
  const existing = force ? undefined : values.get('LEDGER_REDIS_PASSWORD') || undefined;
  if (existing === undefined) return randomBytes(32).toString('hex');
  if (!URL_SAFE.test(existing)) {
    fail(`LEDGER_REDIS_PASSWORD in ${ENV_FILE} has characters REDIS_URL would need escaped: ` +
      'use only A-Z a-z 0-9 . _ ~ -, or run again with --force for a new one');
  }
  return existing;
}

/** Our two entries first, then the other well-formed entries already in .env. */
function apiKeys(values, secrets) {
  const ours = [CALLER, SCRAPER];
  const kept = [];
  for (const entry of (values.get('LEDGER_API_KEYS') ?? '').split(',').map((e) => e.trim())) {
    if (entry === '' || ours.some((k) => entry.startsWith(`${k.name}:`))) continue;
    const name = ENTRY.exec(entry)?.[1];
    if (name !== undefined && !kept.some((k) => k.startsWith(`${name}:`))) kept.push(entry);
    else console.error(`docker-setup: dropped LEDGER_API_KEYS entry "${entry}" from ${ENV_FILE}` +
      ' (malformed or a second one of its name: the service would refuse to start)');
  }
  const own = [`${CALLER.name}:${CALLER.scopes}:${sha256hex(secrets.caller)}`,
    `${SCRAPER.name}:${SCRAPER.scopes}:${sha256hex(secrets.scraper)}`];
  return [...own, ...kept].join(',');
}

/** .env with our two variables set in place (or appended); every other line as it was. */
function envText(lines, settings) {
  const out = lines.length > 0 ? [...lines]
    : ['# docker compose reads this file (docs/docker.md); written by npm run docker:setup.',
      '# Not committed: it holds the Redis password.'];
  for (const [name, value] of Object.entries(settings)) {
    const at = out.findIndex((l) => new RegExp(`^\\s*(export\\s+)?${name}\\s*=`).test(l));
    if (at === -1) out.push(`${name}=${value}`);
    else out[at] = `${name}=${value}`;
  }
  return `${out.join('\n')}\n`;
}

function aclText(password) {
  const template = readFileSync(path(ACL_TEMPLATE), 'utf8');
  if (template.split(PASSWORD_PLACEHOLDER).length !== 2) {
    fail(`${ACL_TEMPLATE} must hold the placeholder ${PASSWORD_PLACEHOLDER} once ` +
      `(this command writes the hash into ${ACL_FILE}; restore the file from git)`);
  }
  return template.replace(PASSWORD_PLACEHOLDER, `#${sha256hex(password)}`);
}

function warnShadowing(settings) {
  for (const [name, value] of Object.entries(settings)) {
    if (process.env[name] !== undefined && process.env[name] !== value) {
      console.error(`docker-setup: ${name} is set in this shell; compose prefers it to ` +
        `${ENV_FILE}: unset it before docker compose up`);
    }
  }
}

const USAGE = 'usage: npm run docker:setup [-- --force]   (--force: new secrets, all of them)';

function main(argv) {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const unknown = argv.filter((a) => a !== '--force');
  if (unknown.length > 0) fail(`unknown argument ${unknown[0]}; ${USAGE}`);
  const force = argv.includes('--force');
  const { lines, values } = readEnv();
  const password = redisPassword(values, force);
  const secrets = { caller: readSecret(API_KEY_FILE, force) ?? newSecret(),
    scraper: readSecret(METRICS_KEY_FILE, force) ?? newSecret() };
  const settings = { LEDGER_REDIS_PASSWORD: password, LEDGER_API_KEYS: apiKeys(values, secrets) };
  mkdirSync(path(SECRETS_DIR), { recursive: true, mode: 0o700 });
  chmodSync(path(SECRETS_DIR), 0o700);
  const changed = [
    write(API_KEY_FILE, `${secrets.caller}\n`, 0o600) && API_KEY_FILE,
    write(METRICS_KEY_FILE, `${secrets.scraper}\n`, 0o644) && METRICS_KEY_FILE,
    write(ACL_FILE, aclText(password), 0o644) && ACL_FILE,
    write(ENV_FILE, envText(lines, settings), 0o600) && ENV_FILE,
  ].filter(Boolean);
  warnShadowing(settings);
  report(changed, secrets.caller, force);
}

function report(changed, secret, force) {
  const K = `K="Authorization: Bearer $(cat ${API_KEY_FILE})"`;
  const account = '{"id":"cash","currency":"USD","overdraftLimit":"unlimited"}';
  console.log(changed.length === 0 ? 'docker-setup: everything was in place; nothing changed'
    : `docker-setup: wrote ${changed.join(', ')}`);
  console.log([
    '',
    `API key "${CALLER.name}" (write, metrics, admin), kept in ${API_KEY_FILE}:`,
    `  ${secret}`,
    '',
    'Start the stack (ledger :3000, Prometheus :9090, Grafana :3001):',
    force ? '  docker compose up --build --force-recreate   # new secrets: recreate all'
      : '  docker compose up --build',
    '',
    'Then, in another shell, from this directory:',
    `  ${K}`,
    `  curl -s -X POST ${BASE}/accounts -H "$K" -H 'Content-Type: application/json' \\`,
    `    -d '${account}'`,
  ].join('\n'));
}

main(process.argv.slice(2));
