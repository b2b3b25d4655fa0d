// What the policy judges, and every way round it that a workload owner, a namespace admin or a requester controls:
// the exclude label, namespace labels, mutation's excludedNamespaces, ephemeral containers, Pod UPDATE, templates
// created by an exempt user. Each case is judged at the level where the bypass lived (the registration objects, the
// judging function, the mutation pipeline).
import { describe, expect, it } from 'vitest';
import type { AdmissionRequest, KubeObject } from '../src/admission/types.js';
import { reviewMutation } from '../src/admission/mutate-review.js';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration, VALIDATING_RULES } from '../src/k8s/webhook-configurations.js';
import { JUDGED_REQUESTS } from '../src/policy/judged-requests.js';
import { exemptNamespaces } from '../src/policy/scope.js';
import { reviewValidation } from '../src/policy/validate-review.js';
import { WORKLOAD_KINDS } from '../src/workload/kinds.js';
import { fixtureObject, policyConfig, requestFor } from './support/policy.js';

const LOCKED = { default: { name: 'locked', enforce: { level: 'baseline' }, privileged: 'deny' } };
const config = policyConfig(LOCKED);

function privilegedPod(namespace = 'web', labels: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace, labels },
    spec: { containers: [{ name: 'c', image: 'c', securityContext: { privileged: true } }] },
  };
}
const denied = (request: AdmissionRequest, env = { config }) => reviewValidation(request, env).response.allowed === false;

describe('validation is scoped by the policy alone', () => {
  const webhook = validatingWebhookConfiguration({ config, caBundle: undefined, validating: true }).webhooks![0]!;

  it('registration: only the exempt namespaces, by their immutable name label; no object selector', () => {
    expect(webhook.namespaceSelector).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'podvisor-system'] }] });
    expect(webhook.objectSelector).toBeUndefined();
    expect(exemptNamespaces(config)).toEqual(['kube-system', 'podvisor-system']);
    // kube-public is outside mutation's scope, not the policy's.
    expect(config.excludedNamespaces).toContain('kube-public');
    expect(JSON.stringify(webhook)).not.toContain('kube-public');
    expect(JSON.stringify(webhook)).not.toContain('podvisor.io/exclude');
    // Mutation keeps its own opt-outs.
    const mutating = mutatingWebhookConfiguration({ config, caBundle: undefined, validating: true }).webhooks![0]!;
    expect(mutating.objectSelector).toEqual({ matchExpressions: [{ key: 'podvisor.io/exclude', operator: 'NotIn', values: ['true'] }] });
  });

  it('(a) a Pod labelled podvisor.io/exclude=true is judged', () => {
    expect(denied(requestFor(privilegedPod('web', { 'podvisor.io/exclude': 'true' })))).toBe(true);
  });

  it('(b) a namespace labelled podvisor.io/exclude=true is judged', () => {
    const labels = (ns: string) => (ns === 'web' ? { 'podvisor.io/exclude': 'true' } : {});
    expect(denied(requestFor(privilegedPod()), { config, namespaceLabels: labels } as never)).toBe(true);
  });

  it('(c) kube-public and the other excludedNamespaces are judged; the exempt namespaces are not', () => {
    expect(denied(requestFor(privilegedPod('kube-public')))).toBe(true);
    expect(denied(requestFor(privilegedPod('kube-node-lease')))).toBe(true);
    const excluded = policyConfig(LOCKED, { excludedNamespaces: ['legacy'] });
    expect(denied(requestFor(privilegedPod('legacy')), { config: excluded })).toBe(true);
    expect(denied(requestFor(privilegedPod('kube-system')))).toBe(false);
    expect(denied(requestFor(privilegedPod('podvisor-system')))).toBe(false);
  });

  it('(d) a privileged ephemeral container added to a labelled Pod is judged', () => {
    const old: KubeObject = { ...privilegedPod('web', { 'podvisor.io/exclude': 'true' }), spec: { containers: [{ name: 'c', image: 'c' }] } };
    const debugged = structuredClone(old) as KubeObject & { spec: { ephemeralContainers?: unknown[] } };
    debugged.spec.ephemeralContainers = [{ name: 'debugger', image: 'busybox', securityContext: { privileged: true } }];
    const response = reviewValidation(requestFor(debugged, { operation: 'UPDATE', oldObject: old, subResource: 'ephemeralcontainers' }), { config }).response;
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain('spec.ephemeralContainers[0].securityContext.privileged: forbidden by policy locked');
  });

  it('the early refusal in /mutate judges the same way: an excluded Pod is not injected but still refused', () => {
    const result = reviewMutation(requestFor(privilegedPod('web', { 'podvisor.io/exclude': 'true' })), { config });
    expect(result.outcome.skip).toBe('excluded_label');
    expect(result.response.allowed).toBe(false);
  });
});

describe('every request that can add privilege is registered for validation', () => {
  // Written out here, not derived from JUDGED_REQUESTS: removing a row there must fail this test.
  const expected: [string, string, string][] = [
    ['', 'pods', 'CREATE'],
    ['', 'pods', 'UPDATE'],
    ['', 'pods/ephemeralcontainers', 'UPDATE'],
    ...WORKLOAD_KINDS.filter((k) => k.templatePath.length > 0).flatMap((k): [string, string, string][] => [
      [k.group, k.resource, 'CREATE'],
      [k.group, k.resource, 'UPDATE'],
    ]),
  ];
  const registered = new Set(VALIDATING_RULES.flatMap((r) => r.resources.flatMap((res) => (r.operations ?? []).map((op) => `${r.apiGroups![0]}|${res}|${op}`))));

  it.each(expected)('%s %s %s', (group, resource, operation) => {
    expect(registered.has(`${group}|${resource}|${operation}`)).toBe(true);
  });

  it('and nothing else: every registered request is one the policy judges, with a reason', () => {
    expect(registered.size).toBe(expected.length);
    for (const r of JUDGED_REQUESTS) expect(r.reason.length).toBeGreaterThan(20);
  });
});

describe('exemptions do not leak through templates', () => {
  const exemptCi = policyConfig({ ...LOCKED, exemptions: { namespaces: ['kube-system'], usernames: ['ci-bot'], groups: ['deployers'] } });
  const deployment = (annotations: Record<string, string>, securityContext: object = {}): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd', namespace: 'web' },
    spec: {
      selector: { matchLabels: { app: 'd' } },
      template: { metadata: { labels: { app: 'd' }, annotations }, spec: { containers: [{ name: 'c', image: 'c', securityContext }] } },
    },
  });

  it('an exempt user\'s Pod is exempt; its Deployment is judged as the replicaset controller that creates the Pods', () => {
    expect(reviewValidation(requestFor(privilegedPod(), { username: 'ci-bot' }), { config: exemptCi }).outcome.exemption).toEqual({ by: 'username', value: 'ci-bot' });
    const byUser = reviewValidation(requestFor(deployment({}, { privileged: true }), { username: 'ci-bot' }), { config: exemptCi });
    expect(byUser.outcome.exemption).toBeUndefined();
    expect(byUser.response.allowed).toBe(false);
    const byGroup = reviewValidation(requestFor(deployment({}, { privileged: true }), { username: 'x', groups: ['deployers'] }), { config: exemptCi });
    expect(byGroup.response.allowed).toBe(false);
  });

  it('exempting the controller exempts its templates too, the same as its Pods', () => {
    const controllers = policyConfig({ ...LOCKED, exemptions: { usernames: ['system:serviceaccount:kube-system:replicaset-controller'] } });
    expect(reviewValidation(requestFor(deployment({}, { privileged: true })), { config: controllers }).outcome.exemption).toEqual({
      by: 'username',
      value: 'system:serviceaccount:kube-system:replicaset-controller',
    });
  });

  it('podvisor does not mutate an exempt user\'s template into what the namespace forbids', () => {
    // FUSE adds SYS_ADMIN, which baseline forbids: the escalation guard refuses it whoever asked.
    const result = reviewMutation(requestFor(deployment({ 'podvisor.io/fuse': 'true' }), { username: 'ci-bot' }), { config: exemptCi });
    expect(result.response.allowed).toBe(false);
    expect(result.response.status?.message).toContain('podvisor.io/fuse: not applied, policy locked does not allow what it adds');
    // An exempt user's Pod gets it: the Pod itself is exempt.
    const pod = { ...privilegedPod(), metadata: { name: 'p', namespace: 'web', annotations: { 'podvisor.io/fuse': 'true' } }, spec: { containers: [{ name: 'c', image: 'c' }] } };
    expect(reviewMutation(requestFor(pod, { username: 'ci-bot' }), { config: exemptCi }).outcome.injected).toEqual(['fuse']);
  });

  it('the vendor agent fixture as a DaemonSet from an exempt user is judged as the daemon-set controller', () => {
    const agent = fixtureObject('11-daemonset-agent-privileged.yaml');
    expect(reviewValidation(requestFor(agent, { username: 'ci-bot' }), { config: exemptCi }).response.allowed).toBe(false);
  });
});
