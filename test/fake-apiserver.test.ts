import { AdmissionregistrationV1Api, ApiException, CoreV1Api, VersionApi, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';

let api: FakeApiServer;
beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());

function watchOnce(path: string, query: Record<string, string>, until: (events: { type: string; object: any }[]) => boolean) {
  const events: { type: string; object: any }[] = [];
  return new Promise<{ type: string; object: any }[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`watch timed out: ${JSON.stringify(events)}`)), 5000);
    let controller: AbortController | undefined;
    void new Watch(api.kubeConfig())
      .watch(path, query, (type, object) => {
        events.push({ type, object });
        if (until(events)) {
          clearTimeout(timer);
          controller?.abort();
          resolve(events);
        }
      }, (err) => {
        clearTimeout(timer);
        resolve(events);
        void err;
      })
      .then((c) => (controller = c));
  });
}

describe('fake apiserver with the real client-node', () => {
  it('answers /version', async () => {
    const info = await api.kubeConfig().makeApiClient(VersionApi).getCode();
    expect(info.minor).toBe('32');
    expect(api.requests.at(-1)?.authorization).toBe('Bearer fake-token');
  });

  it('lists namespaces with a resourceVersion and streams watch events, bookmarks and a 410', async () => {
    api.put('namespaces', { metadata: { name: 'a', labels: { x: '1' } } });
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    const list = await core.listNamespace();
    expect(list.items.map((n) => n.metadata?.name)).toContain('a');
    const rv = list.metadata?.resourceVersion ?? '';
    expect(Number(rv)).toBeGreaterThan(0);
    const pending = watchOnce('/api/v1/namespaces', { resourceVersion: rv, allowWatchBookmarks: 'true' }, (e) => e.length >= 3);
    await new Promise((r) => setTimeout(r, 100));
    api.put('namespaces', { metadata: { name: 'b' } });
    api.sendBookmark('namespaces');
    api.remove('namespaces', '', 'b');
    const events = await pending;
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'BOOKMARK', 'DELETED']);
    api.compact();
    const expired = await watchOnce('/api/v1/namespaces', { resourceVersion: rv }, (e) => e.length >= 1);
    expect(expired[0]?.type).toBe('ERROR');
    expect(expired[0]?.object.code).toBe(410);
  });

  it('creates, conflicts on a stale resourceVersion, and reports AlreadyExists', async () => {
    const adm = api.kubeConfig().makeApiClient(AdmissionregistrationV1Api);
    const created = await adm.createMutatingWebhookConfiguration({ body: { metadata: { name: 'x' }, webhooks: [] } });
    const stale = created.metadata?.resourceVersion;
    await adm.replaceMutatingWebhookConfiguration({ name: 'x', body: { metadata: { name: 'x', resourceVersion: stale }, webhooks: [] } });
    const conflict = await adm.replaceMutatingWebhookConfiguration({ name: 'x', body: { metadata: { name: 'x', resourceVersion: stale }, webhooks: [] } }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ApiException);
    expect((conflict as ApiException<string>).code).toBe(409);
    expect(JSON.parse((conflict as ApiException<string>).body).reason).toBe('Conflict');
    const exists = await adm.createMutatingWebhookConfiguration({ body: { metadata: { name: 'x' } } }).catch((e: unknown) => e);
    expect((exists as ApiException<string>).code).toBe(409);
    expect(JSON.parse((exists as ApiException<string>).body).reason).toBe('AlreadyExists');
    const missing = await adm.readValidatingWebhookConfiguration({ name: 'nope' }).catch((e: unknown) => e);
    expect((missing as ApiException<string>).code).toBe(404);
    const patched = await adm.patchMutatingWebhookConfiguration({ name: 'x', body: [{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }] });
    expect(patched.metadata?.labels).toEqual({ a: 'b' });
  });
});

describe('fake apiserver: leases (for the recovery controller) and namespaced objects', () => {
  it('creates and replaces a coordination.k8s.io/v1 Lease, with 409 on a stale resourceVersion', async () => {
    const { CoordinationV1Api } = await import('@kubernetes/client-node');
    const leases = api.kubeConfig().makeApiClient(CoordinationV1Api);
    const created = await leases.createNamespacedLease({ namespace: 'podvisor-system', body: { metadata: { name: 'podvisor-recovery' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: new Date() } } });
    expect(created.spec?.holderIdentity).toBe('a');
    expect(Number.isNaN(Date.parse(String(created.spec?.renewTime)))).toBe(false);
    const read = await leases.readNamespacedLease({ name: 'podvisor-recovery', namespace: 'podvisor-system' });
    await leases.replaceNamespacedLease({ name: 'podvisor-recovery', namespace: 'podvisor-system', body: { ...read, spec: { ...read.spec, holderIdentity: 'b' } } });
    const stale = await leases.replaceNamespacedLease({ name: 'podvisor-recovery', namespace: 'podvisor-system', body: { ...read, spec: { ...read.spec, holderIdentity: 'c' } } }).catch((e: unknown) => e);
    expect((stale as ApiException<string>).code).toBe(409);
    expect(api.get('leases', 'podvisor-system', 'podvisor-recovery', 'coordination.k8s.io/v1')?.['spec'].holderIdentity).toBe('b');
  });
});
