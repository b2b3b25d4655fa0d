import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../src/admission/types.js';
import { AUDIT_ANNOTATION } from '../src/policy/answer.js';
import { reviewValidation } from '../src/policy/validate-review.js';
import { FORBID, fixtureObject, fixtureRequest, mutated, policyConfig, requestFor } from './support/policy.js';

const BASELINE = { default: { name: 'apps', enforce: { level: 'baseline' } } };

function podObject(spec: Record<string, unknown>, namespace = 'web', metadata: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace, ...metadata }, spec: { containers: [{ name: 'app', image: 'app:1' }], ...spec } };
}

const privilegedPod = () => podObject({ containers: [{ name: 'app', image: 'app:1', securityContext: { privileged: true } }] });

describe('/validate answers', () => {
  it('denies with 403 and one line per violation, `<field>: forbidden by policy <name>`, naming the container and podvisor.io/agent', () => {
    const { response } = reviewValidation(requestFor(privilegedPod()), { config: policyConfig(FORBID) });
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(403);
    const lines = response.status!.message!.split('\n');
    expect(lines[0]).toMatch(/^spec\.containers\[0\]\.securityContext\.privileged: forbidden by policy forbid-privileged\b/);
    expect(lines[1]).toContain('container "app" is privileged');
    expect(lines[1]).toContain('podvisor.io/agent');
    expect(response.uid).toBe('7f1c1b0e-0000-4000-8000-000000000001');
    expect(response.patch).toBeUndefined();
  });

  it('lists every violation', () => {
    const pod = podObject({ hostPID: true, volumes: [{ name: 'h', hostPath: { path: '/' } }], containers: [{ name: 'app', image: 'a', securityContext: { capabilities: { add: ['NET_ADMIN', 'CHOWN'] } } }] });
    const { response } = reviewValidation(requestFor(pod), { config: policyConfig(BASELINE) });
    expect(response.status!.message!.split('\n')).toEqual([
      'spec.hostPID: forbidden by policy apps (hostNamespaces)',
      'spec.containers[0].securityContext.capabilities.add[0]: forbidden by policy apps (capabilities_baseline: NET_ADMIN)',
      'spec.volumes[0].hostPath: forbidden by policy apps (hostPathVolumes: /)',
    ]);
  });

  it('the default config denies nothing', () => {
    const { response, outcome } = reviewValidation(requestFor(fixtureObject('11-daemonset-agent-privileged.yaml')), { config: policyConfig({}) });
    expect(response).toEqual({ uid: expect.any(String), allowed: true });
    expect(outcome.decisions).toEqual([{ policy: 'cluster-default', rule: 'none', mode: 'enforce', decision: 'allowed' }]);
  });
});

describe('modes: enforce, warn, audit, each with its own level and version', () => {
  const pod = podObject({ containers: [{ name: 'app', image: 'a', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } }] });
  it.each([
    ['enforce baseline', { enforce: { level: 'baseline' } }, { allowed: false, warnings: 0, audit: false }],
    ['warn baseline', { warn: { level: 'baseline' } }, { allowed: true, warnings: 1, audit: false }],
    ['audit baseline', { audit: { level: 'baseline' } }, { allowed: true, warnings: 0, audit: true }],
    ['warn restricted, enforce privileged', { warn: { level: 'restricted' } }, { allowed: true, warnings: 5, audit: false }],
    ['all three', { enforce: { level: 'baseline' }, warn: { level: 'baseline' }, audit: { level: 'restricted' } }, { allowed: false, warnings: 1, audit: true }],
  ])('%s', (_name, modes, expected) => {
    const { response } = reviewValidation(requestFor(pod), { config: policyConfig({ default: { name: 'm', ...modes } }) });
    expect(response.allowed).toBe(expected.allowed);
    expect(response.warnings ?? []).toHaveLength(expected.warnings);
    for (const w of response.warnings ?? []) expect(w.length).toBeLessThanOrEqual(120);
    expect(response.auditAnnotations?.[AUDIT_ANNOTATION] !== undefined).toBe(expected.audit);
    // The apiserver stores `<webhook name>/<key>` and drops it unless that is a qualified name with one "/".
    for (const key of Object.keys(response.auditAnnotations ?? {})) {
      expect(`validate.podvisor.io/${key}`).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
    }
  });

  it('the pinned version decides: a probe host passes v1.33 and fails v1.34', () => {
    const probe = podObject({ containers: [{ name: 'app', image: 'a', readinessProbe: { httpGet: { port: 80, host: '169.254.169.254' } } }] });
    const at = (version: string) => reviewValidation(requestFor(probe), { config: policyConfig({ default: { enforce: { level: 'baseline', version } } }) }).response.allowed;
    expect(at('v1.33')).toBe(true);
    expect(at('v1.34')).toBe(false);
    expect(at('latest')).toBe(false);
  });

  it('warnings are at most 120 characters even for long paths', () => {
    const cron = fixtureObject('10-cronjob-backup.yaml');
    const spec = (cron as { spec: { jobTemplate: { spec: { template: { spec: { containers: { securityContext?: unknown }[] } } } } } }).spec.jobTemplate.spec.template.spec;
    spec.containers[0]!.securityContext = { capabilities: { add: ['SYS_ADMIN', 'NET_ADMIN', 'SYS_PTRACE'] } };
    const { response } = reviewValidation(requestFor(cron), { config: policyConfig({ default: { name: 'a-rather-long-policy-name-for-this-namespace', warn: { level: 'restricted' } } }) });
    expect(response.warnings!.length).toBeGreaterThan(3);
    for (const w of response.warnings!) expect(w.length).toBeLessThanOrEqual(120);
  });
});

describe('exemptions', () => {
  it.each([
    ['namespace', { exemptions: { namespaces: ['web'] } }, {}],
    ['username', { exemptions: { usernames: ['oidc:alice@example.com'] } }, {}],
    ['group', { exemptions: { groups: ['sre'] } }, { groups: ['sre', 'system:authenticated'] }],
  ])('by %s', (_by, exemptions, user) => {
    const config = policyConfig({ ...FORBID, ...exemptions });
    const { response, outcome } = reviewValidation(requestFor(privilegedPod(), user), { config });
    expect(response.allowed).toBe(true);
    expect(outcome.decisions).toEqual([{ policy: '-', rule: 'none', mode: 'exempt', decision: 'exempt' }]);
    // Not exempt without it.
    expect(reviewValidation(requestFor(privilegedPod()), { config: policyConfig(FORBID) }).response.allowed).toBe(false);
  });
});

describe('fixtures under a forbid policy', () => {
  const config = policyConfig(FORBID);

  it('11: the privileged agent is denied as written, admitted after podvisor.io/agent', () => {
    const agent = fixtureObject('11-daemonset-agent-privileged.yaml');
    const denied = reviewValidation(requestFor(agent), { config }).response;
    expect(denied.allowed).toBe(false);
    expect(denied.status!.message).toContain('spec.template.spec.containers[0].securityContext.privileged: forbidden by policy forbid-privileged');
    expect(denied.status!.message).toContain('container "agent" is privileged');
    const fixed = mutated(agent, config);
    expect(reviewValidation(requestFor(fixed), { config }).response.allowed).toBe(true);
  });

  it('11 under the monitoring example: the mutated agent passes baseline thanks to the allowances once its host root is really read-only', async () => {
    const { loadConfig } = await import('../src/config/load.js');
    const monitoring = await loadConfig('examples/policies/monitoring.yaml');
    const agent = fixtureObject('11-daemonset-agent-privileged.yaml');
    expect(reviewValidation(requestFor(agent), { config: monitoring }).response.allowed).toBe(false);
    // As the vendor wrote it, host `/` is mounted readOnly without recursiveReadOnly: /proc/sys and /sys/fs/cgroup
    // below it would be writable, so the read-only allowance of `/` does not cover it.
    const asWritten = reviewValidation(requestFor(mutated(agent, monitoring)), { config: monitoring }).response;
    expect(asWritten.allowed).toBe(false);
    expect(String(asWritten.status?.message).split('\n')).toEqual([
      'spec.template.spec.volumes[0].hostPath: forbidden by policy monitoring (hostPathVolumes: /)',
      'hostPath /: read-only needs type File, or Directory with readOnly + recursiveReadOnly: Enabled (>= 1.31)',
    ]);
    // Fixture 17 is the same agent with type Directory and recursiveReadOnly: Enabled on the host root.
    const fixed = mutated(fixtureObject('17-daemonset-agent-readonly-root.yaml'), monitoring);
    const { response } = reviewValidation(requestFor(fixed), { config: monitoring });
    expect(response.allowed).toBe(true);
    expect(response.warnings).toBeUndefined();
    // The same agent in another namespace has no allowance.
    (fixed['metadata'] as { namespace: string }).namespace = 'default';
    expect(reviewValidation(requestFor(fixed), { config: monitoring }).response.allowed).toBe(false);
  });

  it('12: the hand-tuned unprivileged agent is admitted', () => {
    expect(reviewValidation(requestFor(fixtureObject('12-daemonset-agent-unprivileged.yaml')), { config }).response.allowed).toBe(true);
  });

  it('15: the lxcfs DaemonSet (privileged, podvisor-system) is never denied, even by a locked-down policy', () => {
    const strict = policyConfig({ ...FORBID, default: { ...FORBID.default, enforce: { level: 'restricted' } }, exemptions: { namespaces: [] } });
    const { response, outcome } = reviewValidation(requestFor(fixtureObject('15-lxcfs-daemonset.yaml')), { config: strict });
    expect(response.allowed).toBe(true);
    expect(outcome.exemption).toEqual({ by: 'namespace', value: 'podvisor-system' });
  });

  it('16: a mirror pod is never denied', () => {
    const mirror = fixtureObject('16-pod-mirror.yaml');
    ((mirror['spec'] as { containers: { securityContext?: unknown }[] }).containers[0]!).securityContext = { privileged: true };
    const { response, outcome } = reviewValidation(requestFor(mirror, { username: 'system:node:edge-node-a7' }), { config: policyConfig({ ...FORBID, default: { ...FORBID.default, enforce: { level: 'restricted' } } }) });
    expect(response.allowed).toBe(true);
    expect(outcome.skip).toBe('mirror_pod');
  });

  it('16: the mirror annotation from anyone but a node is no exemption (any Pod creator can set it)', () => {
    const fake = fixtureObject('16-pod-mirror.yaml');
    ((fake['spec'] as { containers: { securityContext?: unknown }[] }).containers[0]!).securityContext = { privileged: true };
    const { response, outcome } = reviewValidation(requestFor(fake, { username: 'alice', groups: ['system:authenticated'] }), { config: policyConfig(FORBID) });
    expect(outcome.skip).toBeUndefined();
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toContain('spec.containers[0].securityContext.privileged: forbidden by policy');
  });
});

describe('ephemeral containers (pods/ephemeralcontainers UPDATE)', () => {
  const review = () => structuredClone(fixtureRequest('review-01-pod-ephemeralcontainers.json'));
  const debugContainer = (request: ReturnType<typeof review>) =>
    (request.object as { spec: { ephemeralContainers: { securityContext?: unknown }[] } }).spec.ephemeralContainers[0]!;

  it('the fixture (SYS_PTRACE debug container) passes a forbid policy', () => {
    expect(reviewValidation(review(), { config: policyConfig(FORBID) }).response.allowed).toBe(true);
  });

  it('kubectl debug --profile=sysadmin (privileged) is denied', () => {
    const request = review();
    debugContainer(request).securityContext = { privileged: true };
    const { response } = reviewValidation(request, { config: policyConfig(FORBID) });
    expect(response.allowed).toBe(false);
    expect(response.status!.message).toContain('spec.ephemeralContainers[0].securityContext.privileged: forbidden by policy forbid-privileged');
  });

  it('under baseline, SYS_PTRACE is denied; the running pod\'s own LXCFS hostPath files are not held against it', () => {
    const { response } = reviewValidation(review(), { config: policyConfig(BASELINE) });
    expect(response.allowed).toBe(false);
    expect(response.status!.message!.split('\n')).toEqual(['spec.ephemeralContainers[0].securityContext.capabilities.add[0]: forbidden by policy apps (capabilities_baseline: SYS_PTRACE)']);
    const restricted = review();
    debugContainer(restricted).securityContext = { capabilities: { drop: ['ALL'] } };
    expect(reviewValidation(restricted, { config: policyConfig(BASELINE) }).response.allowed).toBe(true);
  });
});

describe('workloads', () => {
  const agent = () => fixtureObject('11-daemonset-agent-privileged.yaml');

  it('policy.workloads: enforce denies, warn only warns (PSA), ignore skips; Pods are always enforced', () => {
    expect(reviewValidation(requestFor(agent()), { config: policyConfig({ ...FORBID, workloads: 'enforce' }) }).response.allowed).toBe(false);
    const warned = reviewValidation(requestFor(agent()), { config: policyConfig({ ...FORBID, workloads: 'warn' }) }).response;
    expect(warned.allowed).toBe(true);
    expect(warned.warnings![0]).toContain('spec.template.spec.containers[0].securityContext.privileged');
    const ignored = reviewValidation(requestFor(agent()), { config: policyConfig({ ...FORBID, workloads: 'ignore' }) });
    expect(ignored.response.allowed).toBe(true);
    expect(ignored.outcome.skip).toBe('workloads_ignored');
    expect(reviewValidation(requestFor(privilegedPod()), { config: policyConfig({ ...FORBID, workloads: 'ignore' }) }).response.allowed).toBe(false);
  });

  it('CronJob: the pod template under spec.jobTemplate is evaluated', () => {
    const cron = fixtureObject('10-cronjob-backup.yaml');
    const patched = jsonpatch.applyPatch(cron, [{ op: 'add', path: '/spec/jobTemplate/spec/template/spec/hostNetwork', value: true }], true, false).newDocument;
    const { response } = reviewValidation(requestFor(patched), { config: policyConfig(BASELINE) });
    expect(response.allowed).toBe(false);
    expect(response.status!.message).toContain('spec.jobTemplate.spec.template.spec.hostNetwork: forbidden by policy apps');
  });

  it('UPDATE: only a changed pod template is judged (a scale or label change of an old workload passes)', () => {
    const old = agent();
    const scaled = structuredClone(old);
    (scaled['metadata'] as { labels: Record<string, string> }).labels['team'] = 'obs';
    const config = policyConfig(FORBID);
    const unchanged = reviewValidation(requestFor(scaled, { operation: 'UPDATE', oldObject: old }), { config });
    expect(unchanged.response.allowed).toBe(true);
    expect(unchanged.outcome.skip).toBe('template_unchanged');
    const bumped = structuredClone(old);
    ((bumped['spec'] as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!).image = 'agent:9.7.1';
    expect(reviewValidation(requestFor(bumped, { operation: 'UPDATE', oldObject: old }), { config }).response.allowed).toBe(false);
  });

  it('Pod UPDATE: only what the update adds is judged; other kinds are not judged', () => {
    const config = policyConfig(FORBID);
    // A running privileged pod (admitted before the policy) may still get its image bumped.
    const bumped = privilegedPod();
    ((bumped['spec'] as { containers: { image: string }[] }).containers[0]!).image = 'other:2';
    const update = reviewValidation(requestFor(bumped, { operation: 'UPDATE', oldObject: privilegedPod() }), { config });
    expect(update.outcome.skip).toBeUndefined();
    expect(update.response.allowed).toBe(true);
    // Under a v1.18 pin the seccomp annotations are judged: adding `unconfined` on UPDATE is refused.
    const pinned = policyConfig({ default: { name: 'old', enforce: { level: 'baseline', version: 'v1.18' } } });
    const plain = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'web' }, spec: { containers: [{ name: 'c', image: 'c' }] } };
    const unconfined = structuredClone(plain) as typeof plain & { metadata: { annotations?: Record<string, string> } };
    unconfined.metadata.annotations = { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' };
    const denied = reviewValidation(requestFor(unconfined, { operation: 'UPDATE', oldObject: plain }), { config: pinned }).response;
    expect(denied.allowed).toBe(false);
    expect(denied.status!.message).toBe('metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]: forbidden by policy old (seccompProfile_baseline: unconfined)');
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'web' } };
    expect(reviewValidation(requestFor(cm), { config }).outcome.skip).toBe('unsupported_kind');
    expect(reviewValidation(requestFor(privilegedPod(), { operation: 'UPDATE', oldObject: privilegedPod(), subResource: 'status' }), { config }).outcome.skip).toBe('subresource');
  });

});
