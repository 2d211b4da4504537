/**
 * A rolling deploy: this release and the next one, whose transfer script changed compatibly
 * (it appends a field to journal records, as the README's rules allow), serve the same ledger at
 * once under transfer load, a retry often landing on the other release. Scripts are called by
 * their SHA-1, so each release runs exactly its own code. Then the new release is stopped (a
 * rollback) and the old one carries on. Every response is checked, money is conserved, every
 * committed transfer is in both accounts' entries, and nothing acknowledged is lost.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LUA_DIR, loadScripts, type Script } from '../../src/ledger/scripts.js';
import { type Fixture, fixture, getJson, listen, postJson, uniqueLedgerName } from
  '../helpers/ledger.js';

const ACCOUNTS = ['cash', 'a1', 'a2', 'a3', 'a4'];
const CLIENTS = 6;
const TRANSFERS_PER_CLIENT_PER_PHASE = 60;

/**
 * The next release's scripts: a compatible change, a field appended to journal records. The
 * journal include writes them, so both transfer scripts change, as they would in a release.
 */
function nextRelease(): Map<string, Script> {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-next-release-'));
  cpSync(LUA_DIR, dir, { recursive: true });
  const file = join(dir, 'includes', 'journal.lua');
  const source = readFileSync(file, 'utf8');
  const changed = source.replace("'pt', ta[{{A_LAST_SEQ}}])",
    "'pt', ta[{{A_LAST_SEQ}}], 'v', '2')");
  expect(changed).not.toBe(source);
  writeFileSync(file, changed);
  const scripts = loadScripts(`${dir}/`);
  rmSync(dir, { recursive: true });
  for (const name of ['transfer', 'transfer-batch']) {
    expect(scripts.get(name)?.sha).not.toBe(loadScripts().get(name)?.sha);
  }
  return scripts;
}

let ledgerName: string;
let oldRelease: Fixture;
let newRelease: Fixture;
let oldUrl: string;
let newUrl: string;

beforeAll(async () => {
  ledgerName = uniqueLedgerName();
  oldRelease = await fixture({ ledgerName });
  newRelease = await fixture({ ledgerName, scripts: nextRelease() });
  [oldUrl, newUrl] = [await listen(oldRelease), await listen(newRelease)];
  for (const id of ACCOUNTS) {
    const res = await postJson(oldUrl, '/accounts', { id, currency: 'USD',
      overdraftLimit: id === 'cash' ? 'unlimited' : '0' });
    expect(res.status).toBe(201);
  }
});
afterAll(async () => {
  await newRelease?.close();
  await oldRelease?.close();
});

interface Sent { id: string; from: string; to: string; amount: string }
const committed = new Map<string, { body: Sent; seq: string }>();

/** Sends transfers to the given releases; each is sent twice (a retry), to a random release. */
async function load(urls: string[], phase: string): Promise<void> {
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    for (let i = 0; i < TRANSFERS_PER_CLIENT_PER_PHASE; i++) {
      const from = ACCOUNTS[(i + c) % ACCOUNTS.length] as string;
      const to = ACCOUNTS[(i + c + 1 + (i % 3)) % ACCOUNTS.length] as string;
      const body = { id: `${phase}-${c}-${i}`, from, to, amount: String(1 + ((i * 7) % 40)) };
      const pick = () => urls[Math.floor(Math.random() * urls.length)] as string;
      const first = await postJson(pick(), '/transfers', body);
      const retry = await postJson(pick(), '/transfers', body);
      expect([201, 422], first.text).toContain(first.status);
      expect(retry.status, retry.text).toBe(first.status);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(JSON.parse(retry.text)).toEqual(JSON.parse(first.text));
      if (first.status === 201) {
        committed.set(body.id, { body, seq: (JSON.parse(first.text) as { seq: string }).seq });
      } else {
        expect(JSON.parse(first.text).code).toBe('INSUFFICIENT_FUNDS');
      }
    }
  }));
}

async function checkLedger(base: string): Promise<void> {
  let total = 0n;
  const seen = new Map<string, number>();
  for (const id of ACCOUNTS) {
    const account = await (await getJson(`${base}/accounts/${id}`)).json() as { balance: string };
    total += BigInt(account.balance);
    let sum = 0n;
    let cursor = '';
    for (;;) {
      const page = await (await getJson(`${base}/accounts/${id}/entries?limit=1000${cursor}`))
        .json() as { entries: Array<{ transferId: string; amount: string }>;
        nextCursor: string | null };
      for (const e of page.entries) {
        sum += BigInt(e.amount);
        seen.set(e.transferId, (seen.get(e.transferId) ?? 0) + 1);
      }
      if (page.nextCursor === null) break;
      cursor = `&cursor=${page.nextCursor}`;
    }
    expect(sum, `entries of ${id} add up to its balance`).toBe(BigInt(account.balance));
  }
  expect(total, 'money is conserved').toBe(0n);
  for (const [id, { body, seq }] of committed) {
    expect(seen.get(id), `${id} in both accounts' entries`).toBe(2);
    const stored = await (await getJson(`${base}/transfers/${id}`)).json();
    expect(stored).toMatchObject({ ...body, status: 'committed', seq });
  }
  expect(seen.size).toBe(committed.size);
}

test('two releases side by side, then a rollback: nothing lost, every reply valid', async () => {
  const [oldSha, newSha] = [oldRelease, newRelease]
    .map((f) => f.ledger.scripts.get('transfer')?.sha);
  expect(oldSha).not.toBe(newSha);
  await load([oldUrl, newUrl], 'both');
  // Both versions are in Redis's script cache, each release calling its own.
  expect(await oldRelease.redis.script('EXISTS', oldSha as string, newSha as string))
    .toEqual([1, 1]);
  const journal = await oldRelease.redis.xrange(oldRelease.keys.journal(), '-', '+');
  const byNew = journal.filter(([, fields]) => fields.at(-2) === 'v').length;
  expect(byNew, 'the new release committed some transfers').toBeGreaterThan(0);
  expect(byNew, 'the old release committed some transfers').toBeLessThan(journal.length);
  await checkLedger(newUrl);

  await newRelease.close(); // the rollback
  await load([oldUrl], 'after');
  await checkLedger(oldUrl);
}, 60_000);
