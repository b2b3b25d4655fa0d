import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createIntegrationMetrics } from '../src/k8s/metrics.js';
import { startNamespaceCache, type NamespaceCache } from '../src/k8s/namespace-cache.js';
import { createLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';

const log = createLogger('silent');
let api: FakeApiServer;
let cache: NamespaceCache | undefined;

beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());
afterEach(async () => {
  await cache?.stop();
  cache = undefined;
});

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('namespace cache (list + watch against the fake apiserver)', () => {
  it('syncs from a list, follows watch events, and keeps only labels', async () => {
    api.put('namespaces', { metadata: { name: 'team-a', labels: { 'podvisor.io/lxcfs': 'enabled' }, annotations: { big: 'x'.repeat(1000) } } });
    cache = startNamespaceCache(api.kubeConfig(), log, { backoffInitialMs: 20 });
    expect(await cache.waitForSync(5000)).toBe(true);
    expect(cache.labels('team-a')).toEqual({ 'podvisor.io/lxcfs': 'enabled' });
    expect(cache.labels('missing')).toBeUndefined();
    await until(() => api.openWatches('namespaces') === 1);
    const watch = api.requestsTo('GET', '/api/v1/namespaces').find((r) => r.query['watch'] === 'true');
    expect(watch?.query['allowWatchBookmarks']).toBe('true');
    expect(Number(watch?.query['resourceVersion'])).toBeGreaterThan(0);

    api.put('namespaces', { metadata: { name: 'team-b', labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } });
    api.put('namespaces', { metadata: { name: 'team-a', labels: {} } });
    await until(() => cache?.labels('team-b') !== undefined && Object.keys(cache.labels('team-a') ?? { x: 1 }).length === 0);
    api.remove('namespaces', '', 'team-b');
    await until(() => cache?.labels('team-b') === undefined);
  });

  it('re-lists on 410 Gone and picks up what changed while the watch was down', async () => {
    const metrics = createIntegrationMetrics(new Registry());
    cache = startNamespaceCache(api.kubeConfig(), log, { backoffInitialMs: 20, metrics });
    await cache.waitForSync(5000);
    await until(() => api.openWatches('namespaces') === 1);
    const listsBefore = api.requestsTo('GET', '/api/v1/namespaces').filter((r) => r.query['watch'] === undefined).length;
    // The watch ends with an ERROR 410 and the history is compacted, so only a new list can show team-c.
    api.expireWatches('namespaces');
    api.put('namespaces', { metadata: { name: 'team-c', labels: { 'podvisor.io/lxcfs': 'enabled' } } });
    await until(() => cache?.labels('team-c') !== undefined);
    const listsAfter = api.requestsTo('GET', '/api/v1/namespaces').filter((r) => r.query['watch'] === undefined).length;
    expect(listsAfter).toBe(listsBefore + 1);
    expect((await metrics.namespaceRelists.get()).values.find((v) => v.labels.reason === 'expired')?.value).toBe(1);
  });

  it('resumes from its resourceVersion after a clean server-side close, and backs off on errors', async () => {
    cache = startNamespaceCache(api.kubeConfig(), log, { backoffInitialMs: 20 });
    await cache.waitForSync(5000);
    await until(() => api.openWatches('namespaces') === 1);
    api.clearRequests();
    api.closeWatches('namespaces');
    await until(() => api.openWatches('namespaces') === 1);
    // Resumed with a resourceVersion, no new list.
    expect(api.requests.every((r) => r.query['watch'] === 'true' && r.query['resourceVersion'] !== undefined)).toBe(true);

    api.clearRequests();
    const remove = api.route('GET', '/api/v1/namespaces', (r) => (r.query['watch'] === 'true' ? { status: 500, body: api.status(500, 'InternalError', 'etcd down') } : undefined));
    api.closeWatches('namespaces');
    await until(() => api.requests.length >= 3);
    remove();
    api.put('namespaces', { metadata: { name: 'team-d' } });
    await until(() => cache?.labels('team-d') !== undefined);
  });

  it('reports unsynced until the API answers, then syncs (API down at start)', async () => {
    const remove = api.failNext('GET', '/api/v1/namespaces', 503, 3);
    cache = startNamespaceCache(api.kubeConfig(), log, { backoffInitialMs: 20 });
    expect(cache.synced()).toBe(false);
    expect(await cache.waitForSync(5000)).toBe(true);
    remove();
  });
});

describe('namespace cache bounds', () => {
  it('re-lists every resyncMs even with a healthy watch, and caps the number of namespaces kept', async () => {
    const metrics = createIntegrationMetrics(new Registry());
    const capped = startNamespaceCache(api.kubeConfig(), log, { backoffInitialMs: 20, resyncMs: 300, maxNamespaces: 2, metrics });
    try {
      await capped.waitForSync(5000);
      expect(capped.size()).toBe(2);
      await until(async () => ((await metrics.namespaceRelists.get()).values.find((v) => v.labels.reason === 'resync')?.value ?? 0) >= 1);
      expect(capped.size()).toBe(2);
    } finally {
      await capped.stop();
    }
  });
});
