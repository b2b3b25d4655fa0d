// Re-invocation through the real admission chain: a later mutating webhook changes every Pod, so the kube-apiserver
// calls podvisor a second time (reinvocationPolicy IfNeeded). podvisor's second answer must be an empty patch, and
// after a sidecar injector adds a container, the second pass covers that container and duplicates nothing.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { KubeObject } from '../../src/admission/types.js';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { createNamespace, createObject, createServiceAccount, deleteNamespace, duplicateMounts, eventually, readObject, waitForPods } from '../support/cluster-objects.js';
import { fixture } from '../support/harness.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';
import { SIDECAR, startTouchWebhook, TOUCH_ANNOTATION, type TouchWebhook } from '../support/touch-webhook.js';

const info = inject('controlPlane');
const NAMESPACE = 'e2e-reinvocation';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;
let touch: TouchWebhook | undefined;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  podvisor = await startPodvisorOnCluster(info, { keepReviews: true });
});
afterEach(async () => {
  await touch?.close();
  touch = undefined;
});
afterAll(async () => {
  await podvisor?.stop();
  await deleteNamespace(admin, NAMESPACE);
});

/** The touch webhook is in the apiserver's chain (its configuration cache follows a write within a moment). */
async function touchActive(): Promise<void> {
  await eventually('the touch webhook is called', async () => {
    const answer = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods?dryRun=All`, { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'probe-' }, spec: { containers: [{ name: 'c', image: 'x' }] } });
    return (answer.body as KubeObject & { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.[TOUCH_ANNOTATION] !== undefined ? true : undefined;
  }, 20_000);
}

function reviews(name: string) {
  return podvisor.process.logs.filter((l) => l.msg === 'review' && l['kind'] === 'Pod' && l['namespace'] === NAMESPACE && String(l['name']).startsWith(name));
}

function pod(name: string): KubeObject {
  const object = fixture('01-pod-nginx-lxcfs.yaml');
  return { ...object, metadata: { ...(object['metadata'] as object), name, namespace: NAMESPACE } };
}

type StoredPod = { metadata: { annotations: Record<string, string> }; spec: { containers: { name: string; volumeMounts?: { mountPath: string }[] }[]; volumes: { name: string }[] } };

describe('re-invocation by a later mutating webhook', () => {
  it('a bare Pod: podvisor is called twice, injects once, and its second answer changes nothing', async () => {
    touch = await startTouchWebhook(admin, { namespace: NAMESPACE, addSidecar: false });
    await touchActive();
    await createObject(admin, pod('reinvoked'));
    const stored = (await readObject(admin, 'v1', 'Pod', NAMESPACE, 'reinvoked')) as unknown as StoredPod;
    expect(stored.metadata.annotations[TOUCH_ANNOTATION]).toBeDefined();
    expect(duplicateMounts(stored.spec as never)).toEqual([]);
    expect(stored.spec.containers[0]!.volumeMounts!.filter((m) => m.mountPath === '/proc/meminfo')).toHaveLength(1);
    const calls = await eventually('two reviews of the Pod', async () => (reviews('reinvoked').length >= 2 ? reviews('reinvoked') : undefined), 5_000);
    expect(calls.map((c) => c['injected'])).toEqual([['lxcfs'], []]);
  });

  it('Pods of a Deployment: the template is injected already, so both calls on each Pod change nothing', async () => {
    touch = await startTouchWebhook(admin, { namespace: NAMESPACE, addSidecar: false });
    await touchActive();
    const deployment = fixture('02-deployment-java-sidecar.yaml');
    await createServiceAccount(admin, NAMESPACE, 'orders-api');
    await createObject(admin, { ...deployment, metadata: { ...(deployment['metadata'] as object), namespace: NAMESPACE } });
    const replicas = (deployment['spec'] as { replicas: number }).replicas;
    const pods = (await waitForPods(admin, NAMESPACE, { 'app.kubernetes.io/name': 'orders-api' }, replicas)) as unknown as StoredPod[];
    const generateName = String((pods[0]!.metadata as { generateName?: string }).generateName);
    for (const p of pods) {
      expect(p.metadata.annotations[TOUCH_ANNOTATION]).toBeDefined();
      expect(duplicateMounts(p.spec as never)).toEqual([]);
    }
    // Two calls per Pod (the first, then the re-invocation), each without a change.
    const calls = await eventually('two reviews of each Deployment Pod', async () => (reviews(generateName).length >= 2 * replicas ? reviews(generateName) : undefined), 10_000);
    expect(calls.map((c) => c['injected'])).toEqual(Array.from({ length: 2 * replicas }, () => []));
  });

  it('a sidecar added after podvisor: the second pass mounts LXCFS into it, and nothing twice', async () => {
    touch = await startTouchWebhook(admin, { namespace: NAMESPACE, addSidecar: true });
    await touchActive();
    await createObject(admin, pod('with-sidecar'));
    const stored = (await readObject(admin, 'v1', 'Pod', NAMESPACE, 'with-sidecar')) as unknown as StoredPod;
    expect(stored.spec.containers.map((c) => c.name)).toEqual(['nginx', SIDECAR]);
    expect(duplicateMounts(stored.spec as never)).toEqual([]);
    for (const container of stored.spec.containers) expect(container.volumeMounts!.filter((m) => m.mountPath === '/proc/meminfo'), container.name).toHaveLength(1);
    expect(stored.spec.volumes.filter((v) => v.name === 'podvisor-lxcfs-proc-meminfo')).toHaveLength(1);
    expect([...JSON.parse(stored.metadata.annotations['podvisor.io/status']!).containers].sort()).toEqual([SIDECAR, 'nginx'].sort());
    const calls = await eventually('two reviews of the Pod', async () => (reviews('with-sidecar').length >= 2 ? reviews('with-sidecar') : undefined), 5_000);
    expect(calls.map((c) => c['injected'])).toEqual([['lxcfs'], ['lxcfs']]);
  });
});
