// podvisor's list+watch (src/k8s/list-watch.ts) and the namespace cache built on it (src/k8s/namespace-cache.ts),
// run in this process against the real kube-apiserver. The namespace cache uses podvisor's own ServiceAccount token,
// so the audit log shows each of its list and watch requests with their query; the generic list+watch follows
// ConfigMaps with the admin's credentials. What only a model can do on demand (a 410 or an ERROR event on an open
// watch, a held or failing request, a bookmark at a chosen moment) stays in test/list-watch.test.ts and
// test/namespace-cache.test.ts.
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startListWatch, type ListWatch, type ListWatchOptions } from '../../src/k8s/list-watch.js';
import { createIntegrationMetrics } from '../../src/k8s/metrics.js';
import { startNamespaceCache, type NamespaceCache } from '../../src/k8s/namespace-cache.js';
import { createLogger } from '../../src/observability/logger.js';
import { auditedCalls, queryOf } from '../support/audit-log.js';
import { createNamespace, deleteNamespace, eventually } from '../support/cluster-objects.js';
import { apiRequest, loadKubeConfig, serviceAccountKubeconfig } from '../support/control-plane.js';

const info = inject('controlPlane');
const log = createLogger('silent');
const CONFIGMAPS = 'e2e-list-watch';
const A = 'e2e-nscache-a';
const B = 'e2e-nscache-b';
const C = 'e2e-nscache-c';
let admin: KubeConfig;
let podvisorToken: KubeConfig;
let cache: NamespaceCache | undefined;
let watch: ListWatch<string> | undefined;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  podvisorToken = loadKubeConfig(await serviceAccountKubeconfig(info, 'podvisor-system', 'podvisor'));
  await createNamespace(admin, CONFIGMAPS);
});
afterEach(async () => {
  await cache?.stop();
  await watch?.stop();
  cache = undefined;
  watch = undefined;
});
afterAll(async () => {
  for (const ns of [CONFIGMAPS, A, B, C]) await deleteNamespace(admin, ns);
});

/** The namespace cache's list and watch requests since `since` (audit log: a watch once it started, a list once answered). */
async function namespaceRequests(since: string): Promise<{ verb: string; query: Record<string, string> }[]> {
  return (await auditedCalls(info, since))
    .filter((c) => c.objectRef?.resource === 'namespaces' && c.stage === (c.verb === 'watch' ? 'ResponseStarted' : 'ResponseComplete'))
    .map((c) => ({ verb: c.verb, query: queryOf(c) }));
}

async function relists(metrics: ReturnType<typeof createIntegrationMetrics>, reason: string): Promise<number> {
  return (await metrics.namespaceRelists.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('namespace cache against the kube-apiserver (podvisor\'s token)', () => {
  it('syncs from a list, follows watch events, and keeps only the labels', async () => {
    const since = new Date().toISOString();
    await createNamespace(admin, A, { 'podvisor.io/lxcfs': 'enabled' });
    expect((await apiRequest(admin, 'PATCH', `/api/v1/namespaces/${A}`, { metadata: { annotations: { big: 'x'.repeat(1000) } } }, 'application/merge-patch+json')).status).toBe(200);
    cache = startNamespaceCache(podvisorToken, log, { backoffInitialMs: 20 });
    expect(await cache.waitForSync(10_000)).toBe(true);
    // The apiserver labels every namespace with its own name.
    expect(cache.labels(A)).toEqual({ 'podvisor.io/lxcfs': 'enabled', 'kubernetes.io/metadata.name': A });
    expect(cache.labels('no-such-namespace')).toBeUndefined();

    await createNamespace(admin, B, { 'pod-security.kubernetes.io/enforce': 'baseline' });
    expect((await apiRequest(admin, 'PATCH', `/api/v1/namespaces/${A}`, { metadata: { labels: { 'podvisor.io/lxcfs': null } } }, 'application/merge-patch+json')).status).toBe(200);
    await eventually('the watch brings B and the label removal', async () => (cache?.labels(B)?.['pod-security.kubernetes.io/enforce'] === 'baseline' && cache.labels(A)?.['podvisor.io/lxcfs'] === undefined ? true : undefined), 10_000, 50);
    expect(cache.labels(A)).toEqual({ 'kubernetes.io/metadata.name': A });
    // A deleted namespace leaves once the namespace controller has emptied it and the object is gone.
    await deleteNamespace(admin, B);
    await eventually('B leaves the cache', async () => (cache?.labels(B) === undefined ? true : undefined), 30_000, 100);

    const requests = await namespaceRequests(since);
    const list = requests.find((r) => r.verb === 'list');
    const watchRequest = requests.find((r) => r.verb === 'watch');
    expect(list?.query['watch']).toBeUndefined();
    expect(watchRequest?.query).toMatchObject({ watch: 'true', allowWatchBookmarks: 'true', timeoutSeconds: '300' });
    expect(Number(watchRequest?.query['resourceVersion'])).toBeGreaterThan(0);
  });

  it('when the apiserver ends the watch (timeoutSeconds), it watches again from its resourceVersion without a list', async () => {
    const since = new Date().toISOString();
    cache = startNamespaceCache(podvisorToken, log, { backoffInitialMs: 20, watchTimeoutSeconds: 1 });
    expect(await cache.waitForSync(10_000)).toBe(true);
    // Each watch ends cleanly after 1 s: a third watch means the server ended two.
    await eventually('two watches ended by the server', async () => ((await namespaceRequests(since)).filter((r) => r.verb === 'watch').length >= 3 ? true : undefined), 20_000, 200);
    await createNamespace(admin, C, { 'podvisor.io/fuse': 'enabled' });
    await eventually('C through a resumed watch', async () => (cache?.labels(C)?.['podvisor.io/fuse'] === 'enabled' ? true : undefined), 10_000, 50);
    const requests = await namespaceRequests(since);
    expect(requests.filter((r) => r.verb === 'list')).toHaveLength(1);
    for (const r of requests.filter((q) => q.verb === 'watch')) {
      expect(r.query['timeoutSeconds']).toBe('1');
      expect(Number(r.query['resourceVersion'])).toBeGreaterThan(0);
    }
  });

  it('re-lists every resyncMs even with a healthy watch, and caps the number of namespaces kept', async () => {
    const metrics = createIntegrationMetrics(new Registry());
    cache = startNamespaceCache(podvisorToken, log, { backoffInitialMs: 20, resyncMs: 300, maxNamespaces: 2, metrics });
    expect(await cache.waitForSync(10_000)).toBe(true);
    // The cluster has more than two namespaces (default, kube-system, kube-public, podvisor-system, ...).
    expect(cache.size()).toBe(2);
    await eventually('a resync', async () => ((await relists(metrics, 'resync')) >= 1 ? true : undefined), 10_000, 50);
    expect(cache.size()).toBe(2);
  });
});

describe('list+watch of ConfigMaps against the kube-apiserver', () => {
  const configMap = (name: string, color: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { color, padding: 'x'.repeat(500) } });
  const path = `/api/v1/namespaces/${CONFIGMAPS}/configmaps`;
  const put = async (name: string, color: string): Promise<void> => {
    const exists = (await apiRequest(admin, 'GET', `${path}/${name}`)).status === 200;
    const answer = exists ? await apiRequest(admin, 'PUT', `${path}/${name}`, configMap(name, color)) : await apiRequest(admin, 'POST', path, configMap(name, color));
    expect(answer.status, JSON.stringify(answer.body)).toBe(exists ? 200 : 201);
  };
  const remove = async (name: string): Promise<void> => {
    expect((await apiRequest(admin, 'DELETE', `${path}/${name}`)).status).toBe(200);
  };
  afterEach(async () => {
    const list = (await apiRequest(admin, 'GET', path)).body as { items: { metadata: { name: string } }[] };
    for (const cm of list.items) await remove(cm.metadata.name);
  });

  /** ConfigMaps in CONFIGMAPS, keeping only data.color; every callback recorded. */
  function start(overrides: Partial<ListWatchOptions<V1ConfigMap, string>> = {}): { upserts: string[]; deletes: string[] } {
    const core = admin.makeApiClient(CoreV1Api);
    const seen = { upserts: [] as string[], deletes: [] as string[] };
    watch = startListWatch<V1ConfigMap, string>(admin, {
      path,
      list: () => core.listNamespacedConfigMap({ namespace: CONFIGMAPS }),
      keep: (cm) => cm.data?.['color'] ?? '',
      onUpsert: (value, key) => seen.upserts.push(`${key}=${value}`),
      onDelete: (key) => seen.deletes.push(key),
      backoffInitialMs: 20,
      ...overrides,
    });
    return seen;
  }

  it('stores what keep returns under namespace/name and reports upserts and deletes, from the list and the watch', async () => {
    await put('one', 'red');
    const seen = start();
    expect(await watch!.waitForSync(10_000)).toBe(true);
    expect(watch!.get(`${CONFIGMAPS}/one`)).toBe('red');
    // Written after the list: the watch (from the list's resourceVersion) brings each change, whenever it opens.
    await put('two', 'blue');
    await put('one', 'green');
    await remove('two');
    await eventually('the delete', async () => (seen.deletes.length === 1 ? true : undefined), 10_000, 50);
    expect(seen.upserts).toEqual([`${CONFIGMAPS}/one=red`, `${CONFIGMAPS}/two=blue`, `${CONFIGMAPS}/one=green`]);
    expect(seen.deletes).toEqual([`${CONFIGMAPS}/two`]);
    expect(watch!.get(`${CONFIGMAPS}/one`)).toBe('green');
    expect(watch!.size()).toBe(1);
  });

  it('keeps at most maxObjects and reports once when full', async () => {
    for (const name of ['a', 'b', 'c']) await put(name, name);
    const full: number[] = [];
    start({ maxObjects: 2, onFull: (max) => full.push(max) });
    expect(await watch!.waitForSync(10_000)).toBe(true);
    await put('d', 'd');
    await put('a', 'A');
    await eventually('the update of a', async () => (watch!.get(`${CONFIGMAPS}/a`) === 'A' ? true : undefined), 10_000, 50);
    expect(watch!.size()).toBe(2);
    expect(watch!.get(`${CONFIGMAPS}/d`)).toBeUndefined();
    expect(full).toEqual([2]);
  });
});
