import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Root, /dev/fuse and cgroups: `npm run test:host` (vitest.host.config.ts).
    exclude: ['test/host/**', '**/node_modules/**'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
