import { defineConfig } from 'vitest/config';

// `npm run test:e2e`: podvisor against a real kube-apiserver and kube-controller-manager (test/support/control-plane.ts),
// started once for the run. Files run one after another: they share the cluster and its webhook configurations.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    globalSetup: ['test/e2e/global-setup.ts'],
    fileParallelism: false,
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
