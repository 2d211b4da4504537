import { defineConfig } from 'vitest/config';

/** The bench smoke test alone (see vitest.config.ts): it starts its own Redis and servers. */
export default defineConfig({
  test: {
    include: ['test/bench.test.ts'],
    pool: 'forks',
    // The quick run took 4-5 min on this 2-core machine while other tests ran, since the
    // archive section (a PostgreSQL of its own, 20,000 transfers archived and checked:
    // bench/lib/archive.ts); half as much again for a busier minute.
    testTimeout: 480_000,
    hookTimeout: 60_000,
  },
});
