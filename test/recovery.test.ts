import { readFileSync } from 'node:fs';
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
import { createRecoveryMetrics } from '../src/recovery/metrics.js';
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

// ---- the controller against the model of the API server (real @kubernetes/client-node) ----
// Everything the controller does against the real kube-apiserver (the Lease between replicas, evictions with
// PodDisruptionBudgets and UID preconditions, the pacing, the Event on a bare Pod, a restart no replica saw, `serve
// --lxcfs-recovery` and its default off) is in test/e2e/recovery.test.ts. What stays here needs the model.

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('lxcfs recovery controller with the fake API server', () => {
  let api: FakeApiServer;
  let running: LxcfsRecovery[];
  let evicted: Set<string>;
  const log = createLogger('silent');

  beforeEach(async () => {
    api = await startFakeApiServer();
    running = [];
    evicted = new Set();
    // GET /api/v1/pods?fieldSelector=spec.nodeName=X: the store ignores selectors, so honour this one here.
    api.route('GET', '/api/v1/pods', (request) => {
      const node = /^spec\.nodeName=(.+)$/.exec(request.query['fieldSelector'] ?? '')?.[1];
      if (node === undefined) return undefined;
      const items = api.list('pods').filter((p) => p['spec']?.nodeName === node);
      return { status: 200, body: { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items } };
    });
    // The Eviction subresource: deletes, and answers as the apiserver does (201 with a Success Status).
    api.route('POST', /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/eviction$/, (request) => {
      const [, , , namespace = '', , name = ''] = request.path.split('/').slice(1);
      if (!api.remove('pods', namespace, name)) return { status: 404, body: api.status(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' }) };
      evicted.add(`${namespace}/${name}`);
      return { status: 201, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 } };
    });
  });

  afterEach(async () => {
    for (const r of running) await r.stop();
    await api.close();
  });

  async function start(identity: string, overrides: Partial<RecoveryOptions> = {}): Promise<LxcfsRecovery> {
    const options = recoveryOptions('podvisor-system', identity, { leaseRenewMs: 50, evictionRetryMs: 150, evictionsPerMinute: 60_000, evictionBurst: 10, ...overrides });
    const recovery = await startLxcfsRecovery(kubeRecoveryApi(api.kubeConfig(), options), options, log, createRecoveryMetrics(new Registry()));
    running.push(recovery);
    return recovery;
  }

  const put = (pod: Pod): KubeObject => api.put('pods', pod as KubeObject);

  // A 410 Gone on the open watch at a chosen moment: the real apiserver cannot be made to send one on demand.
  it('keeps following the lxcfs pods after the watch expires (410 Gone → re-list)', async () => {
    put(lxcfsPod('node-a', 'la', 0, T0, true));
    put(runningPod({ name: 'w-1', node: 'node-a', startedAt: T0 + 10_000 }));
    const recovery = await start('replica-1');
    await until('leading and watching', () => recovery.isLeader() && api.openWatches('pods') > 0);
    api.expireWatches('pods');
    await until('the watch is re-established', () => api.openWatches('pods') > 0);
    await new Promise((r) => setTimeout(r, 1_500));
    // One watch, not one per restart attempt.
    expect(api.openWatches('pods')).toBe(1);
    put(lxcfsPod('node-a', 'la', 1, T0 + 100_000, true));
    await until('w-1 evicted', () => evicted.has('web/w-1'));
  });
});
