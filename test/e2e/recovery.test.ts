// The lxcfs restart recovery controller (src/recovery/) against the real kube-apiserver: podvisor replicas started with
// `--lxcfs-recovery` (or `lxcfsRecovery.enabled`) under podvisor's own ServiceAccount token and the shipped RBAC
// (deploy/base/rbac.yaml, part of the self-managed overlay the global setup applies). The lxcfs DaemonSet is the
// shipped one (`kubectl apply -k deploy/components/lxcfs`, as its kustomization says); its Pods are created by the real
// DaemonSet controller, the consumers by the real ReplicaSet controller, and podvisor's own admission wrote their
// status annotation. No scheduler and no kubelet run: the test binds the Pods and writes their status itself
// (test/support/node-stand-in.ts), so an lxcfs restart is a status update of its Pod, as a kubelet would write it.
// Leases, Evictions, PodDisruptionBudgets (the real disruption controller) and Events are the control plane's own.
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeRecoveryApi } from '../../src/recovery/kube-api.js';
import { recoveryOptions } from '../../src/recovery/options.js';
import { auditedCalls, grantedBy, neededFor, type AuditEvent } from '../support/audit-log.js';
import { createNamespace, deleteNamespace, eventually, waitForPods } from '../support/cluster-objects.js';
import { apiRequest, loadKubeConfig, runKubectl } from '../support/control-plane.js';
import { bindPod, reportRunning } from '../support/node-stand-in.js';
import { startPodvisorOnCluster, type PodvisorOnCluster, type PodvisorOnClusterOptions } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const NAMESPACE = 'e2e-recovery';
const SYSTEM = 'podvisor-system';
const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM}/leases/podvisor-recovery`;
const LXCFS = { 'app.kubernetes.io/name': 'lxcfs' };
const MINUTE = 60_000;

let admin: KubeConfig;
/** Registered for admission (it injects the consumers); recovery off, as shipped. */
let admission: PodvisorOnCluster;
let replica1: PodvisorOnCluster | undefined;
let replica2: PodvisorOnCluster | undefined;
let startedAt: string;
/** Node → the lxcfs DaemonSet's Pod on it. */
const lxcfsPod = new Map<string, string>();
/** ReplicaSet → the names of the Pods it created (and that the test bound). */
const podsOf = new Map<string, string[]>();

interface PodMeta {
  metadata: { name: string; uid: string; deletionTimestamp?: string; annotations?: Record<string, string>; ownerReferences?: { kind: string; controller?: boolean }[] };
  spec: { nodeName?: string };
}

async function pod(name: string, namespace = NAMESPACE): Promise<PodMeta> {
  const answer = await apiRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
  if (answer.status !== 200) throw new Error(`pod ${namespace}/${name}: ${answer.status}`);
  return answer.body as PodMeta;
}
const terminating = async (name: string): Promise<boolean> => (await pod(name)).metadata.deletionTimestamp !== undefined;

/** A ReplicaSet whose Pods opt into LXCFS (unless `optIn` is false), bound to `node`, running since `startedAt`. */
async function replicaSet(name: string, replicas: number, node: string, startedAt: Date, optIn = true): Promise<void> {
  const created = await apiRequest(admin, 'POST', `/apis/apps/v1/namespaces/${NAMESPACE}/replicasets`, {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: optIn ? { 'podvisor.io/lxcfs': 'true' } : {} },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      },
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const pods = await waitForPods(admin, NAMESPACE, { app: name }, replicas);
  const names = pods.map((p) => (p['metadata'] as { name: string }).name);
  for (const podName of names) {
    await bindPod(admin, NAMESPACE, podName, node);
    await reportRunning(admin, NAMESPACE, podName, { startedAt, ready: true });
  }
  podsOf.set(name, names);
}

const podsOfSet = (name: string): string[] => podsOf.get(name) ?? [];

async function lease(): Promise<{ holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; leaseTransitions?: number } | undefined> {
  const answer = await apiRequest(admin, 'GET', LEASE);
  return answer.status === 200 ? (answer.body as { spec: Record<string, never> }).spec : undefined;
}

/** One sample of a metric from a replica's /metrics (0 when absent). */
async function metric(replica: PodvisorOnCluster, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${replica.process.opsPort}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/**
 * The controller's Eviction calls since the file started, in order (audit log: podvisor's ServiceAccount), without the
 * kube-api test's own probes (a missing Pod, and the bare Pod with a wrong UID: 409, which the controller never sends).
 */
async function evictions(since = startedAt): Promise<AuditEvent[]> {
  const probe = (c: AuditEvent): boolean => c.objectRef?.name === 'no-such-pod' || (c.objectRef?.name === 'bare' && c.responseStatus?.code === 409);
  return (await auditedCalls(info, since)).filter((c) => c.objectRef?.subresource === 'eviction' && !probe(c));
}
const evictionCodes = async (name: string): Promise<number[]> => (await evictions()).filter((e) => e.objectRef?.name === name).map((e) => e.responseStatus?.code ?? 0);

function replicaOptions(identity: string, enable: { flag: true } | { config: true }): PodvisorOnClusterOptions {
  const certDir = `${info.dir}/certs-${identity}`;
  return {
    register: false,
    env: { POD_NAME: identity },
    config: { tls: { certDir }, ...('config' in enable ? { lxcfsRecovery: { enabled: true } } : {}) },
    extraArgs: 'flag' in enable ? ['--lxcfs-recovery'] : [],
  };
}

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  await apiRequest(admin, 'DELETE', LEASE);
  startedAt = new Date().toISOString();
  admission = await startPodvisorOnCluster(info);

  // The shipped lxcfs DaemonSet: one Pod per Node, bound and running. node-b's lxcfs restarted (twice) before any
  // replica watched, 2 minutes ago; node-a's has run for 10 minutes.
  const applied = await runKubectl(info.adminKubeconfig, ['apply', '-k', 'deploy/components/lxcfs']);
  expect(applied.code, applied.stderr).toBe(0);
  const now = Date.now();
  for (const p of await waitForPods(admin, SYSTEM, LXCFS, info.nodes.length)) {
    const meta = p['metadata'] as { name: string };
    const affinity = (p['spec'] as { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: { matchFields: { values: string[] }[] }[] } } } }).affinity;
    const node = affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]!.matchFields[0]!.values[0]!;
    await bindPod(admin, SYSTEM, meta.name, node);
    lxcfsPod.set(node, meta.name);
  }
  await reportRunning(admin, SYSTEM, lxcfsPod.get('node-a')!, { startedAt: new Date(now - 10 * MINUTE), ready: true });
  await reportRunning(admin, SYSTEM, lxcfsPod.get('node-b')!, { startedAt: new Date(now - 2 * MINUTE), ready: true, restartCount: 2 });

  // Consumers. node-a: web (2, behind a PodDisruptionBudget), api (1), plain (1, not opted in), a bare Pod; all started
  // after node-a's lxcfs. node-b: early (started before its lxcfs restarted: dead mounts), late (after: live mounts).
  await replicaSet('web', 2, 'node-a', new Date(now - 5 * MINUTE));
  await replicaSet('api', 1, 'node-a', new Date(now - 5 * MINUTE));
  await replicaSet('plain', 1, 'node-a', new Date(now - 5 * MINUTE), false);
  await replicaSet('early', 1, 'node-b', new Date(now - 5 * MINUTE));
  await replicaSet('late', 1, 'node-b', new Date(now - 1 * MINUTE));
  const bare = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bare', annotations: { 'podvisor.io/lxcfs': 'true' } },
    spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  });
  expect(bare.status, JSON.stringify(bare.body)).toBe(201);
  await reportRunning(admin, NAMESPACE, 'bare', { startedAt: new Date(now - 5 * MINUTE), ready: true });

  const pdb = await apiRequest(admin, 'POST', `/apis/policy/v1/namespaces/${NAMESPACE}/poddisruptionbudgets`, {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: 'web' },
    spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } },
  });
  expect(pdb.status, JSON.stringify(pdb.body)).toBe(201);
  // The disruption controller has counted both web Pods healthy: no disruption allowed.
  await eventually('the PodDisruptionBudget status', async () => {
    const answer = (await apiRequest(admin, 'GET', `/apis/policy/v1/namespaces/${NAMESPACE}/poddisruptionbudgets/web`)).body as { metadata: { generation: number }; status?: { observedGeneration?: number; currentHealthy?: number; disruptionsAllowed?: number } };
    return answer.status?.observedGeneration === answer.metadata.generation && answer.status.currentHealthy === 2 && answer.status.disruptionsAllowed === 0 ? true : undefined;
  }, 30_000);
});

afterAll(async () => {
  for (const p of [replica1, replica2, admission]) await p?.stop();
  await apiRequest(admin, 'DELETE', LEASE);
  // Bound Pods never finish terminating without a kubelet: delete them at once (as a kubelet confirms the deletion).
  await runKubectl(info.adminKubeconfig, ['delete', '-k', 'deploy/components/lxcfs', '--cascade=orphan', '--ignore-not-found']);
  await runKubectl(info.adminKubeconfig, ['-n', SYSTEM, 'delete', 'pods', '-l', 'app.kubernetes.io/name=lxcfs', '--grace-period=0', '--force']);
  await deleteNamespace(admin, NAMESPACE);
  await runKubectl(info.adminKubeconfig, ['-n', NAMESPACE, 'delete', 'pods', '--all', '--grace-period=0', '--force']);
});

describe('lxcfs restart recovery against the kube-apiserver', () => {
  it('the consumers were injected at admission: their status annotation names the lxcfs feature (plain opted out)', async () => {
    for (const name of [...podsOfSet('web'), ...podsOfSet('api'), ...podsOfSet('early'), ...podsOfSet('late'), 'bare']) {
      const status = JSON.parse((await pod(name)).metadata.annotations?.['podvisor.io/status'] ?? '{}') as { features?: string[]; containers?: string[] };
      expect(status, name).toMatchObject({ features: expect.arrayContaining(['lxcfs']), containers: ['app'] });
    }
    expect((await pod(podsOfSet('plain')[0]!)).metadata.annotations?.['podvisor.io/status']).toBeUndefined();
  });

  it('is off by default: a podvisor without --lxcfs-recovery reads no Lease and no Pod, and exports no recovery metric', async () => {
    const calls = await auditedCalls(info, startedAt);
    expect(calls.length, 'the admission replica talked to the API server').toBeGreaterThan(0);
    expect(calls.filter((c) => c.objectRef?.resource === 'leases' || c.objectRef?.resource === 'pods').map((c) => `${c.verb} ${c.requestURI}`)).toEqual([]);
    expect(await lease()).toBeUndefined();
    const text = await (await fetch(`http://127.0.0.1:${admission.process.opsPort}/metrics`)).text();
    expect(text).not.toContain('podvisor_lxcfs_recovery');
  });

  it('two replicas, one Lease holder; the leader recovers at once a node whose lxcfs restarted before anyone watched', async () => {
    replica1 = await startPodvisorOnCluster(info, replicaOptions('podvisor-replica-1', { flag: true }));
    await eventually('replica-1 holds the Lease', async () => ((await lease())?.holderIdentity === 'podvisor-replica-1' ? true : undefined), 30_000);
    // Level-based: node-b is new to this replica, so it is checked once; early's mounts predate node-b's lxcfs.
    const early = podsOfSet('early')[0]!;
    await eventually('early is evicted', async () => ((await terminating(early)) ? true : undefined), 30_000);
    expect(await evictionCodes(early)).toEqual([201]);
    for (const name of [...podsOfSet('late'), ...podsOfSet('web'), ...podsOfSet('api'), ...podsOfSet('plain'), 'bare']) expect(await terminating(name), name).toBe(false);

    replica2 = await startPodvisorOnCluster(info, replicaOptions('podvisor-replica-2', { config: true }));
    // replica-2 asked for the Lease as it started; one more renewal by replica-1 since, and it still holds it.
    const renewed = (await lease())?.renewTime;
    await eventually('a renewal by replica-1', async () => ((await lease())?.renewTime !== renewed ? true : undefined), 20_000);
    expect(await lease()).toMatchObject({ holderIdentity: 'podvisor-replica-1', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(await metric(replica1, 'podvisor_lxcfs_recovery_leader')).toBe(1);
    expect(await metric(replica2, 'podvisor_lxcfs_recovery_leader')).toBe(0);
    expect(replica2.process.logs.some((l) => l.msg === 'lxcfs recovery: leading')).toBe(false);
  });

  it('the API calls of the controller as the real API server answers them: field selector, 404, UID precondition 409', async () => {
    const api = kubeRecoveryApi(loadKubeConfig(replica1!.kubeconfig), recoveryOptions(SYSTEM, 'probe'));
    const onA = await api.listPodsOnNode('node-a');
    expect(onA.every((p) => p.spec?.nodeName === 'node-a')).toBe(true);
    const names = onA.map((p) => p.metadata?.name);
    expect(names).toEqual(expect.arrayContaining([lxcfsPod.get('node-a'), ...podsOfSet('web'), ...podsOfSet('api'), ...podsOfSet('plain'), 'bare']));
    expect(names).not.toContain(podsOfSet('late')[0]);

    const bare = await pod('bare');
    const wrongUid = await api.evict({ namespace: NAMESPACE, name: 'bare', uid: '00000000-0000-0000-0000-000000000000', containers: ['app'] });
    expect(wrongUid.result).toBe('gone');
    expect(wrongUid.message).toBe(
      `Operation cannot be fulfilled on Pod "bare": the UID in the precondition (00000000-0000-0000-0000-000000000000) does not match the UID in record (${bare.metadata.uid}). The object might have been deleted and then recreated`,
    );
    expect(await terminating('bare')).toBe(false);
    expect(await api.evict({ namespace: NAMESPACE, name: 'no-such-pod', uid: bare.metadata.uid, containers: ['app'] })).toEqual({ result: 'gone', message: 'pods "no-such-pod" not found' });
  });

  it('lxcfs restarts on node-a: nothing while it is not ready; then stale controlled Pods are evicted, a PDB answers 429, the bare Pod gets a Warning Event', async () => {
    const restartedAt = new Date();
    const lxcfsA = lxcfsPod.get('node-a')!;
    await reportRunning(admin, SYSTEM, lxcfsA, { startedAt: restartedAt, ready: false, restartCount: 1 });
    const sawRestart = (l: { msg?: string; [k: string]: unknown }) => l.msg === 'lxcfs restarted: running consumers have dead LXCFS mounts' && l['node'] === 'node-a';
    await replica1!.process.waitForLog(sawRestart, 15_000);
    await replica2!.process.waitForLog(sawRestart, 15_000);
    // The leader's next pass (after its next renewal) still plans nothing: the new lxcfs is not ready.
    const renewed = (await lease())?.renewTime;
    await eventually('a renewal by replica-1', async () => ((await lease())?.renewTime !== renewed ? true : undefined), 20_000);
    expect(await evictions(restartedAt.toISOString())).toEqual([]);

    await reportRunning(admin, SYSTEM, lxcfsA, { startedAt: restartedAt, ready: true, restartCount: 1 });
    const api = podsOfSet('api')[0]!;
    const [web1, web2] = podsOfSet('web') as [string, string];
    await eventually('api is evicted', async () => ((await terminating(api)) ? true : undefined), 30_000);
    await eventually('both web Pods refused by their PodDisruptionBudget', async () => ((await evictionCodes(web1)).includes(429) && (await evictionCodes(web2)).includes(429) ? true : undefined), 30_000);
    expect(await evictionCodes(api)).toEqual([201]);
    expect(await terminating(web1)).toBe(false);
    expect(await terminating(web2)).toBe(false);

    // The answer a blocked eviction gets, as the controller got it (here asked with the admin's credentials).
    const blocked = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods/${web1}/eviction`, { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: web1, namespace: NAMESPACE } });
    expect(blocked).toEqual({
      status: 429,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: "Cannot evict pod as it would violate the pod's disruption budget.",
        reason: 'TooManyRequests',
        details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] },
        code: 429,
      },
    });
    const refusal = replica1!.process.logs.find((l) => l.msg === 'lxcfs recovery: eviction refused; retrying later');
    expect(refusal).toMatchObject({ result: 'blocked', message: "Cannot evict pod as it would violate the pod's disruption budget." });

    // The bare Pod: a Warning Event on it, never an eviction.
    const uid = (await pod('bare')).metadata.uid;
    const event = await eventually('the Event on the bare Pod', async () => {
      const list = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events?fieldSelector=${encodeURIComponent('involvedObject.name=bare,reason=LxcfsRestarted')}`);
      return (list.body as { items: Record<string, unknown>[] }).items[0];
    }, 30_000);
    expect(event).toMatchObject({
      type: 'Warning',
      reason: 'LxcfsRestarted',
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'bare', namespace: NAMESPACE, uid },
      source: { component: 'podvisor', host: 'node-a' },
      reportingComponent: 'podvisor',
      reportingInstance: 'podvisor-replica-1',
      count: 1,
    });
    expect(String(event['message'])).toContain('the LXCFS mounts of containers app are dead');
    for (const name of ['bare', ...podsOfSet('plain'), ...podsOfSet('late')]) {
      expect(await terminating(name), name).toBe(false);
      expect(await evictionCodes(name), name).toEqual([]);
    }
    await eventually('replica-1 counted the evictions', async () => ((await metric(replica1!, 'podvisor_lxcfs_recovery_evictions_total', { result: 'blocked' })) >= 2 ? true : undefined), 10_000);
    expect(await metric(replica1!, 'podvisor_lxcfs_recovery_evictions_total', { result: 'evicted' })).toBe(2);
    expect(await metric(replica1!, 'podvisor_lxcfs_recovery_bare_pods')).toBe(1);
    expect(await metric(replica1!, 'podvisor_lxcfs_recovery_bare_pod_reports_total')).toBe(1);
    // node-b's earlier restart was a first sighting, not a restart seen; node-a's is one, for both replicas.
    expect(await metric(replica1!, 'podvisor_lxcfs_restarts_total')).toBe(1);
    expect(await metric(replica2!, 'podvisor_lxcfs_restarts_total')).toBe(1);
    for (const result of ['evicted', 'blocked', 'gone', 'error']) expect(await metric(replica2!, 'podvisor_lxcfs_recovery_evictions_total', { result })).toBe(0);
  });

  it('once the PodDisruptionBudget allows it, the retry evicts; the ReplicaSet controller replaces the Pods', async () => {
    const relaxed = await apiRequest(admin, 'PATCH', `/apis/policy/v1/namespaces/${NAMESPACE}/poddisruptionbudgets/web`, { spec: { minAvailable: 0 } }, 'application/merge-patch+json');
    expect(relaxed.status).toBe(200);
    const [web1, web2] = podsOfSet('web') as [string, string];
    // Refused evictions are retried 30 s later (evictionRetryMs): the wait is one retry, plus one if it came too early.
    await eventually('both web Pods evicted', async () => ((await terminating(web1)) && (await terminating(web2)) ? true : undefined), 75_000, 1_000);
    for (const name of [web1, web2]) {
      const codes = await evictionCodes(name);
      expect(codes[0], name).toBe(429);
      expect(codes.at(-1), name).toBe(201);
      expect(new Set(codes), name).toEqual(new Set([429, 201]));
    }
    const replacements = await eventually('two new web Pods', async () => {
      const list = (await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/pods?labelSelector=app%3Dweb`)).body as { items: PodMeta[] };
      const fresh = list.items.filter((p) => p.metadata.deletionTimestamp === undefined && ![web1, web2].includes(p.metadata.name));
      return fresh.length === 2 ? fresh : undefined;
    }, 30_000);
    for (const p of replacements) expect(p.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'ReplicaSet', controller: true });
    expect(await metric(replica1!, 'podvisor_lxcfs_recovery_evictions_total', { result: 'evicted' })).toBe(4);
  });

  it('evictions are paced by the token bucket (shipped 10 a minute, burst 2): any three are 6 s apart or more', async () => {
    const times = (await evictions()).map((e) => Date.parse(e.requestReceivedTimestamp));
    expect(times.length).toBeGreaterThanOrEqual(6);
    // At most 2 + T/6 s calls in any window T; a little less allowed for the requests' transit.
    for (let i = 0; i + 2 < times.length; i++) expect(times[i + 2]! - times[i]!, `calls ${i}..${i + 2}`).toBeGreaterThanOrEqual(5_500);
  });

  it('the leader stops: it releases the Lease, and the standby takes over at once, not after leaseDurationSeconds', async () => {
    const stopped = Date.now();
    await replica1!.stop();
    replica1 = undefined;
    expect((await lease())?.holderIdentity).not.toBe('podvisor-replica-1');
    await eventually('replica-2 holds the Lease', async () => ((await lease())?.holderIdentity === 'podvisor-replica-2' ? true : undefined), 15_000, 100);
    expect(Date.now() - stopped).toBeLessThan(15_000);
    expect(await lease()).toMatchObject({ holderIdentity: 'podvisor-replica-2', leaseTransitions: 1 });
    await eventually('replica-2 reports leading', async () => ((await metric(replica2!, 'podvisor_lxcfs_recovery_leader')) === 1 ? true : undefined), 10_000);
  });

  it('every call of the replicas was allowed by the shipped RBAC: the evictions, the Pods of a node, the Lease, the Events', async () => {
    const calls = await auditedCalls(info, startedAt);
    expect(calls.filter((c) => c.responseStatus?.code === 403).map((c) => `${c.verb} ${c.requestURI}`)).toEqual([]);
    const grants = await grantedBy(info, 'deploy/overlays/self-managed');
    const used = [...new Set(calls.map((c) => neededFor(c, grants)))];
    expect(used.filter((p) => !grants.has(p))).toEqual([]);
    expect(used).toEqual(
      expect.arrayContaining(['create core/pods/eviction', 'list core/pods', 'list core/pods in podvisor-system', 'watch core/pods in podvisor-system', 'create coordination.k8s.io/leases in podvisor-system', 'get coordination.k8s.io/leases in podvisor-system', 'update coordination.k8s.io/leases in podvisor-system', 'create core/events']),
    );
  });
});
