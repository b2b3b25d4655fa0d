// Opt-in through the real kube-apiserver: the CEL matchConditions keep un-annotated objects away from podvisor, a
// namespace label opts a namespace in (namespaceSelector entry + podvisor's namespace cache), a label flip is
// followed within seconds through the cache's watch, and the exclude label keeps objects and namespaces out.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { createNamespace, deleteNamespace, eventually } from '../support/cluster-objects.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const PLAIN = 'e2e-optin-plain';
const LABELLED = 'e2e-optin-labelled';
const EXCLUDED = 'e2e-optin-excluded';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, PLAIN);
  await createNamespace(admin, LABELLED, { 'podvisor.io/lxcfs': 'enabled' });
  await createNamespace(admin, EXCLUDED, { 'podvisor.io/exclude': 'true' });
  podvisor = await startPodvisorOnCluster(info, { keepReviews: true });
});
afterAll(async () => {
  await podvisor?.stop();
  for (const ns of [PLAIN, LABELLED, EXCLUDED]) await deleteNamespace(admin, ns);
});

let counter = 0;
/** Creates a Pod (for real, not a dry run) and returns it as stored, plus whether podvisor was called for it. */
async function createPod(namespace: string, options: { annotations?: Record<string, string>; labels?: Record<string, string> } = {}): Promise<{ injected: boolean; reviewed: boolean }> {
  const name = `pod-${++counter}`;
  const answer = await apiRequest(admin, 'POST', `/api/v1/namespaces/${namespace}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations: options.annotations ?? {}, labels: options.labels ?? {} },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  const stored = answer.body as { metadata: { annotations?: Record<string, string> } };
  const injected = stored.metadata.annotations?.['podvisor.io/status'] !== undefined;
  // podvisor's log line travels through a pipe and may arrive just after the apiserver's answer.
  const reviewed = await podvisor.process.waitForLog((l) => l.msg === 'review' && l['namespace'] === namespace && l['name'] === name, injected ? 3_000 : 500).then(
    () => true,
    () => false,
  );
  return { injected, reviewed };
}

async function labelNamespace(name: string, value: string | null): Promise<void> {
  const answer = await apiRequest(admin, 'PATCH', `/api/v1/namespaces/${name}`, { metadata: { labels: { 'podvisor.io/lxcfs': value } } }, 'application/merge-patch+json');
  expect(answer.status).toBe(200);
}

describe('opt-in through the kube-apiserver', () => {
  it('an object without a podvisor.io annotation is never sent (matchConditions), one with it is injected', async () => {
    expect(await createPod(PLAIN)).toEqual({ injected: false, reviewed: false });
    expect(await createPod(PLAIN, { annotations: { 'podvisor.io/lxcfs': 'true' } })).toEqual({ injected: true, reviewed: true });
  });

  it('a namespace labelled podvisor.io/lxcfs=enabled opts its Pods in without annotations', async () => {
    expect((await createPod(LABELLED)).injected).toBe(true);
    // The owner's explicit opt-out wins over the namespace default.
    expect((await createPod(LABELLED, { annotations: { 'podvisor.io/lxcfs': 'false' } })).injected).toBe(false);
  });

  it('a label flip is followed within seconds (namespace cache watch), both ways', async () => {
    await labelNamespace(LABELLED, 'disabled');
    let started = Date.now();
    // The key stays, so the apiserver still sends the Pod; podvisor's cache must have the new value.
    await eventually('the namespace opt-out is followed', async () => ((await createPod(LABELLED)).injected ? undefined : true), 5_000, 100);
    const off = Date.now() - started;
    await labelNamespace(LABELLED, 'enabled');
    started = Date.now();
    await eventually('the namespace opt-in is followed', async () => ((await createPod(LABELLED)).injected ? true : undefined), 5_000, 100);
    const on = Date.now() - started;
    expect(Math.max(off, on)).toBeLessThan(5_000);
    // Label removed: the namespace entry no longer matches at all.
    await labelNamespace(LABELLED, null);
    await eventually('the label removal is followed', async () => ((await createPod(LABELLED)).injected ? undefined : true), 5_000, 100);
  });

  it('the exclude label keeps an object, and a whole namespace, away from podvisor', async () => {
    expect(await createPod(PLAIN, { annotations: { 'podvisor.io/lxcfs': 'true' }, labels: { 'podvisor.io/exclude': 'true' } })).toEqual({ injected: false, reviewed: false });
    expect(await createPod(EXCLUDED, { annotations: { 'podvisor.io/lxcfs': 'true' } })).toEqual({ injected: false, reviewed: false });
  });
});
