// The version podvisor reads from the real kube-apiserver's /version (with its own ServiceAccount token): the
// minor it selects version-dependent fields by (src/k8s/server-version.ts). A /version of another minor, or one that
// fails, is what a model can answer on demand: test/server-version.test.ts.
import { describe, expect, inject, it } from 'vitest';
import { parseServerVersion, watchServerVersion } from '../../src/k8s/server-version.js';
import { createLogger } from '../../src/observability/logger.js';
import { apiGet, loadKubeConfig, serviceAccountKubeconfig } from '../support/control-plane.js';

const info = inject('controlPlane');

describe('server version from the kube-apiserver', () => {
  it('reads /version with podvisor\'s token: the control plane\'s release (1.37)', async () => {
    const answer = await apiGet(loadKubeConfig(info.adminKubeconfig), '/version');
    expect(answer.status).toBe(200);
    const body = answer.body as { major: string; minor: string; gitVersion: string };
    expect(body.gitVersion).toMatch(/^v1\.37\.\d+/);
    const watcher = watchServerVersion(loadKubeConfig(await serviceAccountKubeconfig(info, 'podvisor-system', 'podvisor')), createLogger('silent'), { intervalMs: 60_000 });
    try {
      expect(watcher.current()).toBeUndefined();
      expect(await watcher.refresh()).toBe('1.37');
      expect(parseServerVersion(body)).toBe('1.37');
      expect(watcher.current()).toBe('1.37');
    } finally {
      watcher.stop();
    }
  });
});
