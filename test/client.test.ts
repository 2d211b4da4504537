/**
 * The typed TypeScript client (clients/typescript/): its generated types are those of the
 * committed OpenAPI document, it compiles with `--strict` without one cast or non-null
 * assertion, and a full scenario through it (example/scenario.ts) runs against the real service
 * listening on a real port, on a real Redis.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { scenario } from '../clients/typescript/example/scenario.js';
import { retryAfterMs } from '../clients/typescript/src/transfer.js';
import { SECRETS } from './helpers/auth.js';
import { type Fixture, fixture } from './helpers/ledger.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CLIENT = join(ROOT, 'clients/typescript');
/** The generated types (written by `npm run openapi:client`). */
const GENERATED = join(CLIENT, 'src', 'schema.ts');
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);

/** The client's TypeScript files, hand-written and generated. */
function clientFiles(): string[] {
  return readdirSync(CLIENT, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name)).sort();
}

/** `as` casts, `<T>x` assertions and `x!` non-null assertions in a file, by line. */
function assertions(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest,
    true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)
      || ts.isNonNullExpression(node)) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart());
      found.push(`${file.slice(ROOT.length)}:${line + 1}: ${node.getText()}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('the typed client', () => {
  test('its types are generated from the committed document (npm run openapi:client)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-client-'));
    try {
      const out = join(dir, 'schema.ts');
      const run = spawnSync(bin('openapi-typescript'), ['openapi/openapi.json', '-o', out],
        { cwd: ROOT, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
      expect(readFileSync(GENERATED, 'utf8'),
        "the client's generated types are stale: run `npm run openapi:client`")
        .toBe(readFileSync(out, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('compiles with --strict: the client and the scenario', () => {
    const run = spawnSync(bin('tsc'), ['--noEmit', '-p', join(CLIENT, 'tsconfig.json')],
      { cwd: ROOT, encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toBe('');
    expect(run.status).toBe(0);
    const config = JSON.parse(readFileSync(join(CLIENT, 'tsconfig.json'), 'utf8')) as
      { compilerOptions: { strict?: boolean } };
    expect(config.compilerOptions.strict).toBe(true);
  });

  test('has no cast and no non-null assertion (found by the TypeScript parser)', () => {
    const files = clientFiles();
    const names = ['scenario', 'client', 'schema', 'transfer'].map((n) => `/${n}.ts`);
    for (const name of names) expect(files.some((f) => f.endsWith(name)), name).toBe(true);
    expect(files.flatMap(assertions)).toEqual([]);
    // The check itself finds each kind.
    const dir = mkdtempSync(join(tmpdir(), 'ledger-probe-'));
    try {
      const probe = join(dir, 'probe.ts');
      writeFileSync(probe, 'const a = b as C;\nconst d = <E>f;\nconst g = h!.i;\n');
      expect(assertions(probe).map((p) => p.split(': ')[1]))
        .toEqual(['b as C', '<E>f', 'h!']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('Retry-After: seconds or an HTTP date', () => {
    expect(retryAfterMs('2')).toBe(2000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('Sun, 06 Dec 2026 10:00:05 GMT', Date.UTC(2026, 11, 6, 10)))
      .toBe(5000);
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('a full scenario through the client, against the service on a real port', () => {
  let f: Fixture;
  let baseUrl = '';
  beforeAll(async () => {
    f = await fixture();
    baseUrl = await f.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => { await f.close(); });

  test('accounts, transfers and their retries, reads, pages, batches, holds, a reversal and ' +
    'a closed account', async () => {
    const log = await scenario({ baseUrl, apiKey: SECRETS.test });
    expect(log).toEqual([
      'account cash: USD, overdraft unlimited',
      'account alice: USD, overdraft 0',
      'account shop: USD, overdraft 0',
      'account shop again: 200, in EUR: 409',
      'fund alice: committed seq 1, cash -10000, alice 10000',
      'pay the shop: committed seq 2, alice 7500, shop 2500',
      'the same again: committed seq 2, alice 7500, shop 2500 (replayed)',
      'the same id, another amount: conflict TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
      'more than alice has: rejected INSUFFICIENT_FUNDS: transfer "pay-2": "alice" cannot pay ' +
        '50000 USD within its overdraft limit',
      'that again: rejected INSUFFICIENT_FUNDS: transfer "pay-2": "alice" cannot pay 50000 USD ' +
        'within its overdraft limit (replayed)',
      'to an account nobody made: rejected ACCOUNT_NOT_FOUND: transfer "pay-3": account ' +
        '"nobody" does not exist',
      'to herself: refused 400 SAME_ACCOUNT',
      'pay-1: committed at seq 2',
      'pay-2: rejected for INSUFFICIENT_FUNDS',
      'alice 7500; entries: pay-1 -2500 → 7500; fund-1 10000 → 10000',
      'batch: b-1 201 seq 3; b-2 422 INSUFFICIENT_FUNDS; pay-1 409 ' +
        'TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS',
      'atomic batch: 422 ACCOUNT_NOT_FOUND at 1: transfers/1 ("a-2") would be rejected: ' +
        'transfer "a-2": account "ghost" does not exist; no transfer of this batch was ' +
        'applied or recorded',
      'retried transfer: committed seq 4, alice 6400, shop 3600 (replayed) after waits of ' +
        '2000, 1000, 300, 600 ms',
      'service down: undecided after 4 attempts: TypeError: fetch failed: connection refused; ' +
        'waits 75, 150, 300 ms',
      'hold auth-1: alice 6400, on hold 3000, available 3400',
      'capture-1: 2000, alice 4400; void after: PENDING_TRANSFER_ALREADY_POSTED; auth-1 posted ' +
        '2000',
      'void-2: released 1000; refund-1: alice 4900, capture-1 reversed 500',
      'shop closed; then a transfer to it: rejected ACCOUNT_CLOSED: transfer "pay-5": account ' +
        '"alice" or "shop" is closed',
    ]);
  }, 60_000);
});
