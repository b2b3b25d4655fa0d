// Events (src/k8s/events.ts) as the kube-apiserver stores them: podvisor, registered for admission under its own
// ServiceAccount token, writes Injected and Denied Events on the objects the apiserver sent it, none for dry runs; and
// the recorder itself (in this process, with podvisor's token) writes valid core/v1 Events, rate-limited and
// deduplicated.
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEventRecorder, type Notice } from '../../src/k8s/events.js';
import { createIntegrationMetrics } from '../../src/k8s/metrics.js';
import { createLogger } from '../../src/observability/logger.js';
import { createNamespace, deleteNamespace, eventually } from '../support/cluster-objects.js';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const NAMESPACE = 'e2e-events';
const DENIED = 'spec.containers[0].securityContext.privileged: forbidden by policy no-privileged';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;

interface StoredEvent {
  metadata: { name: string; namespace: string };
  involvedObject: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string };
  reason: string;
  message: string;
  type: string;
  source: { component?: string; host?: string };
  reportingComponent: string;
  reportingInstance: string;
  action?: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
}

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  podvisor = await startPodvisorOnCluster(info, { config: { policy: { workloads: 'enforce', default: { name: 'no-privileged', privileged: 'deny' } } } });
});
afterAll(async () => {
  await podvisor?.stop();
  await deleteNamespace(admin, NAMESPACE);
});

/** The Events in the namespace on the object named `name` (a field selector, as `kubectl describe` asks). */
async function eventsOn(name: string): Promise<StoredEvent[]> {
  const answer = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${name}`)}`);
  expect(answer.status).toBe(200);
  return (answer.body as { items: StoredEvent[] }).items;
}
const eventOn = (name: string, reason: string): Promise<StoredEvent> =>
  eventually(`the ${reason} Event on ${name}`, async () => (await eventsOn(name)).find((e) => e.reason === reason), 15_000);

function pod(name: string, options: { privileged?: boolean } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations: { 'podvisor.io/lxcfs': 'true' } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1', ...(options.privileged === true ? { securityContext: { privileged: true } } : {}) }] },
  };
}
const create = (object: Record<string, unknown>, query = '') => apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods${query}`, object);

describe('Events written by podvisor at admission', () => {
  it('an injected Pod gets a Normal Injected Event naming the features and containers', async () => {
    const created = await create(pod('injected'));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const event = await eventOn('injected', 'Injected');
    expect(event).toMatchObject({
      type: 'Normal',
      message: 'injected lxcfs into container app',
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'injected', namespace: NAMESPACE },
      source: { component: 'podvisor' },
      reportingComponent: 'podvisor',
      action: 'Admission',
      count: 1,
    });
    expect(event.metadata.name).toMatch(/^injected\.[0-9a-f]+$/);
    expect(Date.parse(event.firstTimestamp)).not.toBeNaN();
    // The mutating webhook runs before the apiserver assigns the uid: the Event names the Pod, not its uid.
    expect(event.involvedObject.uid).toBeUndefined();
  });

  it('a workload gets its Event on itself: an injected Deployment', async () => {
    const created = await apiRequest(admin, 'POST', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' }, annotations: { 'podvisor.io/lxcfs': 'true' } }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] } },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(await eventOn('web', 'Injected')).toMatchObject({ type: 'Normal', message: 'injected lxcfs into container app', involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: NAMESPACE } });
  });

  it('a denied Pod gets a Warning Denied Event saying what the requester was told (on a Pod never stored)', async () => {
    // Opted in: the mutating webhook judges it first; not opted in: only the validating webhook sees it.
    for (const [name, webhook, annotated] of [['denied', 'mutate.podvisor.io', true], ['denied-plain', 'validate.podvisor.io', false]] as const) {
      const object = pod(name, { privileged: true });
      if (!annotated) (object['metadata'] as { annotations?: unknown }).annotations = {};
      const denied = await create(object);
      expect(denied.status).toBe(403);
      const event = await eventOn(name, 'Denied');
      expect(event).toMatchObject({ type: 'Warning', involvedObject: { apiVersion: 'v1', kind: 'Pod', name, namespace: NAMESPACE }, source: { component: 'podvisor' } });
      expect(event.message.startsWith(DENIED), event.message).toBe(true);
      expect((denied.body as { message: string }).message).toBe(`admission webhook "${webhook}" denied the request: ${event.message}`);
      // The apiserver assigns the uid between the mutating and the validating webhooks: a Denied Event from the
      // validating one names the uid of an object that was never stored.
      if (annotated) expect(event.involvedObject.uid).toBeUndefined();
      else expect(event.involvedObject.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect((await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/pods/${name}`)).status).toBe(404);
    }
  });

  it('server-side dry runs write no Event, injected or denied', async () => {
    expect((await create(pod('dry'), '?dryRun=All')).status).toBe(201);
    expect((await create(pod('dry-denied', { privileged: true }), '?dryRun=All')).status).toBe(403);
    // One writer sends the queue in order: once a later Pod's Event is stored, an Event queued for the dry runs would be too.
    expect((await create(pod('after-dry-runs'))).status).toBe(201);
    await eventOn('after-dry-runs', 'Injected');
    expect(await eventsOn('dry')).toEqual([]);
    expect(await eventsOn('dry-denied')).toEqual([]);
  });
});

describe('the Event recorder against the kube-apiserver (podvisor\'s token)', () => {
  const log = createLogger('silent');
  const notice = (name: string, message = 'injected lxcfs'): Notice => ({ reason: 'Injected', type: 'Normal', message, involved: { apiVersion: 'v1', kind: 'Pod', name, namespace: NAMESPACE } });
  const kubeConfig = (): KubeConfig => loadKubeConfig(podvisor.kubeconfig);

  it('writes a core/v1 Event the apiserver accepts and stores as sent', async () => {
    const metrics = createIntegrationMetrics(new Registry());
    const recorder = createEventRecorder(kubeConfig(), log, { metrics });
    recorder.record(notice('recorded'));
    await recorder.flush();
    const [event] = await eventsOn('recorded');
    expect(event).toMatchObject({ reason: 'Injected', type: 'Normal', message: 'injected lxcfs', involvedObject: { kind: 'Pod', name: 'recorded', namespace: NAMESPACE }, source: { component: 'podvisor' }, reportingComponent: 'podvisor', count: 1 });
    expect(event!.firstTimestamp).toBe(event!.lastTimestamp);
    expect((await metrics.events.get()).values.find((v) => v.labels.result === 'sent')?.value).toBe(1);
  });

  it('rate-limits with a token bucket and deduplicates the same message on the same object', async () => {
    let t = 1_000_000;
    const metrics = createIntegrationMetrics(new Registry());
    const counted = async (result: string): Promise<number> => (await metrics.events.get()).values.filter((v) => v.labels.result === result).reduce((a, v) => a + v.value, 0);
    const stored = async (): Promise<number> => {
      const answer = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events`);
      return (answer.body as { items: StoredEvent[] }).items.filter((e) => e.involvedObject.name?.startsWith('limited-')).length;
    };
    const recorder = createEventRecorder(kubeConfig(), log, { metrics, burst: 3, ratePerSecond: 1, now: () => t });
    for (let i = 0; i < 10; i++) recorder.record(notice(`limited-${i}`));
    recorder.record(notice('limited-0'));
    await recorder.flush();
    expect(await stored()).toBe(3);
    expect(await counted('sent')).toBe(3);
    expect(await counted('dropped')).toBe(7);
    expect(await counted('deduplicated')).toBe(1);
    t += 2000; // two tokens back
    for (const i of [20, 21, 22]) recorder.record(notice(`limited-${i}`));
    await recorder.flush();
    expect(await stored()).toBe(5);
  });
});
