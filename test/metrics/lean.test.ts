/**
 * The lean histogram and counter render exactly what prom-client's own would for the same
 * observations (bucket bounds inclusive, cumulative buckets, sum, count), through one registry.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { LeanCounter, LeanHistogram } from '../../src/metrics/lean.js';
import { parseExposition } from './exposition.js';

const BUCKETS = [0.001, 0.01, 0.1];

/** Samples of one metric family with the family name taken out, for comparison. */
function family(text: string, name: string) {
  return parseExposition(text).filter((s) => s.name.startsWith(name))
    .map((s) => ({ ...s, name: s.name.slice(name.length) }));
}

describe('lean metrics', () => {
  test('a histogram renders as prom-client renders it, bounds inclusive', async () => {
    const registry = new Registry();
    const names = ['a', 'b'] as const;
    const lean = new LeanHistogram('lean_seconds', 'lean', names, BUCKETS, registry);
    const real = new Histogram({ name: 'real_seconds', help: 'real', labelNames: names,
      buckets: BUCKETS, registers: [registry] });
    const values = [0, 0.0005, 0.001, 0.0011, 0.01, 0.05, 0.1, 0.2, 7];
    for (const [i, v] of values.entries()) {
      const labels = { a: i % 2 === 0 ? 'x' : 'y', b: 'z' };
      lean.child(labels).observe(v);
      real.labels(labels).observe(v);
    }
    const text = await registry.metrics();
    expect(family(text, 'lean_seconds')).toEqual(family(text, 'real_seconds'));
    expect(family(text, 'lean_seconds')).toHaveLength(2 * (BUCKETS.length + 1 + 2));
    expect(text).toContain('# TYPE lean_seconds histogram');
    // x got 0, 0.001, 0.01, 0.1 and 7: 0.001 falls in its own bucket (le is inclusive).
    expect(text).toContain('lean_seconds_bucket{a="x",b="z",le="0.001"} 2');
  });

  test('a counter: a series exists at 0 from its first lookup; a label may be absent', async () => {
    const registry = new Registry();
    const names = ['outcome', 'reason'] as const;
    const lean = new LeanCounter('lean_total', 'lean', names, registry);
    const real = new Counter({ name: 'real_total', help: 'real', labelNames: names,
      registers: [registry] });
    const ok = lean.child({ outcome: 'ok' });
    lean.child({ outcome: 'no', reason: 'R' });
    ok.inc();
    ok.inc(2);
    real.labels({ outcome: 'ok' }).inc(3);
    real.labels({ outcome: 'no', reason: 'R' }).inc(0);
    const text = await registry.metrics();
    expect(family(text, 'lean_total')).toEqual(family(text, 'real_total'));
    expect(text).toContain('# TYPE lean_total counter');
    expect(lean.child({ outcome: 'ok' })).toBe(ok);
  });

  test('label names are checked when a series is made, never per call', () => {
    const lean = new LeanCounter('x_total', 'x', ['outcome'] as const, new Registry());
    expect(() => lean.child({ outcome: 'ok', other: 'no' } as never)).toThrow(/other/);
  });
});
