/**
 * Sentinel failover under the bank workload (issue 14): the service follows the primary the
 * Sentinels name (REDIS_SENTINELS) and, with LEDGER_REPLICA_ACKS=1, answers a write only once a
 * replica has it, so no failover may lose an acknowledged write. Faults: kill -9 of the primary
 * (its replication slowed first, so replicas lag), the primary frozen (SIGSTOP) through a
 * failover and then thawed, and a cut between the primary and its replicas followed by a
 * failover Sentinel is asked for. After each, the old primary must rejoin as a replica and
 * keep nothing the others lack (all three nodes identical). The same kill with
 * LEDGER_REPLICA_ACKS=0 must lose acknowledged writes: the checker sees it, so it can fail.
 * A table of failover times and losses goes to stdout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, test } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { isWrite } from '../faults/bank/history.js';
import {
  ambiguousInFaults, type FailoverMark, failoverTable, type HaContext, type HaRun, haScenario,
  otherServerErrors,
} from './scenario.js';
import type { RedisNode } from './nodes.js';
import type { Topology } from './topology.js';

/**
 * The primary's replication links are slowed this much each way before the kill, so replicas
 * lag behind what the primary acknowledged. A WAIT then takes about twice this: well within
 * the service's ack timeout (REPLICA_ACK_TIMEOUT_MS, the default), or acks 1 would be all 503.
 */
const SLOW_REPLICATION_MS = 150;
if (SLOW_REPLICATION_MS * 3 > limits.REPLICA_ACK_TIMEOUT_MS) {
  throw new Error('SLOW_REPLICATION_MS: a WAIT round trip must fit in the ack timeout');
}
const SLOW_BEFORE_KILL_MS = 1000;
/** The workload runs on the new primary this long before the old one is brought back. */
const AFTER_FAILOVER_MS = 1500;
/** How long the primary's replication stays cut before a failover is asked for. */
const CUT_MS = 3000;
/** With acks 0 the kill is repeated up to this often until the checker finds a loss. */
const UNSAFE_RUNS_MAX = 3;
const SCENARIO_TIMEOUT_MS = 150_000;

const runs: HaRun[] = [];

afterAll(() => {
  if (runs.length > 0) console.info(failoverTable(runs));
});

async function primaryOf(topology: Topology): Promise<RedisNode> {
  const primary = await topology.primary();
  if (primary === undefined) throw new Error(`no primary: ${await topology.describe()}`);
  return primary;
}

/** Restarts (or thaws) the old primary and waits until it is a replica again. */
async function rejoin(ctx: HaContext, bringBack: () => Promise<void>): Promise<number> {
  return ctx.history.during('old primary back, rejoins as a replica', async () => {
    const start = Date.now();
    await bringBack();
    await ctx.topology.waitHealthy();
    return Date.now() - start;
  });
}

/** kill -9 of the primary with its replication slowed; the old one restarted if `restart`. */
function killPrimary(restart: boolean) {
  return async (ctx: HaContext): Promise<FailoverMark> => {
    const { topology, history } = ctx;
    const old = await primaryOf(topology);
    old.proxy.setMode('replication', { kind: 'delay', ms: SLOW_REPLICATION_MS });
    await sleep(SLOW_BEFORE_KILL_MS);
    const faultAt = Date.now();
    const failover = await history.during('primary kill -9 until a failover', async () => {
      await old.kill();
      return topology.waitForFailover(old, faultAt);
    });
    old.proxy.setMode('replication', { kind: 'pass' }); // its next life starts with no delay
    await sleep(AFTER_FAILOVER_MS);
    const rejoinMs = restart ? await rejoin(ctx, () => old.start()) : undefined;
    return { faultAt, switchAt: failover.at, from: old.name, to: failover.node.name, rejoinMs };
  };
}

function expectNothingLost(run: HaRun): void {
  expect(run.check.violations).toEqual([]);
  expect(run.check.lost).toBe(0);
  expect(run.check.doubleApplied).toBe(0);
  expect(run.first201Ms, 'no write committed after the failover').not.toBeUndefined();
  expect(run.digest, 'all nodes identical at the end').not.toBeUndefined();
  expect(ambiguousInFaults(run.history), 'no request was disturbed by the fault')
    .toBeGreaterThan(0);
  // A failover is no bug: unknown outcomes are 503, never 500 (docs/api.md).
  expect(otherServerErrors(run.history).map((a) => `${a.status} ${a.text.slice(0, 160)}`)
    .slice(0, 3), '5xx answers other than 503').toEqual([]);
  // An acknowledged write is visible to every later read: none went to a deposed primary.
  expect(run.probe.stale.slice(0, 3).map((r) => `${r.id}: 404 ${r.at - r.acknowledgedAt} ms ` +
    `after its 201, ${r.at - run.mark.faultAt} ms after the fault`), 'stale reads').toEqual([]);
}

test('kill -9 of the primary (replicas lagging), failover, old primary rejoins [acks 1]',
  async () => {
    const run = await haScenario('primary kill -9', { acks: 1, identical: true },
      killPrimary(true));
    runs.push(run);
    expectNothingLost(run);
  }, SCENARIO_TIMEOUT_MS);

test('primary frozen (SIGSTOP) through a failover, then SIGCONT: it rejoins [acks 1]',
  async () => {
    const run = await haScenario('primary SIGSTOP', { acks: 1, identical: true },
      async (ctx) => {
        const { topology, history } = ctx;
        const old = await primaryOf(topology);
        const faultAt = Date.now();
        const failover = await history.during('primary SIGSTOP until a failover', async () => {
          old.freeze();
          return topology.waitForFailover(old, faultAt);
        });
        await sleep(AFTER_FAILOVER_MS);
        // Thawed, it still believes it is the primary until Sentinel demotes it; whatever it
        // takes meanwhile must never be acknowledged, and is discarded when it resyncs.
        const rejoinMs = await rejoin(ctx, async () => old.thaw());
        return { faultAt, switchAt: failover.at, from: old.name, to: failover.node.name,
          rejoinMs };
      });
    runs.push(run);
    expectNothingLost(run);
  }, SCENARIO_TIMEOUT_MS);

test('replication cut from the primary: writes are 503, never decided; then a failover ' +
  '[acks 1]', async () => {
  let cutAt = 0;
  let failoverAskedAt = 0;
  const run = await haScenario('replication cut + SENTINEL FAILOVER', { acks: 1,
    identical: true }, async (ctx) => {
    const { topology, history } = ctx;
    const old = await primaryOf(topology);
    const failover = await history.during('replication cut, then a failover', async () => {
      cutAt = Date.now();
      old.proxy.setMode('replication', { kind: 'cut' });
      await sleep(CUT_MS);
      failoverAskedAt = Date.now();
      await topology.requestFailover();
      return topology.waitForFailover(old, failoverAskedAt);
    });
    old.proxy.setMode('replication', { kind: 'pass' }); // the heal: cut links are reset
    await sleep(AFTER_FAILOVER_MS);
    // Still up all along: Sentinel demotes it once it sees it claim the primary role.
    const rejoinMs = await rejoin(ctx, async () => {});
    return { faultAt: failoverAskedAt, switchAt: failover.at, from: old.name,
      to: failover.node.name, rejoinMs };
  });
  runs.push(run);
  // Sent after the cut and answered before the failover began: only the old primary, cut from
  // its replicas, can have answered them. A new write decided there (201, or a 422 that
  // records its rejection) would be acknowledged with no replica holding it.
  const inCut = run.history.ops.filter((op) => isWrite(op.kind)).flatMap((op) => op.attempts)
    .filter((a) => a.start >= cutAt && a.end < failoverAskedAt);
  const decided = inCut.filter((a) => a.answer === '201' || a.answer === '422');
  console.info(`replication cut: ${inCut.length} write attempts in it, answers ` +
    JSON.stringify(Object.fromEntries([...new Set(inCut.map((a) => a.answer))]
      .map((k) => [k, inCut.filter((a) => a.answer === k).length]))));
  expect(decided.map((a) => `${a.status} ${a.text.slice(0, 120)}`)).toEqual([]);
  expect(inCut.filter((a) => a.answer === '503 UNAVAILABLE').length,
    'writes during the cut answered 503 UNAVAILABLE').toBeGreaterThan(0);
  expectNothingLost(run);
}, SCENARIO_TIMEOUT_MS);

/**
 * The suite can fail: the kill above with LEDGER_REPLICA_ACKS=0. The replicas lag by the slowed
 * link, so what the primary acknowledged in its last ~150 ms is on no replica when it dies, and
 * the checker must report it lost. Repeated (a fresh topology each time) until it does.
 */
test('the same kill -9 with LEDGER_REPLICA_ACKS=0 loses acknowledged writes', async () => {
  const lost: number[] = [];
  for (let i = 0; i < UNSAFE_RUNS_MAX && !lost.some((n) => n > 0); i++) {
    const run = await haScenario(`primary kill -9 #${i + 1}`, { acks: 0, identical: false,
      lossesExpected: true }, killPrimary(false));
    runs.push(run);
    lost.push(run.check.lost);
    console.info(`acks 0, run ${i + 1}: violations by kind ${JSON.stringify(run.check.counts)}`);
  }
  console.info(`acks 0: acknowledged writes lost per run: ${lost.join(', ')}`);
  expect(lost.some((n) => n > 0), 'the checker found no loss without replica acks').toBe(true);
}, SCENARIO_TIMEOUT_MS * UNSAFE_RUNS_MAX);
