import { defineConfig } from 'vitest/config';

/** `npm run test:host`: the suites that drive the real kernel as root (test/host/), one file at a time. */
export default defineConfig({
  test: {
    include: ['test/host/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
