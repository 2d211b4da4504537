import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The bench smoke test loads both cores for seconds, which would skew the fault tests'
    // timings: it runs on its own afterwards (vitest.bench.config.ts, part of `npm test`).
    exclude: ['test/bench.test.ts', '**/node_modules/**'],
    // One real redis-server (AOF, temp dir, free port) for the run; files isolate by ledger name.
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
