// podvisor under its own ServiceAccount, bound only by the shipped RBAC (deploy/overlays/self-managed, as rendered by
// kustomize and applied in the global setup): every call it makes is allowed, and every permission the RBAC grants is
// one podvisor uses. The kube-apiserver's audit log (test/support/control-plane.ts) is the record of its calls.
import { readFile } from 'node:fs/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { apiRequest, loadKubeConfig, runKubectl } from '../support/control-plane.js';
import { createNamespace, deleteNamespace, eventually } from '../support/cluster-objects.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const USER = 'system:serviceaccount:podvisor-system:podvisor';
const NAMESPACE = 'e2e-rbac';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;
let startedAt: string;

interface AuditEvent {
  user: { username: string };
  verb: string;
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stage: string;
}

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  // From nothing, as on a first install: podvisor creates the configurations and the TLS Secret itself (earlier files'
  // podvisor left theirs).
  for (const path of [
    '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor',
    '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor',
    '/api/v1/namespaces/podvisor-system/secrets/podvisor-tls',
    '/apis/coordination.k8s.io/v1/namespaces/podvisor-system/leases/podvisor-recovery',
  ]) {
    await apiRequest(admin, 'DELETE', path);
  }
  startedAt = new Date().toISOString();
  // --lxcfs-recovery: the recovery controller's calls (lxcfs pods, its Lease) are part of what the RBAC grants.
  podvisor = await startPodvisorOnCluster(info, { keepReviews: true, config: { certificates: { checkIntervalSeconds: 1 } }, extraArgs: ['--lxcfs-recovery'] });
});
afterAll(async () => {
  await podvisor?.stop();
  await deleteNamespace(admin, NAMESPACE);
});

async function podvisorCalls(): Promise<AuditEvent[]> {
  const text = await readFile(info.auditLog, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent)
    .filter((e) => e.user.username === USER && e.requestReceivedTimestamp >= startedAt && e.objectRef?.resource !== undefined);
}

function permission(group: string, resource: string, verb: string, namespace: string | undefined): string {
  return `${verb} ${group === '' ? 'core' : group}/${resource}${namespace === undefined ? '' : ` in ${namespace}`}`;
}

/** What the shipped RBAC grants podvisor's ServiceAccount, one line per verb and resource (Roles: with their namespace). */
async function granted(): Promise<Set<string>> {
  const rendered = await runKubectl(info.adminKubeconfig, ['kustomize', 'deploy/overlays/self-managed']);
  expect(rendered.code, rendered.stderr).toBe(0);
  const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[]; roleRef?: { kind: string; name: string }; subjects?: { kind: string; name: string; namespace?: string }[] });
  const bound = docs.filter((d) => (d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding') && d.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === 'podvisor' && s.namespace === 'podvisor-system'));
  const out = new Set<string>();
  for (const binding of bound) {
    const role = docs.find((d) => d.kind === binding.roleRef!.kind && d.metadata.name === binding.roleRef!.name && (d.kind === 'ClusterRole' || d.metadata.namespace === binding.metadata.namespace))!;
    const namespace = binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined;
    for (const rule of role.rules ?? []) for (const group of rule.apiGroups) for (const resource of rule.resources) for (const verb of rule.verbs) out.add(permission(group, resource, verb, namespace));
  }
  return out;
}

/** The permission an audited call needed: a namespaced Role line when a Role grants it there, else the cluster line. */
function needed(event: AuditEvent, grants: Set<string>): string {
  const ref = event.objectRef!;
  const resource = ref.subresource === undefined ? ref.resource! : `${ref.resource}/${ref.subresource}`;
  const scoped = permission(ref.apiGroup ?? '', resource, event.verb, ref.namespace);
  return ref.namespace !== undefined && grants.has(scoped) ? scoped : permission(ref.apiGroup ?? '', resource, event.verb, undefined);
}

/**
 * Granted for what this run does not make happen, each with its reason; anything else granted and not used fails.
 * - the lxcfs recovery's eviction of the pods on a node whose lxcfs restarted (no lxcfs restarts here);
 * - `update` of the TLS Secret: a renewal or CA rotation step (none is due with fresh certificates).
 */
const NOT_EXERCISED = new Set(['create core/pods/eviction', 'list core/pods', 'update core/secrets in podvisor-system']);

describe('podvisor with its own ServiceAccount under the shipped RBAC', () => {
  it('every call is allowed, and every granted permission is used', async () => {
    // Exercise everything podvisor does: admission with an Event, registration passes, the TLS Secret, the
    // namespace cache, the recovery Lease.
    const pod = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'rbac-probe', annotations: { 'podvisor.io/lxcfs': 'true' } },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
    });
    expect(pod.status).toBe(201);
    await eventually('the Injected Event', async () => {
      const events = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events`);
      return ((events.body as { items: { reason: string; involvedObject: { name: string } }[] }).items ?? []).some((e) => e.reason === 'Injected' && e.involvedObject.name === 'rbac-probe') ? true : undefined;
    }, 15_000);
    await eventually('the recovery Lease', async () => ((await apiRequest(admin, 'GET', '/apis/coordination.k8s.io/v1/namespaces/podvisor-system/leases/podvisor-recovery')).status === 200 ? true : undefined), 30_000);
    // Someone edits both configurations: podvisor puts them back (update).
    for (const path of ['/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor']) {
      const live = (await apiRequest(admin, 'GET', path)).body as { webhooks: { timeoutSeconds: number }[] };
      live.webhooks[0]!.timeoutSeconds = 29;
      expect((await apiRequest(admin, 'PUT', path, live)).status).toBe(200);
    }
    await eventually('both configurations repaired', async () => ((await podvisorCalls()).filter((c) => c.verb === 'update' && c.objectRef?.resource?.endsWith('webhookconfigurations')).length >= 2 ? true : undefined), 15_000, 500);
    // The Lease is renewed (update) every few seconds; registration and certificate passes run every second.
    await eventually('a Lease renewal', async () => ((await podvisorCalls()).some((c) => c.verb === 'update' && c.objectRef?.resource === 'leases') ? true : undefined), 30_000, 500);

    const calls = await podvisorCalls();
    const grants = await granted();
    const refused = calls.filter((c) => c.responseStatus?.code === 403).map((c) => `${c.verb} ${JSON.stringify(c.objectRef)}`);
    expect(refused, 'calls refused by RBAC').toEqual([]);
    expect(podvisor.process.logs.filter((l) => /forbidden/i.test(JSON.stringify(l)))).toEqual([]);

    const used = new Set(calls.map((c) => needed(c, grants)));
    expect([...used].filter((p) => !grants.has(p)).sort(), 'used but not granted (a 403 would show it)').toEqual([]);
    const unused = [...grants].filter((p) => !used.has(p) && !NOT_EXERCISED.has(p)).sort();
    expect(unused, `granted but never used; used: ${JSON.stringify([...used].sort())}`).toEqual([]);
  });
});
