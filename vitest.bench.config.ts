import { defineConfig } from 'vitest/config';

/** The bench smoke test alone (see vitest.config.ts): it starts its own Redis and servers. */
export default defineConfig({
  test: {
    include: ['test/bench.test.ts'],
    pool: 'forks',
    testTimeout: 240_000,
    hookTimeout: 60_000,
  },
});
