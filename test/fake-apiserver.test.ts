// The model's own features, the ones the kube-apiserver cannot be made to show on demand and that the unit tests still
// using the model rely on: a BOOKMARK, a 410 ERROR to a watch from a compacted resourceVersion or on an open watch, a
// clean end of open watches, injected failures. Everything the model answers like the apiserver (Status bodies,
// lists, watch events, conflicts, Leases, /version) is compared with the real one in test/e2e/fake-apiserver.test.ts.
import { CoreV1Api, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';

let api: FakeApiServer;
beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());

interface WatchEvent {
  readonly type: string;
  readonly object: { code?: number; metadata?: { name?: string; resourceVersion?: string } };
}

/** Watches `path` until `until` holds or the stream ends; resolves with the events seen. */
function watchUntil(path: string, query: Record<string, string>, until: (events: WatchEvent[]) => boolean): Promise<{ events: WatchEvent[]; ended: boolean }> {
  const events: WatchEvent[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`watch timed out: ${JSON.stringify(events)}`)), 5000);
    let controller: AbortController | undefined;
    void new Watch(api.kubeConfig())
      .watch(
        path,
        query,
        (type, object) => {
          events.push({ type, object });
          if (until(events)) {
            clearTimeout(timer);
            controller?.abort();
            resolve({ events, ended: false });
          }
        },
        () => {
          clearTimeout(timer);
          resolve({ events, ended: true });
        },
      )
      .then((c) => (controller = c));
  });
}

describe('the fake apiserver, on demand', () => {
  it('sends a BOOKMARK with the current resourceVersion to a watch that asked for bookmarks', async () => {
    const rv = (await api.kubeConfig().makeApiClient(CoreV1Api).listNamespace()).metadata?.resourceVersion ?? '';
    const pending = watchUntil('/api/v1/namespaces', { resourceVersion: rv, allowWatchBookmarks: 'true' }, (e) => e.length >= 2);
    await new Promise((r) => setTimeout(r, 100));
    const moved = api.put('secrets', { metadata: { name: 's', namespace: 'x' } }).metadata?.['resourceVersion'];
    api.sendBookmark('namespaces');
    api.put('namespaces', { metadata: { name: 'b' } });
    const { events } = await pending;
    expect(events.map((e) => e.type)).toEqual(['BOOKMARK', 'ADDED']);
    expect(events[0]?.object.metadata?.resourceVersion).toBe(moved);
  });

  it('answers a watch from a compacted resourceVersion with one ERROR 410 and ends it; expires and ends open watches', async () => {
    const rv = (await api.kubeConfig().makeApiClient(CoreV1Api).listNamespace()).metadata?.resourceVersion ?? '';
    api.put('namespaces', { metadata: { name: 'c' } });
    api.compact();
    const expired = await watchUntil('/api/v1/namespaces', { resourceVersion: rv }, () => false);
    expect(expired.ended).toBe(true);
    expect(expired.events.map((e) => [e.type, e.object.code])).toEqual([['ERROR', 410]]);

    const open = watchUntil('/api/v1/namespaces', { resourceVersion: '0' }, () => false);
    await waitFor(() => api.openWatches('namespaces') === 1);
    api.expireWatches('namespaces');
    const ended = await open;
    expect(ended.events.at(-1)).toMatchObject({ type: 'ERROR', object: { code: 410 } });
    expect(api.openWatches('namespaces')).toBe(0);
  });

  it('ends open watches cleanly, and answers injected failures before the store', async () => {
    const open = watchUntil('/api/v1/namespaces', { resourceVersion: '0' }, () => false);
    await waitFor(() => api.openWatches('namespaces') === 1);
    api.closeWatches('namespaces');
    const { events, ended } = await open;
    expect(ended).toBe(true);
    expect(events.every((e) => e.type === 'ADDED')).toBe(true);

    api.failNext('GET', '/api/v1/namespaces', 503);
    const failed = await api.kubeConfig().makeApiClient(CoreV1Api).listNamespace().catch((err: { code?: number }) => err.code);
    expect(failed).toBe(503);
    expect((await api.kubeConfig().makeApiClient(CoreV1Api).listNamespace()).items.length).toBeGreaterThan(0);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
