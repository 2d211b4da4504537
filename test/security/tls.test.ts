/**
 * `rediss://`: the service over TLS to a real redis-server whose certificate a throwaway CA
 * signed (REDIS_TLS_CA_FILE → `createRedis(url, { tlsCaFile })`), logged in as the shipped
 * ACL's `ledger` user, as a deployment would run. Without the CA the connection is refused:
 * the certificate is verified, not merely encrypted. When redis-server was built without TLS or
 * openssl is missing it does not pass silently: it fails in CI (both are packages the set-up can
 * install) and is skipped elsewhere, named in .ci/run's last lines (helpers/guarantees.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { App } from '../../src/app.js';
import { createRedis } from '../../src/redis/client.js';
import { guaranteeRuns } from '../helpers/guarantees.js';
import { uniqueLedgerName } from '../helpers/ledger.js';
import { fullFlow } from './flow.js';
import { appOver, renderAcl, startRedis, type TestRedis } from './redis.js';

const PASSWORD = 'tls-test-ledger-password-0123456789';

/** Why TLS cannot be tested here, or undefined when it can. */
function tlsUnavailable(): string | undefined {
  if (spawnSync('openssl', ['version']).status !== 0) return 'openssl is not installed';
  // A TLS build complains about the missing certificate; one without TLS about the option.
  const probe = spawnSync('redis-server', ['--port', '0', '--tls-port', '1', '--save', ''],
    { encoding: 'utf8', timeout: 5_000 });
  return /tls-cert-file/.test(probe.stdout) ? undefined
    : `redis-server was built without TLS: ${probe.stdout.trim().split('\n').pop()}`;
}

function openssl(dir: string, ...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 it signed, valid for a day. */
function certificates(dir: string): { ca: string; cert: string; key: string } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, 'req', '-x509', ...ec, '-days', '1', '-subj', '/CN=ledger-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign',
    '-keyout', 'ca.key', '-out', 'ca.crt');
  openssl(dir, 'req', ...ec, '-subj', '/CN=127.0.0.1', '-keyout', 'server.key',
    '-out', 'server.csr');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key',
    '-CAcreateserial', '-days', '1', '-extfile', 'server.ext', '-out', 'server.crt');
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

const runs = guaranteeRuns({ name: 'security/tls.test.ts rediss://', missing: tlsUnavailable(),
  installable: true });

describe.runIf(runs)('rediss://', () => {
  const ledgerName = uniqueLedgerName();
  let server: TestRedis;
  let ca: string;
  const url = () => `rediss://ledger:${PASSWORD}@127.0.0.1:${server.port}`;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-tls-'));
    const files = certificates(dir);
    ca = files.ca;
    writeFileSync(join(dir, 'users.acl'), renderAcl(PASSWORD, 'test'));
    server = await startRedis({ dir, tls: true, args: ['--tls-cert-file', files.cert,
      '--tls-key-file', files.key, '--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no',
      '--aclfile', join(dir, 'users.acl')] });
  });
  afterAll(async () => { await server?.stop(); });

  test('the service runs the full flow over TLS, as the ACL ledger user', async () => {
    const redis = createRedis(url(), { tlsCaFile: ca });
    redis.on('error', () => {});
    let app: App | undefined;
    try {
      await redis.connect();
      app = await appOver(redis, ledgerName);
      await fullFlow(app);
    } finally {
      await app?.close();
      redis.disconnect();
    }
  });

  test('without the CA the certificate is not trusted: no connection', async () => {
    const redis: Redis = createRedis(url());
    const errors: string[] = [];
    redis.on('error', (error: Error) => errors.push(error.message));
    try {
      await expect(redis.connect()).rejects.toThrow();
      expect(errors.join('\n')).toMatch(/self[- ]signed certificate|unable to verify/i);
    } finally {
      redis.disconnect();
    }
  });

  test('plain redis:// to the TLS port gets no answer that passes for Redis', async () => {
    const redis = createRedis(url().replace('rediss://', 'redis://'));
    redis.on('error', () => {});
    try {
      await expect(redis.connect()).rejects.toThrow();
    } finally {
      redis.disconnect();
    }
  });
});
