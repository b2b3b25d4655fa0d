// The policy through the real kube-apiserver, with podvisor's own registration: every way round it that a workload
// owner, a namespace admin or an exempt requester controls is tried against the apiserver's admission chain. Each
// case is one that a configuration derived from the mutation settings let through.
import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { apiRequest, loadKubeConfig, runKubectl } from '../support/control-plane.js';
import { createNamespace, deleteNamespace } from '../support/cluster-objects.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const PLAIN = 'e2e-policy-plain';
const EXCLUDED = 'e2e-policy-excluded';
const EXEMPT_USER = 'ci-bot';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;

// The locked-down example's default (baseline enforced, privileged denied), with a CI user exempt by username.
const POLICY = {
  workloads: 'enforce',
  exemptions: { namespaces: ['kube-system'], usernames: [EXEMPT_USER] },
  default: { name: 'locked-down', enforce: { level: 'baseline', version: 'latest' }, privileged: 'deny' },
};

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, PLAIN);
  await createNamespace(admin, EXCLUDED, { 'podvisor.io/exclude': 'true' });
  // The exempt user may create Pods and Deployments in PLAIN, nothing more.
  const role = await apiRequest(admin, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${PLAIN}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'ci-bot' },
    rules: [
      { apiGroups: [''], resources: ['pods'], verbs: ['create'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create'] },
    ],
  });
  expect(role.status, JSON.stringify(role.body)).toBe(201);
  const binding = await apiRequest(admin, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${PLAIN}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'ci-bot' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'ci-bot' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: EXEMPT_USER }],
  });
  expect(binding.status, JSON.stringify(binding.body)).toBe(201);
  podvisor = await startPodvisorOnCluster(info, { config: { policy: POLICY } });
});
afterAll(async () => {
  await podvisor?.stop();
  for (const ns of [PLAIN, EXCLUDED]) await deleteNamespace(admin, ns);
});

let counter = 0;
function pod(options: { privileged?: boolean; labels?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p-${++counter}`, labels: options.labels ?? {} },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1', ...(options.privileged === true ? { securityContext: { privileged: true } } : {}) }] },
  };
}

async function create(namespace: string, object: Record<string, unknown>, query = ''): Promise<{ status: number; message: string }> {
  const answer = await apiRequest(admin, 'POST', `/api/v1/namespaces/${namespace}/pods${query}`, object);
  return { status: answer.status, message: String((answer.body as { message?: string }).message ?? '') };
}

const DENIED = 'spec.containers[0].securityContext.privileged: forbidden by policy locked-down';

describe('the policy holds through the kube-apiserver', () => {
  it('a privileged Pod in a plain namespace is denied by validate.podvisor.io, an unprivileged one admitted', async () => {
    const denied = await create(PLAIN, pod({ privileged: true }));
    expect(denied.status).toBe(403);
    expect(denied.message).toContain('admission webhook "validate.podvisor.io" denied the request');
    expect(denied.message).toContain(DENIED);
    expect((await create(PLAIN, pod())).status).toBe(201);
  });

  it('(a) the podvisor.io/exclude label on the Pod does not take it out of the policy', async () => {
    const answer = await create(PLAIN, pod({ privileged: true, labels: { 'podvisor.io/exclude': 'true' } }));
    expect(answer.status).toBe(403);
    expect(answer.message).toContain(DENIED);
  });

  it('(b) the podvisor.io/exclude label on the namespace does not either', async () => {
    const answer = await create(EXCLUDED, pod({ privileged: true }));
    expect(answer.status).toBe(403);
    expect(answer.message).toContain(DENIED);
  });

  it('(c) kube-public (excluded from mutation, exempt nowhere in the policy) is judged; kube-system is exempt', async () => {
    const publicPod = await create('kube-public', pod({ privileged: true }), '?dryRun=All');
    expect(publicPod.status).toBe(403);
    expect(publicPod.message).toContain(DENIED);
    expect((await create('kube-system', pod({ privileged: true }), '?dryRun=All')).status).toBe(201);
  });

  it('(d) a privileged ephemeral container added to a labelled Pod is denied', async () => {
    const target = pod({ labels: { 'podvisor.io/exclude': 'true' } });
    expect((await create(PLAIN, target)).status).toBe(201);
    const name = (target['metadata'] as { name: string }).name;
    // What `kubectl debug --profile=sysadmin` sends: a strategic merge patch of the ephemeralcontainers subresource.
    const answer = await apiRequest(
      admin,
      'PATCH',
      `/api/v1/namespaces/${PLAIN}/pods/${name}/ephemeralcontainers`,
      { spec: { ephemeralContainers: [{ name: 'debugger', image: 'registry.example/busybox:1', securityContext: { privileged: true } }] } },
      'application/strategic-merge-patch+json',
    );
    expect(answer.status).toBe(403);
    expect(String((answer.body as { message?: string }).message)).toContain('spec.ephemeralContainers[0].securityContext.privileged: forbidden by policy locked-down');
    // An unprivileged debug container is admitted: the policy judges what the update adds, not the whole pod.
    const plain = await apiRequest(
      admin,
      'PATCH',
      `/api/v1/namespaces/${PLAIN}/pods/${name}/ephemeralcontainers`,
      { spec: { ephemeralContainers: [{ name: 'shell', image: 'registry.example/busybox:1' }] } },
      'application/strategic-merge-patch+json',
    );
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);
  });

  it('an exempt user\'s privileged Pod is admitted, its privileged Deployment is not (its Pods would be denied)', async () => {
    const asCi = (object: Record<string, unknown>) => runKubectl(info.adminKubeconfig, ['--as', EXEMPT_USER, '-n', PLAIN, 'create', '-f', '-', '-o', 'name'], { input: stringify(object) });
    const ownPod = await asCi(pod({ privileged: true }));
    expect(ownPod.stderr).toBe('');
    expect(ownPod.code).toBe(0);
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'privileged-by-ci' },
      spec: {
        selector: { matchLabels: { app: 'privileged-by-ci' } },
        template: { metadata: { labels: { app: 'privileged-by-ci' } }, spec: (pod({ privileged: true })['spec'] as object) },
      },
    };
    const denied = await asCi(deployment);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('spec.template.spec.containers[0].securityContext.privileged: forbidden by policy locked-down');
  });

  it('server-side dry runs are judged too (sideEffects NoneOnDryRun), and write no Event', async () => {
    const answer = await create(PLAIN, pod({ privileged: true }), '?dryRun=All');
    expect(answer.status).toBe(403);
    expect(answer.message).toContain(DENIED);
  });

  it('the registered validating configuration is the one podvisor computes: Fail, policy-only scope, no objectSelector', async () => {
    const answer = await apiRequest(admin, 'GET', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor');
    const webhook = (answer.body as { webhooks: Record<string, unknown>[] }).webhooks[0]!;
    expect(webhook['failurePolicy']).toBe('Fail');
    expect(webhook['sideEffects']).toBe('NoneOnDryRun');
    expect(webhook['namespaceSelector']).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'podvisor-system'] }] });
    // The apiserver defaults an absent objectSelector to the empty selector (everything).
    expect(webhook['objectSelector']).toEqual({});
  });
});
