import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startListWatch, type ListWatch, type ListWatchOptions, type RelistReason } from '../src/k8s/list-watch.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';

let api: FakeApiServer;
let watch: ListWatch<string> | undefined;
const PATH = '/api/v1/namespaces/team-a/configmaps';

beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());
afterEach(async () => {
  await watch?.stop();
  watch = undefined;
  for (const cm of api.list('configmaps')) api.remove('configmaps', 'team-a', cm.metadata?.['name'] as string);
  api.clearRequests();
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const configMap = (name: string, color: string): { metadata: { name: string; namespace: string }; data: Record<string, string> } => ({
  metadata: { name, namespace: 'team-a' },
  data: { color, padding: 'x'.repeat(500) },
});
const watchRequests = (): { query: Record<string, string> }[] => api.requestsTo('GET', PATH).filter((r) => r.query['watch'] === 'true');
/** Watch requests since this test's first list (a watch already under way when the last test stopped may land late). */
const watchesSinceList = (): { query: Record<string, string> }[] => {
  const all = api.requestsTo('GET', PATH);
  return all.slice(all.findIndex((r) => r.query['watch'] === undefined) + 1).filter((r) => r.query['watch'] === 'true');
};
/** Synced, and this test's first watch is open. */
async function watching(): Promise<void> {
  expect(await watch!.waitForSync(5000)).toBe(true);
  await until(() => watchesSinceList().length === 1 && api.openWatches('configmaps') === 1);
}
const listRequests = (): number => api.requestsTo('GET', PATH).filter((r) => r.query['watch'] === undefined).length;

/** ConfigMaps in team-a, keeping only data.color; every callback recorded. */
function start(overrides: Partial<ListWatchOptions<V1ConfigMap, string>> = {}): { upserts: string[]; deletes: string[]; relists: RelistReason[]; errors: string[] } {
  const core = api.kubeConfig().makeApiClient(CoreV1Api);
  const seen = { upserts: [] as string[], deletes: [] as string[], relists: [] as RelistReason[], errors: [] as string[] };
  watch = startListWatch<V1ConfigMap, string>(api.kubeConfig(), {
    path: PATH,
    list: () => core.listNamespacedConfigMap({ namespace: 'team-a' }),
    keep: (cm) => cm.data?.['color'] ?? '',
    onUpsert: (value, key) => seen.upserts.push(`${key}=${value}`),
    onDelete: (key) => seen.deletes.push(key),
    onRelist: (reason) => seen.relists.push(reason),
    onError: (err, during) => seen.errors.push(`${during}: ${(err as Error).message}`),
    backoffInitialMs: 20,
    ...overrides,
  });
  return seen;
}

// Storing what keep returns, upserts and deletes from the list and the watch, and maxObjects: against the real
// kube-apiserver in test/e2e/list-watch.test.ts. Each test here needs the model, for the reason given above it.
describe('list+watch (against the fake apiserver)', () => {
  // A 410 on the open watch at a chosen moment: the real apiserver cannot be made to send one.
  it('re-lists on 410 Gone and reports what vanished while the watch was down as deleted', async () => {
    api.put('configmaps', configMap('one', 'red'));
    api.put('configmaps', configMap('two', 'blue'));
    const seen = start();
    await watching();
    api.expireWatches('configmaps');
    api.remove('configmaps', 'team-a', 'two');
    await until(() => seen.relists.length === 2);
    await until(() => watch!.get('team-a/two') === undefined);
    expect(seen.relists).toEqual(['initial', 'expired']);
    expect(seen.deletes).toEqual(['team-a/two']);
  });

  // A bookmark at a chosen moment, then the end of the watch: the real apiserver sends bookmarks on its own schedule.
  it('asks for bookmarks and resumes from a bookmark resourceVersion after a clean end', async () => {
    const seen = start();
    await watching();
    expect(watchRequests().at(-1)?.query).toMatchObject({ allowWatchBookmarks: 'true', timeoutSeconds: '300' });
    // Another resource moves the global revision: only a bookmark tells this watch about it.
    const moved = api.put('secrets', { metadata: { name: 's', namespace: 'team-a' } }).metadata?.['resourceVersion'];
    api.sendBookmark('configmaps');
    await new Promise((r) => setTimeout(r, 100));
    api.closeWatches('configmaps');
    // The next watch starts from the bookmark's resourceVersion, without a list.
    await until(() => watchRequests().at(-1)?.query['resourceVersion'] === moved && api.openWatches('configmaps') === 1);
    expect(seen.relists).toEqual(['initial']);
    api.remove('secrets', 'team-a', 's');
  });

  // An ERROR event (500) on a watch: not something the real apiserver can be made to send.
  it('a watch ERROR event that is not 410 counts as a failure: backoff, then a watch from the same resourceVersion', async () => {
    const seen = start();
    await watching();
    const from = watchesSinceList()[0]?.query['resourceVersion'];
    const remove = api.route('GET', PATH, (r) => (r.query['watch'] === 'true' ? { status: 200, body: { type: 'ERROR', object: api.status(500, 'InternalError', 'etcd leader changed') } } : undefined));
    api.closeWatches('configmaps');
    await until(() => seen.errors.length >= 2);
    remove();
    await until(() => api.openWatches('configmaps') === 1);
    expect(seen.errors[0]).toBe('watch: watch error event: 500 etcd leader changed');
    expect(new Set(watchesSinceList().map((r) => r.query['resourceVersion']))).toEqual(new Set([from]));
    expect(listRequests()).toBe(1);
  });

  // An HTTP 410 answer to the watch request itself, on demand.
  it('an HTTP 410 answer to the watch request re-lists', async () => {
    const seen = start();
    await watching();
    const remove = api.failNext('GET', PATH, 410, 1);
    api.closeWatches('configmaps');
    await until(() => seen.relists.length === 2 && api.openWatches('configmaps') === 1);
    remove();
    expect(seen.relists).toEqual(['initial', 'expired']);
    expect(seen.errors).toEqual([]);
  });

  // A list held in flight until the test lets it go.
  it('stop() while the first list is in flight: no watch is opened afterwards', async () => {
    let answer: () => void = () => {};
    const held = new Promise<void>((resolve) => (answer = resolve));
    const remove = api.route('GET', PATH, async (r) => {
      if (r.query['watch'] !== undefined) return undefined;
      await held;
      return { status: 200, body: { kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [] } };
    });
    start();
    await until(() => listRequests() === 1);
    const stopped = watch!.stop();
    answer();
    await stopped;
    await new Promise((r) => setTimeout(r, 300));
    remove();
    expect(watchRequests()).toEqual([]);
    expect(watch!.synced()).toBe(false);
  });
});
