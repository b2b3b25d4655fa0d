import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findKubeConfig } from '../src/k8s/kubeconfig.js';
import { configSetsKubernetesVersion, parseServerVersion, watchServerVersion, withDetectedVersion } from '../src/k8s/server-version.js';
import { createLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';
import { config } from './support/harness.js';

const log = createLogger('silent');
let api: FakeApiServer;
beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());

describe('server version', () => {
  it('parses /version answers, including managed clusters\' "32+" minors', () => {
    expect(parseServerVersion({ major: '1', minor: '32' })).toBe('1.32');
    expect(parseServerVersion({ major: '1', minor: '29+', gitVersion: 'v1.29.8-eks-a737599' })).toBe('1.29');
    expect(parseServerVersion({ major: '', minor: '', gitVersion: 'v1.31.2-gke.1' })).toBe('1.31');
    expect(parseServerVersion({})).toBeUndefined();
  });

  // Reading the real kube-apiserver's /version: test/e2e/server-version.test.ts. A /version of another minor, and one
  // that fails, are what the model answers on demand.
  it('reads /version again when refreshed; a failure keeps the last value', async () => {
    const watcher = watchServerVersion(api.kubeConfig(), log, { intervalMs: 60_000 });
    expect(watcher.current()).toBeUndefined();
    expect(await watcher.refresh()).toBe('1.32');
    api.version = { ...api.version, minor: '33', gitVersion: 'v1.33.1' };
    expect(await watcher.refresh()).toBe('1.33');
    const remove = api.failNext('GET', '/version', 503);
    expect(await watcher.refresh()).toBe('1.33');
    remove();
    watcher.stop();
    api.version = { ...api.version, minor: '32', gitVersion: 'v1.32.5' };
  });

  it('the config wins only when the file sets kubernetesVersion itself', () => {
    const c = config();
    expect(configSetsKubernetesVersion('kubernetesVersion: "1.29"\n')).toBe(true);
    expect(configSetsKubernetesVersion('logLevel: info\n')).toBe(false);
    expect(configSetsKubernetesVersion(undefined)).toBe(false);
    expect(withDetectedVersion(c, false, '1.29').kubernetesVersion).toBe('1.29');
    expect(withDetectedVersion(c, true, '1.29').kubernetesVersion).toBe(c.kubernetesVersion);
    expect(withDetectedVersion(c, false, undefined)).toBe(c);
  });
});

describe('finding the cluster', () => {
  it('is offline without --kubeconfig, KUBECONFIG or a service account token; never falls back to ~/.kube/config', () => {
    expect(findKubeConfig(undefined, {}, '/nonexistent/token')).toBeUndefined();
    expect(findKubeConfig(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, '/nonexistent/token')).toBeUndefined();
  });

  it('loads --kubeconfig (read only: no API server is contacted)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'podvisor-kc-')), 'config');
    writeFileSync(
      file,
      ['apiVersion: v1', 'kind: Config', 'clusters:', '- name: c', '  cluster: {server: "https://192.0.2.10:6443"}', 'users:', '- name: u', '  user: {token: "t"}', 'contexts:', '- name: x', '  context: {cluster: c, user: u}', 'current-context: x', ''].join('\n'),
    );
    const found = findKubeConfig(file, {});
    expect(found?.origin).toBe('flag');
    expect(found?.kubeConfig.getCurrentCluster()?.server).toBe('https://192.0.2.10:6443');
  });
});
