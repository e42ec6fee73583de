import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Temporal servers and workers take seconds to start; real-server tests set their own timeouts.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Two cores: e2e files each start real servers, so keep parallelism modest.
    maxWorkers: 2,
  },
});
