/**
 * The bench harness (`npm run bench`), structurally: a BENCH_QUICK run into a temporary results
 * directory exits 0 and writes a JSON with every figure as a finite number (null where a figure
 * does not apply, "not available" for a batch endpoint that does not exist yet) and the
 * markdown report, holds' figures and goals among them, which --compare reads against a run
 * written before holds were measured. The archive's section ran on a PostgreSQL of its own and
 * checked what it archived (the audit, the id index, PostgreSQL, reads back). No speed is
 * asserted here: speed is what the bench reports, as ratios.
 * The bench starts its own redis-servers; the suite's shared one is not used.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { limits } from '../src/config/limits.js';
import { compareMarkdown } from '../bench/lib/compare.js';
import type { ArchiveResult } from '../bench/lib/archive.js';
import { OPERATION_KINDS } from '../bench/lib/holds.js';
import { REPLICATION_VARIANTS } from '../bench/lib/replication.js';
import { HOLD_STORAGE_KINDS } from '../bench/lib/holds-storage.js';
import { FIGURE_KEYS, type Figures, KINDS, PER_TRANSFER_KEYS,
  type Results } from '../bench/lib/results.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ledger-bench-test-'));
let child: ChildProcess | undefined;

afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGTERM'); // its handler stops the rest
  rmSync(dir, { recursive: true, force: true });
});

function runQuickBench(): Promise<{ code: number | null; output: string }> {
  child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
    cwd: ROOT,
    env: { ...process.env, BENCH_QUICK: '1', BENCH_RESULTS_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  return new Promise((ok) => child?.once('exit', (code) => ok({ code, output })));
}

const isFinite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);

function expectFigures(where: string, figures: Figures, perTransfer: boolean): void {
  for (const key of FIGURE_KEYS) {
    const value = figures[key];
    if (!perTransfer && PER_TRANSFER_KEYS.includes(key)) {
      expect(value, `${where}.${key}`).toBeNull();
    } else {
      expect(isFinite(value), `${where}.${key} = ${value}`).toBe(true);
    }
  }
}

test('BENCH_QUICK writes every figure, finite, and the markdown report', async () => {
  const { code, output } = await runQuickBench();
  expect(code, output).toBe(0);
  const files = readdirSync(dir);
  const json = files.filter((f) => f.endsWith('.json'));
  expect(json, files.join(', ')).toHaveLength(1);
  expect(json[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ-always\.json$/);
  const r = JSON.parse(readFileSync(join(dir, json[0] as string), 'utf8')) as Results;

  expect(r.schema).toBe(1);
  expect(r.parameters).toMatchObject({ quick: true, rounds: 1, fsyncPolicies: ['always'] });
  expect(r.machine.cores).toBeGreaterThan(0);
  expect(r.machine.cpuModel).not.toBe('');
  for (const name of ['node', 'redis', 'fastify', 'ioredis', 'autocannon']) {
    expect(r.versions[name], name).toMatch(/^v?\d+\.\d+/);
  }

  expect(Object.keys(r.policies)).toEqual(['always']);
  const policy = r.policies.always;
  if (policy === undefined) throw new Error('no always policy');
  let batchAvailable = true;
  for (const kind of KINDS) {
    const k = policy.kinds[kind];
    if (!k.available) {
      // Only the batch endpoint may be missing, and then it says so.
      expect(kind.startsWith('batch'), `${kind}: ${k.reason}`).toBe(true);
      expect(k.reason).toMatch(/^not available/);
      batchAvailable = false;
      continue;
    }
    expect(k.rounds).toHaveLength(1);
    expectFigures(`${kind}.median`, k.median, kind !== 'hello');
    for (const segment of k.rounds) {
      expectFigures(`${kind}.round${segment.round}`, segment, kind !== 'hello');
      expect(segment.okRequests, kind).toBeGreaterThan(0);
    }
  }
  expect(isFinite(policy.ratios.singleOverLean)).toBe(true);
  expect(isFinite(policy.ratios.leanOverHello)).toBe(true);
  expect(isFinite(policy.ratios.batchOverSingle)).toBe(batchAvailable);
  expect(isFinite(policy.ratios.batchAtomicOverSingle)).toBe(batchAvailable);
  const half = policy.halfRate;
  if (half === null) throw new Error('no half-rate figures');
  for (const value of [half.maxTransfersPerS, half.targetPerS, half.paced.p50Ms,
    half.paced.p99Ms, half.paced.achievedPerS, half.autocannon.p50Ms, half.autocannon.p99Ms,
    half.autocannon.achievedPerS, half.paced.loaderLagMaxMs, half.paced.maxInFlight,
    half.roundsMedianTransfersPerS, half.paced.serverCores, half.paced.redisCores,
    half.paced.loaderCores, half.paced.otherCores]) {
    expect(isFinite(value)).toBe(true);
  }

  for (const [kind, run] of Object.entries(r.storage.perKind)) {
    if (!run.available) {
      expect(kind.startsWith('batch') && !batchAvailable, `${kind}: ${run.reason}`).toBe(true);
      expect(run.reason).toMatch(/^not available/);
      continue;
    }
    expect(run.transfers, kind).toBeGreaterThan(0);
    expect(isFinite(run.ramBytesPerTransfer), kind).toBe(true);
    expect(isFinite(run.aofBytesPerTransfer), kind).toBe(true); // too small for a rewrite
  }
  expect(r.storage.large.transfers).toBeGreaterThan(0);
  expect(isFinite(r.storage.large.ramBytesPerTransfer)).toBe(true);

  expectHolds(r);
  expectReplication(r);
  expectCluster(r);
  expectArchive(r);

  expect(r.goals.length).toBeGreaterThanOrEqual(8);
  for (const goal of r.goals) {
    expect(['met', 'not met', 'not available']).toContain(goal.status);
    expect(goal.status === 'not available' || isFinite(goal.measured), goal.goal).toBe(true);
  }

  const md = readFileSync(join(dir, 'latest.md'), 'utf8');
  expect(md).toContain('## appendfsync always');
  expect(md).toContain('## Holds');
  expect(md).toContain('## Replica acknowledgements');
  expect(md).toContain('## Ledgers on Redis Cluster');
  expect(md).toContain('## Archive to PostgreSQL');
  expect(md).toContain('## Goals');
  expect(output).toContain('## Goals'); // the table is printed too

  // Against a run written before holds were measured: their rows are new, or gone, not errors.
  const { holds: _, ...older } = r;
  expect(compareMarkdown(older, 'older.json', r, 'later.json'))
    .toMatch(/\| holds: RAM, open hold ÷ transfer \| always \| — \| [\d.]+× \| new \|/);
  const gone = compareMarkdown(r, 'later.json', older, 'older.json');
  expect(gone).toMatch(/\| holds: Redis script time, hold \+ post ÷ transfer \| .* \| gone \|/);
});

function expectHolds(r: Results): void {
  const h = r.holds;
  if (h === undefined) throw new Error('no holds figures');
  expect(h.appendfsync).toBe('always');
  for (const kind of OPERATION_KINDS) {
    const m = h.cpu.median[kind];
    expect(m.operations, kind).toBe(r.parameters.holdsOperations);
    // The bench's ledger opened the holds, so it knows their accounts: a post is one call.
    expect(m.scriptCallsPerOperation, kind).toBe(1);
    expect(isFinite(m.redisScriptUs) && isFinite(m.redisCpuUs), kind).toBe(true);
  }
  expect(isFinite(h.cpu.holdPostOverTransfer)).toBe(true);
  expect(isFinite(h.cpu.holdPostOverTransferCpu)).toBe(true);
  expect(h.sweep).toMatchObject({ holds: limits.HOLDS_EXPIRE_BATCH_MAX,
    accounts: 2 * limits.HOLDS_EXPIRE_BATCH_MAX, calls: r.parameters.holdsSweeps });
  for (const value of [h.sweep.p50Ms, h.sweep.p95Ms, h.sweep.maxMs, h.sweep.readsP50Ms]) {
    expect(isFinite(value)).toBe(true);
  }
  // The worst sweep comes from the scripts run, which drives expire-holds at its worst.
  expect(h.sweepWorst?.case).toMatch(/HOLDS_EXPIRE_BATCH_MAX/);
  expect(isFinite(h.sweepWorst?.p95Ms)).toBe(true);
  for (const kind of HOLD_STORAGE_KINDS) {
    expect(h.storage[kind].stored, kind).toBe(r.parameters.holdsStored);
    expect(isFinite(h.storage[kind].ramBytesPer), kind).toBe(true);
    expect(isFinite(h.storage[kind].aofBytesPer), kind).toBe(true); // too small for a rewrite
  }
  expect(isFinite(h.storage.openHoldOverTransfer)).toBe(true);
  const goals = r.goals.filter((g) => /hold/.test(g.goal));
  expect(goals.map((g) => g.unit)).toEqual(['×', 'ms', '×']);
  for (const g of goals) expect(g.status, g.goal).not.toBe('not available');
}

/**
 * The archive: memory at each point, a catch-up that finished, both hot-path variants, and the
 * archived ledger intact (audit green, every id archived and in PostgreSQL, reads answered).
 */
function expectArchive(r: Results): void {
  const a = r.archive;
  if (a === undefined) throw new Error('no archive figures');
  if (!a.available) throw new Error(`archive: ${a.reason}`);
  const x: ArchiveResult = a;
  const m = x.memory;
  expect(m.transfers).toBe(r.parameters.archiveTransfers);
  expect(m.goalSize).toBe(false); // quick: fewer than the goal's 500,000
  expect(m.idLength).toBe(36);
  for (const value of [m.beforeBytesPerTransfer, m.afterBytesPerTransfer,
    m.afterDatasetBytesPerTransfer, m.afterAllocatorBytesPerTransfer]) {
    expect(isFinite(value)).toBe(true);
  }
  // Freed: less than before, the journal down to its newest record, the index in listpacks.
  expect(m.afterBytesPerTransfer).toBeLessThan(m.beforeBytesPerTransfer);
  expect(m.keysArchived.journalLength).toBe(1);
  expect(m.keysArchived.buckets.entries).toBe(m.transfers);
  expect(m.keysArchived.buckets.hashtable).toBe(0);
  expect(isFinite(m.keysArchived.buckets.bytesPerEntry)).toBe(true);
  expect(m.redisConfig['hash-max-listpack-entries']).toBe('512');
  expect(x.catchUp).toMatchObject({ finished: true, backlog: m.transfers, archiveErrors: 0,
    postgresRows: m.transfers });
  expect(isFinite(x.catchUp.recordsPerS) && isFinite(x.catchUpOverSingle)).toBe(true);
  for (const side of ['on', 'off'] as const) {
    expect(x.hot[side].rounds, side).toHaveLength(1);
    expect(x.hot[side].rounds[0]?.transfers, side).toBeGreaterThan(0);
    expect(x.hot[side].rounds[0]?.non2xx, side).toBe(0);
  }
  expect(isFinite(x.hot.onOverOff)).toBe(true);
  expect(x.hot.on.rounds[0]?.drainS, 'the archiver caught up').not.toBeNull();
  expect(x.checks.audit?.exitCode, x.checks.audit?.lastLines.join('\n')).toBe(0);
  expect(x.checks.index).toMatchObject({ ids: m.transfers, archived: m.transfers - 1,
    inRedis: 1, missing: 0 });
  expect(x.checks.postgres.found).toBe(m.transfers);
  expect(x.checks.reads.ok).toBe(r.parameters.archiveReads);
  const goals = r.goals.filter((g) => g.goal.startsWith('archive:'));
  expect(goals).toHaveLength(4);
  for (const g of goals) expect(g.status, g.goal).not.toBe('not available');
}

/** The replica-acks section: both variants measured on one primary + replica, WAITs counted. */
/** Ledgers on Redis Cluster: both figures measured, the ledgers spread 2 per primary. */
function expectCluster(r: Results): void {
  const c = r.cluster;
  if (c === undefined) throw new Error('no cluster figures');
  expect(c.ledgers.map((l) => l.primary)).toEqual([0, 0, 1, 1, 2, 2]);
  for (const v of ['redis', 'cluster3'] as const) {
    expect(c.cpu[v].rounds[0]?.transfers, v).toBeGreaterThan(0);
    expect(c.cpu[v].rounds[0]?.non2xx, v).toBe(0);
  }
  expect(isFinite(c.cpu.clusterOverSingleCpu)).toBe(true);
  for (const v of ['cluster3', 'cluster1'] as const) {
    expect(c.spread[v].rounds[0]?.nonCommitted, v).toBe(0);
  }
  expect(c.spread.cluster3.nodes.map((n) => n.ledgers)).toEqual([2, 2, 2]);
}

function expectReplication(r: Results): void {
  const x = r.replication;
  if (x === undefined) throw new Error('no replication figures');
  expect(x.appendfsync).toBe('always');
  for (const v of REPLICATION_VARIANTS) {
    const k = x.variants[v];
    expect(k.rounds).toHaveLength(1);
    expect(k.rounds[0]?.transfers, v).toBeGreaterThan(0);
    expect(k.rounds[0]?.linkUp, v).toBe(true);
    expect(isFinite(k.median.transfersPerS) && isFinite(k.halfRate?.p99Ms ?? NaN), v).toBe(true);
    expect(k.rounds[0]?.acks === null, v).toBe(v === 'acks0');
  }
  expect(isFinite(x.acksOverNoAcks)).toBe(true);
  expect(x.acks?.waits).toBeGreaterThan(0);
  expect(isFinite(x.acks?.writesPerWait ?? NaN)).toBe(true);
  expect(x.acks?.failures).toBe(0);
  const g = r.goals.filter((goal) => /replica acks/.test(goal.goal));
  expect(g).toHaveLength(1);
  expect(g[0]?.status).not.toBe('not available');
}
