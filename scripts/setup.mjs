// Set-up for a fresh machine, run by npm before `start` and `test` (prestart/pretest).
// Plain Node with no dependencies: it runs before node_modules exists.
//   1. npm dependencies: `npm ci` when node_modules is missing or older than package-lock.json.
//   2. redis-server on PATH (the embedded Redis and the tests start their own): installed with
//      apt-get when we are root on Debian/Ubuntu, else one instruction and exit 1. Not needed
//      for `npm start` with REDIS_URL set. Nothing is started here.
//   3. For the tests only (not `npm start` nor `npm run bench`): prometheus and promtool
//      (Debian package `prometheus`), which test/metrics/ runs against the service; installed
//      the same way; openssl, with which the TLS tests make their certificates; and
//      rabbitmq-server (Debian package `rabbitmq-server`), of which the change-data tests start
//      their own brokers (test/helpers/rabbitmq.ts): installed without starting or enabling the
//      package's own broker.
//   4. For the tests and `npm run bench` (not `npm start`): PostgreSQL's binaries (Debian package
//      `postgresql`, without the cluster it would create and start on 5432), of which the
//      archive tests start their own clusters (test/helpers/postgres.ts) and the bench its
//      PostgreSQL baseline. Missing for the bench only: a warning, and no baseline.
// Quiet when everything is present.
import { spawnSync } from 'node:child_process';
import {
  accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(command, args, env = process.env) {
  console.log(`setup: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    cwd: root, stdio: 'inherit', env, shell: process.platform === 'win32',
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    console.error(`setup: \`${command} ${args.join(' ')}\` failed (exit ${result.status})`);
    process.exit(result.status ?? 1);
  }
}

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : undefined;
}

/** npm ci when node_modules is missing or package-lock.json changed since the last install. */
function ensureDependencies() {
  const lock = mtime(join(root, 'package-lock.json'));
  const installed = mtime(join(root, 'node_modules', '.package-lock.json'));
  if (installed !== undefined && (lock === undefined || lock <= installed)) return false;
  const quiet = ['--no-audit', '--no-fund'];
  if (lock === undefined) run('npm', ['install', ...quiet]);
  else run('npm', ['ci', ...quiet]);
  return true;
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

function redisNeeded() {
  // `npm start` with REDIS_URL uses that Redis; everything else (tests, embedded) needs the binary.
  return !(process.env.REDIS_URL && process.env.npm_lifecycle_event === 'prestart');
}

let aptUpdated = false;

/** apt-get install when root on Debian/Ubuntu; false when we cannot (the caller says what). */
function aptInstall(args, binaries) {
  const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root_ || !onPath('apt-get')) return false;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) run('apt-get', ['update'], env);
  aptUpdated = true;
  run('apt-get', ['install', '-y', ...args], env);
  const missing = binaries.filter((b) => !onPath(b));
  if (missing.length === 0) return true;
  console.error(`setup: apt-get installed ${args.at(-1)} but ${missing.join(', ')} is not on PATH`);
  process.exit(1);
}

function ensureRedisServer() {
  if (!redisNeeded() || onPath('redis-server')) return false;
  if (aptInstall(['redis-server'], ['redis-server'])) return true;
  const hint = process.platform === 'darwin'
    ? 'brew install redis'
    : 'sudo apt-get install -y redis-server';
  console.error(`setup: redis-server is not on PATH. Install it: ${hint}`);
  process.exit(1);
}

function prometheusNeeded() {
  // The metrics tests run a real Prometheus and promtool; the service and the bench never do.
  return !['prestart', 'prebench'].includes(process.env.npm_lifecycle_event);
}

function ensurePrometheus() {
  if (!prometheusNeeded() || (onPath('prometheus') && onPath('promtool'))) return false;
  // No recommends: prometheus-node-exporter would come along as a running service.
  const binaries = ['prometheus', 'promtool'];
  if (aptInstall(['--no-install-recommends', 'prometheus'], binaries)) return true;
  const hint = process.platform === 'darwin'
    ? 'brew install prometheus'
    : 'sudo apt-get install -y --no-install-recommends prometheus';
  console.error(`setup: prometheus and promtool (for the tests) are not on PATH. Install: ${hint}`);
  process.exit(1);
}

function ensureOpenssl() {
  // test/security/tls.test.ts makes its certificates with openssl (tests only, like Prometheus).
  if (!prometheusNeeded() || onPath('openssl')) return false;
  if (aptInstall(['openssl'], ['openssl'])) return true;
  console.error('setup: openssl (for the TLS tests) is not on PATH. Install: ' +
    (process.platform === 'darwin' ? 'brew install openssl' : 'sudo apt-get install -y openssl'));
  process.exit(1);
}

/** Where test/helpers/rabbitmq.ts looks: PATH, then Debian's places (/usr/sbin is not on every
 * PATH). */
function rabbitmqServer() {
  if (onPath('rabbitmq-server')) return true;
  return ['/usr/sbin/rabbitmq-server', '/usr/lib/rabbitmq/bin/rabbitmq-server'].some((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function ensureRabbitmq() {
  // The change-data tests start their own brokers (temp dir, free loopback ports), tests only.
  if (!prometheusNeeded() || rabbitmqServer()) return false;
  const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root_ && onPath('apt-get')) {
    // The package's postinst starts its broker (5672, epmd on 4369) through invoke-rc.d, which
    // asks policy-rc.d first: exit 101 is "not allowed", and nothing starts. Ours only while
    // apt-get runs, and only if there was none (Docker images ship one that stays).
    const policy = '/usr/sbin/policy-rc.d';
    const removePolicy = () => rmSync(policy, { force: true });
    const ours = !existsSync(policy);
    if (ours) {
      writeFileSync(policy, '#!/bin/sh\n# scripts/setup.mjs: no service starts during its ' +
        'apt-get install\nexit 101\n', { mode: 0o755 });
      process.once('exit', removePolicy); // run() exits the process when apt-get fails
    }
    let installed;
    try {
      // No recommends: nothing else that would run as a service.
      installed = aptInstall(['--no-install-recommends', 'rabbitmq-server'], []);
    } finally {
      if (ours) {
        process.off('exit', removePolicy);
        removePolicy();
      }
    }
    if (installed) {
      // The postinst also enables the service for the next boot (systemd unit, init.d links):
      // undone, best effort (either tool may be missing where the other is used).
      const disable = [
        ['deb-systemd-helper', ['disable', 'rabbitmq-server.service']],
        ['update-rc.d', ['rabbitmq-server', 'disable']],
      ];
      for (const [command, args] of disable) {
        if (onPath(command)) spawnSync(command, args, { stdio: 'ignore' });
      }
      if (rabbitmqServer()) return true;
      console.error('setup: apt-get installed rabbitmq-server but rabbitmq-server was not found');
      process.exit(1);
    }
  }
  const hint = process.platform === 'darwin'
    ? 'brew install rabbitmq'
    : 'sudo apt-get install -y --no-install-recommends rabbitmq-server';
  console.error('setup: rabbitmq-server (for the change-data tests) is not installed. ' +
    `Install: ${hint}`);
  process.exit(1);
}

/** Where test/helpers/postgres.ts looks: initdb and postgres on PATH, or in Debian's
 * /usr/lib/postgresql/<version>/bin. */
function postgresBinaries() {
  if (onPath('initdb') && onPath('postgres')) return true;
  const base = '/usr/lib/postgresql';
  return existsSync(base) && readdirSync(base).some((v) =>
    ['initdb', 'postgres'].every((b) => existsSync(join(base, v, 'bin', b))));
}

/** The Debian package creates and starts a cluster of its own on 5432 unless told not to. */
const NO_MAIN_CLUSTER_DIR = '/etc/postgresql-common/createcluster.d';
const NO_MAIN_CLUSTER_FILE = `${NO_MAIN_CLUSTER_DIR}/atomic-ledger.conf`;

function ensurePostgres() {
  // The archive tests start their own clusters, and `npm run bench` its baseline (temporary
  // directories, free loopback ports); `npm start` never runs PostgreSQL.
  const forTests = prometheusNeeded();
  const forBench = process.env.npm_lifecycle_event === 'prebench';
  if (!(forTests || forBench) || postgresBinaries()) return false;
  const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root_ && onPath('apt-get')) {
    mkdirSync(NO_MAIN_CLUSTER_DIR, { recursive: true });
    writeFileSync(NO_MAIN_CLUSTER_FILE, 'create_main_cluster = false\n');
    // No recommends: nothing else that would run as a service.
    if (aptInstall(['--no-install-recommends', 'postgresql'], [])) {
      if (postgresBinaries()) return true;
      console.error('setup: apt-get installed postgresql but initdb and postgres were not found');
      process.exit(1);
    }
  }
  const hint = process.platform === 'darwin'
    ? 'brew install postgresql@17, with its bin directory on PATH'
    : `sudo mkdir -p ${NO_MAIN_CLUSTER_DIR} && echo 'create_main_cluster = false' | ` +
      `sudo tee ${NO_MAIN_CLUSTER_FILE} >/dev/null && ` +
      'sudo apt-get install -y --no-install-recommends postgresql';
  if (forBench) {
    console.warn('setup: PostgreSQL is not installed: the bench reports its PostgreSQL ' +
      `baseline as not available (install: ${hint})`);
    return false;
  }
  console.error('setup: PostgreSQL (initdb and postgres, for the archive tests) is not ' +
    `installed. Install: ${hint}`);
  process.exit(1);
}

const changed = [ensureDependencies(), ensureRedisServer(), ensurePrometheus(), ensureOpenssl(),
  ensureRabbitmq(), ensurePostgres()];
if (changed.some(Boolean)) console.log('setup: done');
