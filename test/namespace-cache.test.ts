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

// Syncing, following watch events, keeping only labels, resuming after the server ends a watch, the periodic re-list
// and the cap: against the real kube-apiserver in test/e2e/list-watch.test.ts. What stays here needs the model: a 410
// on the open watch, watch requests that fail with 500, an API server that is down at start.
describe('namespace cache (list + watch against the fake apiserver)', () => {
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

  it('backs off while watch requests fail (500), then watches again and follows changes', async () => {
    cache = startNamespaceCache(api.kubeConfig(), log, { backoffInitialMs: 20 });
    await cache.waitForSync(5000);
    await until(() => api.openWatches('namespaces') === 1);
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
