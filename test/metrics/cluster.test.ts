/**
 * How the primary combines its workers' metrics (src/metrics/cluster.ts), on real registries
 * made as the workers make theirs: counters and histograms summed, Redis gauges by min or max,
 * process metrics kept per worker, and totals that never go backwards when a worker is late or
 * gone. The processes themselves are test/workers.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { ClusterMetrics, combineParts, exposition, type MetricJson }
  from '../../src/metrics/cluster.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { parseExposition, valueOf } from './exposition.js';

/** A worker's registry as the primary receives it, with `committed` transfers counted. */
async function worker(slot: number, committed: number, gauges: { ready: number; memory: number }) {
  const m = createRegistry({ defaultMetrics: true, worker: String(slot) });
  m.transfers.child({ outcome: 'committed' }).inc(committed);
  const script = m.scriptDuration.child({ script: 'transfer', outcome: 'ok' });
  for (let i = 0; i < committed; i++) script.observe(0.0001 * (i + 1));
  m.ready.set(gauges.ready);
  m.redisUp.set(1);
  m.usedMemory.set(gauges.memory);
  m.aofDelayedFsync.inc(3); // the same Redis's increases, seen by every worker
  return (await m.registry.getMetricsAsJSON()) as unknown as MetricJson[];
}

const parse = async (metrics: MetricJson[]) => parseExposition(await exposition(metrics));

describe('combining workers', () => {
  test('sums counters and histograms, takes min or max of Redis gauges, keeps process ' +
    'metrics per worker', async () => {
    const one = await worker(1, 3, { ready: 1, memory: 1000 });
    const two = await worker(2, 4, { ready: 0, memory: 1500 });
    const samples = await parse(combineParts([one, two]));
    expect(valueOf(samples, 'ledger_transfers_total', { outcome: 'committed' })).toBe(7);
    const script = { script: 'transfer', outcome: 'ok' };
    expect(valueOf(samples, 'ledger_script_duration_seconds_count', script)).toBe(7);
    expect(valueOf(samples, 'ledger_script_duration_seconds_bucket', { ...script, le: '+Inf' }))
      .toBe(7);
    // 0.0001 and 0.0002 from each worker fall at or under the 0.00025 bound.
    expect(valueOf(samples, 'ledger_script_duration_seconds_bucket',
      { ...script, le: '0.00025' })).toBe(4);
    expect(valueOf(samples, 'ledger_ready')).toBe(0); // one worker not ready: the service is not
    expect(valueOf(samples, 'ledger_redis_up')).toBe(1);
    expect(valueOf(samples, 'ledger_redis_used_memory_bytes')).toBe(1500);
    expect(valueOf(samples, 'ledger_redis_aof_delayed_fsync_total')).toBe(3); // not 6
    const cpu = samples.filter((s) => s.name === 'process_cpu_seconds_total');
    expect(cpu.map((s) => s.labels.worker).sort()).toEqual(['1', '2']);
    // prom-client's cluster aggregation omits this one; per worker it means something.
    const started = samples.filter((s) => s.name === 'process_start_time_seconds');
    expect(started).toHaveLength(2);
  });

  test('an unknown aggregator is a programmer error, named', () => {
    const odd: MetricJson = { name: 'odd', help: 'h', type: 'gauge', aggregator: 'average',
      values: [{ value: 1, labels: {} }] };
    expect(() => combineParts([[odd], [odd]])).toThrow(/odd has aggregator average/);
  });
});

describe('totals never go backwards', () => {
  const committed = async (text: string) =>
    valueOf(parseExposition(text), 'ledger_transfers_total', { outcome: 'committed' });

  test('a late worker is counted by its last answer, without its gauges', async () => {
    const cluster = new ClusterMetrics();
    await cluster.render(0, new Map([[1, await worker(1, 3, { ready: 1, memory: 1 })],
      [2, await worker(2, 4, { ready: 1, memory: 1 })]]), []);
    const text = await cluster.render(1,
      new Map([[1, await worker(1, 5, { ready: 1, memory: 1 })]]), [2]);
    expect(await committed(text)).toBe(9);
    const samples = parseExposition(text);
    expect(valueOf(samples, 'ledger_workers', { state: 'answered' })).toBe(1);
    expect(valueOf(samples, 'ledger_workers', { state: 'late' })).toBe(1);
    expect(samples.filter((s) => s.name === 'process_cpu_seconds_total')).toHaveLength(1);
  });

  test('a worker that exited leaves its counts; its replacement adds to them', async () => {
    const cluster = new ClusterMetrics();
    await cluster.render(0, new Map([[1, await worker(1, 3, { ready: 1, memory: 1 })],
      [2, await worker(2, 4, { ready: 1, memory: 1 })]]), []);
    cluster.retire(2);
    cluster.restarted();
    let text = await cluster.render(1,
      new Map([[1, await worker(1, 3, { ready: 1, memory: 1 })]]), []);
    expect(await committed(text)).toBe(7);
    text = await cluster.render(2, new Map([[1, await worker(1, 3, { ready: 1, memory: 1 })],
      [3, await worker(2, 2, { ready: 1, memory: 1 })]]), []);
    expect(await committed(text)).toBe(9);
    expect(valueOf(parseExposition(text), 'ledger_worker_restarts_total')).toBe(1);
    // Per-worker series of the replacement only: the one that exited left no gauges behind.
    const cpu = parseExposition(text).filter((s) => s.name === 'process_cpu_seconds_total');
    expect(cpu.map((s) => s.labels.worker).sort()).toEqual(['1', '2']);
  });

  test('of two scrapes finishing out of order, the newer answer is the one kept', async () => {
    const cluster = new ClusterMetrics();
    const newer = await worker(1, 5, { ready: 1, memory: 1 });
    const older = await worker(1, 2, { ready: 1, memory: 1 });
    await cluster.render(7, new Map([[1, newer]]), []);
    await cluster.render(6, new Map([[1, older]]), []);
    expect(await committed(await cluster.render(8, new Map(), [1]))).toBe(5);
  });
});
