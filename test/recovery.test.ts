import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LeaseSpec } from 'kubernetes-types/coordination/v1.js';
import type { Pod, PodTemplateSpec } from 'kubernetes-types/core/v1.js';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { injectManifests } from '../src/cli/inject.js';
import { parseManifests } from '../src/cli/manifests.js';
import { parseConfig } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { planNode, recordedStatus, staleContainers } from '../src/recovery/affected-pods.js';
import { startLxcfsRecovery, type LxcfsRecovery } from '../src/recovery/controller.js';
import { kubeRecoveryApi } from '../src/recovery/kube-api.js';
import { leaseDecision, microTime } from '../src/recovery/lease.js';
import { lxcfsRestarted, lxcfsStateOf, type LxcfsNodeState } from '../src/recovery/lxcfs-pods.js';
import { createRecoveryMetrics, type RecoveryMetrics } from '../src/recovery/metrics.js';
import { recoveryOptions, type RecoveryOptions } from '../src/recovery/options.js';
import { TokenBucket } from '../src/recovery/rate-limiter.js';
import { startFakeApiServer, type FakeApiServer, type KubeObject } from './support/fake-apiserver.js';

const T0 = Date.parse('2026-11-20T10:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The pod template of fixture 02 as podvisor's real pipeline injects it: its status annotation is the real format. */
function injectedTemplate(): PodTemplateSpec {
  const text = readFileSync(new URL('./fixtures/02-deployment-java-sidecar.yaml', import.meta.url), 'utf8');
  const result = injectManifests(parseManifests([{ name: '02-deployment-java-sidecar.yaml', text }], 'web'), parseConfig({}));
  const deployment = result.documents[0] as unknown as { spec: { template: PodTemplateSpec } };
  return deployment.spec.template;
}

interface PodSpecOptions {
  readonly name: string;
  readonly node: string;
  readonly namespace?: string;
  readonly owner?: 'ReplicaSet' | 'none' | 'mirror';
  readonly startedAt: number;
  readonly template?: PodTemplateSpec;
  readonly uid?: string;
}

/** A running pod created from `template`, as the kubelet reports it. */
function runningPod(o: PodSpecOptions): Pod {
  const template = o.template ?? injectedTemplate();
  const annotations = { ...(template.metadata?.annotations ?? {}) };
  if (o.owner === 'mirror') annotations['kubernetes.io/config.mirror'] = 'abc';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name,
      namespace: o.namespace ?? 'web',
      uid: o.uid ?? `uid-${o.name}`,
      labels: template.metadata?.labels ?? {},
      annotations,
      ...(o.owner === 'ReplicaSet' || o.owner === undefined
        ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-api-5d8f', uid: 'rs-uid', controller: true }] }
        : o.owner === 'mirror'
          ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: o.node, uid: 'node-uid', controller: true }] }
          : {}),
    },
    spec: { ...template.spec!, nodeName: o.node },
    status: {
      phase: 'Running',
      startTime: iso(o.startedAt - 5_000),
      containerStatuses: template.spec!.containers.map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: true,
        restartCount: 0,
        started: true,
        state: { running: { startedAt: iso(o.startedAt) } },
      })),
    },
  };
}

function lxcfsPod(node: string, uid: string, restarts: number, startedAt: number, ready: boolean): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `lxcfs-${uid}`, namespace: 'podvisor-system', uid, labels: { 'app.kubernetes.io/name': 'lxcfs', 'podvisor.io/exclude': 'true' } },
    spec: { nodeName: node, containers: [{ name: 'lxcfs', image: 'ghcr.io/podvisor/lxcfs:6.0.4' }] },
    status: {
      phase: 'Running',
      containerStatuses: [
        { name: 'lxcfs', image: '', imageID: '', ready, restartCount: restarts, state: { running: { startedAt: iso(startedAt) } } },
      ],
    },
  };
}

describe('status annotation and stale containers (pure)', () => {
  it('reads the status the real pipeline writes and finds the lxcfs feature', () => {
    const template = injectedTemplate();
    const status = recordedStatus({ metadata: template.metadata! });
    expect(status?.features).toContain('lxcfs');
    expect(status?.lxcfsContainers.length).toBeGreaterThan(0);
  });

  it('a container that started before the running lxcfs is stale; one that (re)started after is not', () => {
    const lxcfs: LxcfsNodeState = { node: 'node-a', podUid: 'l1', restarts: 1, ready: true, startedAt: T0 + 60_000 };
    const pod = runningPod({ name: 'p', node: 'node-a', startedAt: T0 });
    const targets = recordedStatus(pod)!.lxcfsContainers;
    expect(staleContainers(pod, lxcfs)).toEqual([...targets].sort());
    const restarted = structuredClone(pod);
    for (const c of restarted.status!.containerStatuses!) c.state = { running: { startedAt: iso(T0 + 120_000) } };
    expect(staleContainers(restarted, lxcfs)).toEqual([]);
    // Only containers podvisor injected count: a container outside the status list never makes the pod stale.
    const onlyOthers = structuredClone(pod);
    for (const c of onlyOthers.status!.containerStatuses!) if (targets.includes(c.name)) c.state = { running: { startedAt: iso(T0 + 120_000) } };
    onlyOthers.status!.containerStatuses!.push({ name: 'not-injected', image: '', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: iso(T0) } } });
    expect(staleContainers(onlyOthers, lxcfs)).toEqual([]);
  });

  it('with per-feature scopes, only the containers LXCFS was mounted into count (targets.lxcfs, not the union)', () => {
    const lxcfs: LxcfsNodeState = { node: 'node-a', podUid: 'l1', restarts: 1, ready: true, startedAt: T0 + 60_000 };
    const pod = runningPod({ name: 'p', node: 'node-a', startedAt: T0 });
    const names = pod.status!.containerStatuses!.map((c) => c.name);
    pod.status!.containerStatuses!.push({ name: 'fuse-only', image: '', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: iso(T0) } } });
    pod.metadata!.annotations!['podvisor.io/status'] = JSON.stringify({ version: 1, features: ['lxcfs', 'fuse'], containers: [...names, 'fuse-only'].sort(), targets: { lxcfs: names, fuse: ['fuse-only'] } });
    expect(staleContainers(pod, lxcfs)).toEqual([...names].sort());
    for (const c of pod.status!.containerStatuses!) if (names.includes(c.name)) c.state = { running: { startedAt: iso(T0 + 120_000) } };
    expect(staleContainers(pod, lxcfs)).toEqual([]);
  });

  it('ignores pods without the lxcfs feature or with an unreadable status', () => {
    const lxcfs: LxcfsNodeState = { node: 'node-a', podUid: 'l1', restarts: 1, ready: true, startedAt: T0 + 60_000 };
    const plain = runningPod({ name: 'p', node: 'node-a', startedAt: T0 });
    delete plain.metadata!.annotations!['podvisor.io/status'];
    expect(staleContainers(plain, lxcfs)).toEqual([]);
    const otherFeature = runningPod({ name: 'q', node: 'node-a', startedAt: T0 });
    otherFeature.metadata!.annotations!['podvisor.io/status'] = JSON.stringify({ version: 1, features: ['fuse'], containers: ['app'] });
    expect(staleContainers(otherFeature, lxcfs)).toEqual([]);
    const broken = runningPod({ name: 'r', node: 'node-a', startedAt: T0 });
    broken.metadata!.annotations!['podvisor.io/status'] = '{not json';
    expect(staleContainers(broken, lxcfs)).toEqual([]);
  });
});

describe('restart detection and node plans (pure)', () => {
  it('detects a container restart or a replaced pod, never a first sighting', () => {
    const first = lxcfsStateOf(lxcfsPod('node-a', 'l1', 0, T0, true), 'lxcfs')!;
    expect(lxcfsRestarted(undefined, first)).toBe(false);
    expect(lxcfsRestarted(first, first)).toBe(false);
    expect(lxcfsRestarted(first, lxcfsStateOf(lxcfsPod('node-a', 'l1', 1, T0 + 1000, false), 'lxcfs')!)).toBe(true);
    expect(lxcfsRestarted(first, lxcfsStateOf(lxcfsPod('node-a', 'l2', 0, T0 + 1000, false), 'lxcfs')!)).toBe(true);
    expect(lxcfsStateOf({ ...lxcfsPod('node-a', 'l1', 0, T0, true), spec: { containers: [] } }, 'lxcfs')).toBeUndefined();
  });

  it('evicts controlled pods, reports bare and mirror pods, skips other nodes, terminating and finished pods', () => {
    const lxcfs: LxcfsNodeState = { node: 'node-a', podUid: 'l1', restarts: 1, ready: true, startedAt: T0 + 60_000 };
    const live = runningPod({ name: 'terminating', node: 'node-a', startedAt: T0 });
    const terminating: Pod = { ...live, metadata: { ...live.metadata, deletionTimestamp: iso(T0 + 70_000) } };
    const done = runningPod({ name: 'done', node: 'node-a', startedAt: T0 });
    done.status!.phase = 'Succeeded';
    const pods = [
      runningPod({ name: 'web-2', node: 'node-a', startedAt: T0 }),
      runningPod({ name: 'web-1', node: 'node-a', startedAt: T0 }),
      runningPod({ name: 'bare', node: 'node-a', owner: 'none', startedAt: T0 }),
      runningPod({ name: 'static', node: 'node-a', owner: 'mirror', startedAt: T0 }),
      runningPod({ name: 'fresh', node: 'node-a', startedAt: T0 + 90_000 }),
      runningPod({ name: 'elsewhere', node: 'node-b', startedAt: T0 }),
      terminating,
      done,
    ];
    const plan = planNode(lxcfs, pods);
    expect(plan.evict.map((p) => p.name)).toEqual(['web-1', 'web-2']);
    expect(plan.bare.map((p) => p.name)).toEqual(['bare', 'static']);
    expect(plan.evict[0]).toMatchObject({ namespace: 'web', uid: 'uid-web-1' });
    // Nothing while the new lxcfs is not ready: recreated pods would bind a dead mount again.
    expect(planNode({ ...lxcfs, ready: false }, pods)).toEqual({ evict: [], bare: [] });
  });
});

describe('token bucket (pure)', () => {
  it('allows the burst, then one eviction per 60/perMinute seconds', () => {
    const bucket = new TokenBucket(6, 2, 0);
    expect(bucket.take(0)).toBe(true);
    expect(bucket.take(0)).toBe(true);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.waitMs(0)).toBe(10_000);
    expect(bucket.take(9_999)).toBe(false);
    expect(bucket.take(10_000)).toBe(true);
    expect(bucket.take(10_001)).toBe(false);
    // Never more than the burst, however long it idled.
    expect([bucket.take(1e9), bucket.take(1e9), bucket.take(1e9)]).toEqual([true, true, false]);
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
  });
});

describe('lease decision (pure)', () => {
  it('creates, renews, waits for a live holder, takes over an expired one', () => {
    const created = leaseDecision(undefined, 'a', T0, 15);
    expect(created).toMatchObject({ action: 'create', spec: { holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 } });
    const spec = (created as { spec: LeaseSpec }).spec;
    expect(spec.renewTime).toBe('2026-11-20T10:00:00.000000Z');
    expect(leaseDecision(spec, 'a', T0 + 5_000, 15)).toMatchObject({ action: 'renew', spec: { holderIdentity: 'a', renewTime: microTime(T0 + 5_000) } });
    expect(leaseDecision(spec, 'b', T0 + 14_000, 15)).toEqual({ action: 'wait', holder: 'a' });
    expect(leaseDecision(spec, 'b', T0 + 16_000, 15)).toMatchObject({ action: 'acquire', spec: { holderIdentity: 'b', leaseTransitions: 1 } });
    expect(leaseDecision({ ...spec, holderIdentity: '' }, 'b', T0 + 1, 15)).toMatchObject({ action: 'acquire' });
  });
});

// ---- the controller against the fake API server (real @kubernetes/client-node) ----

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function untilAsync(what: string, predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = (metric?.values as { value: number; labels: Record<string, string> }[] | undefined)?.find((v) =>
    Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  );
  return value?.value ?? 0;
}

describe('lxcfs recovery controller with the fake API server', () => {
  let api: FakeApiServer;
  let running: LxcfsRecovery[];
  let evictionTimes: Map<string, number>;
  /** Pods whose PodDisruptionBudget refuses the next N evictions with 429. */
  let pdbBlocks: Map<string, number>;
  const log = createLogger('silent');

  beforeEach(async () => {
    api = await startFakeApiServer();
    running = [];
    evictionTimes = new Map();
    pdbBlocks = new Map();
    // GET /api/v1/pods?fieldSelector=spec.nodeName=X: the store ignores selectors, so honour this one here.
    api.route('GET', '/api/v1/pods', (request) => {
      const node = /^spec\.nodeName=(.+)$/.exec(request.query['fieldSelector'] ?? '')?.[1];
      if (node === undefined) return undefined;
      const items = api.list('pods').filter((p) => p['spec']?.nodeName === node);
      return { status: 200, body: { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items } };
    });
    // The Eviction subresource (policy/v1): 429 while a PDB blocks, 404 for a missing pod, else delete and 201.
    api.route('POST', /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/eviction$/, (request) => {
      const [, , , namespace = '', , name = ''] = request.path.split('/').slice(1);
      const key = `${namespace}/${name}`;
      const blocks = pdbBlocks.get(key) ?? 0;
      if (blocks > 0) {
        pdbBlocks.set(key, blocks - 1);
        return { status: 429, body: api.status(429, 'TooManyRequests', 'Cannot evict pod as it would violate the pod\'s disruption budget.', { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget orders-api needs 2 healthy pods and has 2 currently' }] }) };
      }
      // Like the API: a UID precondition that does not match the stored pod (replaced under the same name) is a 409.
      const stored = api.get('pods', namespace, name) as { metadata: { uid?: string } } | undefined;
      const wanted = (request.body as { deleteOptions?: { preconditions?: { uid?: string } } }).deleteOptions?.preconditions?.uid;
      if (stored !== undefined && wanted !== undefined && wanted !== stored.metadata.uid) {
        return { status: 409, body: api.status(409, 'Conflict', `Precondition failed: UID in precondition: ${wanted}, UID in object meta: ${stored.metadata.uid}`) };
      }
      if (!api.remove('pods', namespace, name)) return { status: 404, body: api.status(404, 'NotFound', `pods "${name}" not found`) };
      evictionTimes.set(key, Date.now());
      return { status: 201, body: request.body };
    });
  });

  afterEach(async () => {
    for (const r of running) await r.stop();
    await api.close();
  });

  async function start(identity: string, overrides: Partial<RecoveryOptions> = {}): Promise<{ recovery: LxcfsRecovery; registry: Registry; metrics: RecoveryMetrics }> {
    const registry = new Registry();
    const metrics = createRecoveryMetrics(registry);
    const options = recoveryOptions('podvisor-system', identity, { leaseRenewMs: 50, evictionRetryMs: 150, evictionsPerMinute: 60_000, evictionBurst: 10, ...overrides });
    const recovery = await startLxcfsRecovery(kubeRecoveryApi(api.kubeConfig(), options), options, log, metrics);
    running.push(recovery);
    return { recovery, registry, metrics };
  }

  const put = (pod: Pod): KubeObject => api.put('pods', pod as KubeObject);
  const evictionRequests = (): string[] =>
    api.requestsTo('POST', /\/eviction$/).map((r) => `${(r.body as { metadata: { namespace: string } }).metadata.namespace}/${(r.body as { metadata: { name: string } }).metadata.name}`);

  it('one leader; on an lxcfs restart it evicts stale controlled pods once lxcfs is ready, retries a PDB 429, reports bare pods', async () => {
    put(lxcfsPod('node-a', 'la', 0, T0, true));
    put(lxcfsPod('node-b', 'lb', 0, T0, true));
    put(runningPod({ name: 'web-1', node: 'node-a', startedAt: T0 + 10_000 }));
    put(runningPod({ name: 'web-2', node: 'node-a', startedAt: T0 + 10_000 }));
    const bareUid = put(runningPod({ name: 'bare', node: 'node-a', owner: 'none', startedAt: T0 + 10_000 })).metadata?.['uid'] as string;
    put(runningPod({ name: 'web-b', node: 'node-b', startedAt: T0 + 10_000 }));
    const plainTemplate = injectedTemplate();
    delete plainTemplate.metadata!.annotations!['podvisor.io/status'];
    put(runningPod({ name: 'plain', node: 'node-a', startedAt: T0 + 10_000, template: plainTemplate }));

    const one = await start('replica-1');
    await until('replica-1 leads', () => one.recovery.isLeader());
    const two = await start('replica-2');
    // Leading: a full pass over every node finds nothing (every consumer started after its lxcfs).
    await new Promise((r) => setTimeout(r, 300));
    expect(two.recovery.isLeader()).toBe(false);
    expect(api.get('leases', 'podvisor-system', 'podvisor-recovery', 'coordination.k8s.io/v1')?.['spec']).toMatchObject({ holderIdentity: 'replica-1', leaseDurationSeconds: 15 });
    expect(evictionRequests()).toEqual([]);
    expect(await metricValue(one.registry, 'podvisor_lxcfs_recovery_leader')).toBe(1);
    expect(await metricValue(two.registry, 'podvisor_lxcfs_recovery_leader')).toBe(0);

    // lxcfs on node-a crashes and restarts: not ready yet → nothing happens.
    pdbBlocks.set('web/web-2', 2);
    put(lxcfsPod('node-a', 'la', 1, T0 + 100_000, false));
    await until('the restart is seen', () => one.recovery.pendingNodes().includes('node-a'));
    await new Promise((r) => setTimeout(r, 200));
    expect(evictionRequests()).toEqual([]);

    // Ready again: evict the stale controlled pods on node-a only.
    put(lxcfsPod('node-a', 'la', 1, T0 + 100_000, true));
    await until('web-1 and web-2 evicted', () => evictionTimes.has('web/web-1') && evictionTimes.has('web/web-2'));
    const requests = evictionRequests();
    expect(new Set(requests)).toEqual(new Set(['web/web-1', 'web/web-2']));
    // web-2's PodDisruptionBudget refused twice (429); each refusal was retried later, never forced.
    expect(requests.filter((r) => r === 'web/web-2')).toHaveLength(3);
    const eviction = api.requestsTo('POST', /\/eviction$/)[0]!;
    expect(eviction.body).toMatchObject({ apiVersion: 'policy/v1', kind: 'Eviction' });
    // Every eviction is pinned to the planned pod's UID (the route answers 409 to any other, like the API, so the
    // evictions above succeeding shows the UIDs were the pods'): a pod replaced under the same name is never evicted.
    for (const request of api.requestsTo('POST', /\/eviction$/)) {
      expect(typeof (request.body as { deleteOptions?: { preconditions?: { uid?: unknown } } }).deleteOptions?.preconditions?.uid).toBe('string');
    }
    expect(api.get('pods', 'web', 'bare')).toBeDefined();
    expect(api.get('pods', 'web', 'plain')).toBeDefined();
    expect(api.get('pods', 'web', 'web-b')).toBeDefined();
    // Nobody deletes pods directly.
    expect(api.requests.filter((r) => r.method === 'DELETE')).toEqual([]);

    // The bare pod: one Warning Event, a metric, no eviction.
    await until('the bare pod is reported', () => api.requestsTo('POST', '/api/v1/namespaces/web/events').length > 0);
    const events = api.requestsTo('POST', '/api/v1/namespaces/web/events');
    expect(events).toHaveLength(1);
    expect(events[0]!.body).toMatchObject({
      type: 'Warning',
      reason: 'LxcfsRestarted',
      involvedObject: { kind: 'Pod', name: 'bare', namespace: 'web', uid: bareUid },
      source: { component: 'podvisor' },
    });
    expect(await metricValue(one.registry, 'podvisor_lxcfs_recovery_bare_pods')).toBe(1);
    // The apiserver has seen both evictions; the counter moves when their answers arrive.
    await untilAsync('both evictions counted', async () => (await metricValue(one.registry, 'podvisor_lxcfs_recovery_evictions_total', { result: 'evicted' })) >= 2);
    expect(await metricValue(one.registry, 'podvisor_lxcfs_recovery_evictions_total', { result: 'evicted' })).toBe(2);
    expect(await metricValue(one.registry, 'podvisor_lxcfs_recovery_evictions_total', { result: 'blocked' })).toBe(2);
    expect(await metricValue(one.registry, 'podvisor_lxcfs_restarts_total')).toBe(1);
    // The standby saw the restart too but did nothing.
    expect(await metricValue(two.registry, 'podvisor_lxcfs_restarts_total')).toBe(1);
    expect(await metricValue(two.registry, 'podvisor_lxcfs_recovery_evictions_total', { result: 'evicted' })).toBe(0);

    // The lxcfs pod on node-b is replaced (new uid): its consumer is evicted too.
    api.remove('pods', 'podvisor-system', 'lxcfs-lb');
    put(lxcfsPod('node-b', 'lb2', 0, T0 + 200_000, true));
    await until('web-b evicted', () => evictionTimes.has('web/web-b'));
    expect(api.requestsTo('POST', '/api/v1/namespaces/web/events')).toHaveLength(1);

    // The leader stops and releases the Lease: the standby takes over without waiting for it to expire (15 s).
    await one.recovery.stop();
    running.splice(running.indexOf(one.recovery), 1);
    expect(api.get('leases', 'podvisor-system', 'podvisor-recovery', 'coordination.k8s.io/v1')?.['spec'].holderIdentity).not.toBe('replica-1');
    await until('replica-2 leads', () => two.recovery.isLeader(), 2_000);
    expect(api.get('leases', 'podvisor-system', 'podvisor-recovery', 'coordination.k8s.io/v1')?.['spec']).toMatchObject({ holderIdentity: 'replica-2', leaseTransitions: 1 });
  });

  it('a replica that starts after a restart it never saw still recovers the node (level-based check)', async () => {
    put(lxcfsPod('node-a', 'la', 3, T0 + 100_000, true));
    put(runningPod({ name: 'old', node: 'node-a', startedAt: T0 }));
    put(runningPod({ name: 'new', node: 'node-a', startedAt: T0 + 200_000 }));
    const { recovery } = await start('replica-1');
    await until('old evicted', () => evictionTimes.has('web/old'));
    await new Promise((r) => setTimeout(r, 200));
    expect(evictionRequests()).toEqual(['web/old']);
    expect(recovery.isLeader()).toBe(true);
  });

  it('keeps following the lxcfs pods after the watch expires (410 Gone → re-list)', async () => {
    put(lxcfsPod('node-a', 'la', 0, T0, true));
    put(runningPod({ name: 'w-1', node: 'node-a', startedAt: T0 + 10_000 }));
    const { recovery } = await start('replica-1');
    await until('leading and watching', () => recovery.isLeader() && api.openWatches('pods') > 0);
    api.expireWatches('pods');
    await until('the watch is re-established', () => api.openWatches('pods') > 0);
    await new Promise((r) => setTimeout(r, 1_500));
    // One watch, not one per restart attempt.
    expect(api.openWatches('pods')).toBe(1);
    put(lxcfsPod('node-a', 'la', 1, T0 + 100_000, true));
    await until('w-1 evicted', () => evictionTimes.has('web/w-1'));
  });

  it('paces evictions with the token bucket', async () => {
    put(lxcfsPod('node-a', 'la', 0, T0, true));
    for (const name of ['w-1', 'w-2', 'w-3']) put(runningPod({ name, node: 'node-a', startedAt: T0 + 10_000 }));
    const { recovery } = await start('replica-1', { evictionsPerMinute: 300, evictionBurst: 1 });
    await until('leading', () => recovery.isLeader());
    put(lxcfsPod('node-a', 'la', 1, T0 + 100_000, true));
    await until('all evicted', () => evictionTimes.size === 3, 5_000);
    const times = [...evictionTimes.values()].sort((a, b) => a - b);
    // 300 a minute = one every 200 ms after the first.
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(180);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(180);
  });
});

describe('podvisor serve with lxcfsRecovery.enabled (--lxcfs-recovery)', () => {
  async function serveAgainstFake(lxcfsRecovery: boolean, check: (api: FakeApiServer, opsPort: number) => Promise<void>): Promise<void> {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { startServer } = await import('../src/server/serve.js');
    const api = await startFakeApiServer();
    const config = parseConfig({ server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 }, lxcfsRecovery: { enabled: lxcfsRecovery } });
    config.tls.certDir = mkdtempSync(join(tmpdir(), 'podvisor-recovery-'));
    const server = await startServer(config, createLogger('silent'), { kubeConfig: api.kubeConfig(), register: false });
    try {
      await check(api, server.opsPort);
    } finally {
      await server.shutdown('test');
      await api.close();
      rmSync(config.tls.certDir, { recursive: true, force: true });
    }
  }
  const metricsText = async (opsPort: number): Promise<string> => (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();

  it('starts the controller with the cluster credentials: it takes the Lease and watches the lxcfs pods', async () => {
    await serveAgainstFake(true, async (api, opsPort) => {
      await until('the recovery Lease is held', () => api.get('leases', 'podvisor-system', 'podvisor-recovery', 'coordination.k8s.io/v1') !== undefined, 15_000);
      let text = '';
      const deadline = Date.now() + 10_000;
      while (!/^podvisor_lxcfs_recovery_leader 1$/m.test(text) && Date.now() < deadline) text = await metricsText(opsPort);
      expect(text).toMatch(/^podvisor_lxcfs_recovery_leader 1$/m);
      expect(api.requestsTo('GET', '/api/v1/namespaces/podvisor-system/pods').length).toBeGreaterThan(0);
    });
  });

  it('is off by default: no Lease, no pod watch, no recovery metrics', async () => {
    expect(parseConfig({}).lxcfsRecovery.enabled).toBe(false);
    await serveAgainstFake(false, async (api, opsPort) => {
      await new Promise((r) => setTimeout(r, 300));
      expect(api.requests.filter((r) => r.path.includes('/leases') || r.path.includes('/pods'))).toEqual([]);
      expect(await metricsText(opsPort)).not.toContain('podvisor_lxcfs_recovery');
    });
  });
});
