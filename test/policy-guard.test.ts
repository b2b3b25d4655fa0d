import jsonpatch from 'fast-json-patch';
import type { PodSpec } from 'kubernetes-types/core/v1.js';
import { describe, expect, it } from 'vitest';
import { reviewMutation } from '../src/admission/mutate-review.js';
import type { KubeObject } from '../src/admission/types.js';
import type { Feature, PodDraft } from '../src/features/feature.js';
import { createEscalationGuard } from '../src/policy/guard.js';
import { reviewValidation } from '../src/policy/validate-review.js';
import { FORBID, fixtureObject, policyConfig, requestFor } from './support/policy.js';
import { findWorkloadKind } from '../src/workload/kinds.js';

const BASELINE_ENFORCE = { default: { name: 'apps', enforce: { level: 'baseline' } } };
const BASELINE_WARN = { default: { name: 'apps', warn: { level: 'baseline' } } };

function decodePatch(patch: string | undefined): jsonpatch.Operation[] {
  return patch === undefined ? [] : (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as jsonpatch.Operation[]);
}

/** Apply the /mutate answer and return the pod spec (of a Pod) the cluster would store. */
function resultSpec(object: KubeObject, patch: string | undefined): PodSpec {
  return (jsonpatch.applyPatch(structuredClone(object), decodePatch(patch), true, false).newDocument as { spec: PodSpec }).spec;
}

const allCapabilities = (spec: PodSpec) => spec.containers.flatMap((c) => c.securityContext?.capabilities?.add ?? []);

function agentPod(value: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'profiler', namespace: 'web', labels: { app: 'profiler' }, annotations: { 'podvisor.io/agent': value } },
    spec: { containers: [{ name: 'profiler', image: 'profiler:1' }] },
  };
}

describe('escalation guard: a workload owner without the allowance gets no capability', () => {
  it('podvisor.io/fuse under baseline enforce: denied (403) with the reason, nothing applied', () => {
    const pod = fixtureObject('14-pod-fuse-rclone.yaml');
    const { response, outcome } = reviewMutation(requestFor(pod), { config: policyConfig(BASELINE_ENFORCE) });
    expect(response.allowed).toBe(false);
    expect(response.status?.code).toBe(403);
    const lines = response.status!.message!.split('\n');
    expect(lines).toContain('spec.containers[0].securityContext.capabilities.add[0]: forbidden by policy apps (capabilities_baseline: SYS_ADMIN)');
    expect(lines).toContain('podvisor.io/fuse: not applied, policy apps does not allow what it adds');
    expect(response.patch).toBeUndefined();
    expect(outcome.injected).toEqual([]);
  });

  it('podvisor.io/fuse under baseline warn: allowed with a warning, and no SYS_ADMIN in the result', () => {
    const pod = fixtureObject('14-pod-fuse-rclone.yaml');
    const { response } = reviewMutation(requestFor(pod), { config: policyConfig(BASELINE_WARN) });
    expect(response.allowed).toBe(true);
    expect(response.warnings).toContain('podvisor.io/fuse: not applied, policy apps does not allow what it adds');
    for (const w of response.warnings!) expect(w.length).toBeLessThanOrEqual(120);
    const spec = resultSpec(pod, response.patch);
    expect(allCapabilities(spec)).toEqual([]);
    expect(spec.containers[0]!.resources?.limits?.['smarter-devices/fuse']).toBeUndefined();
  });

  it('podvisor.io/fuse with a FUSE allowance: SYS_ADMIN is granted and the result passes /validate', () => {
    const pod = fixtureObject('14-pod-fuse-rclone.yaml');
    const config = policyConfig({ default: { name: 'apps', enforce: { level: 'baseline' }, allowances: [{ fuse: true }] } });
    const { response } = reviewMutation(requestFor(pod), { config });
    expect(response.allowed).toBe(true);
    const spec = resultSpec(pod, response.patch);
    expect(allCapabilities(spec)).toEqual(['SYS_ADMIN']);
    const final = jsonpatch.applyPatch(structuredClone(pod), decodePatch(response.patch), true, false).newDocument;
    expect(reviewValidation(requestFor(final), { config }).response.allowed).toBe(true);
  });

  it('podvisor.io/agent: ebpf-profiling under baseline enforce: denied; under warn: no capability', () => {
    const denied = reviewMutation(requestFor(agentPod('ebpf-profiling')), { config: policyConfig(BASELINE_ENFORCE) }).response;
    expect(denied.allowed).toBe(false);
    expect(denied.status!.message).toContain('podvisor.io/agent: not applied, policy apps does not allow what it adds');
    expect(denied.status!.message).toMatch(/capabilities\.add\[\d\]: forbidden by policy apps \(capabilities_baseline: BPF\)/);
    const warned = reviewMutation(requestFor(agentPod('ebpf-profiling')), { config: policyConfig(BASELINE_WARN) }).response;
    expect(warned.allowed).toBe(true);
    expect(allCapabilities(resultSpec(agentPod('ebpf-profiling'), warned.patch))).toEqual([]);
  });

  it('podvisor.io/agent: ebpf-profiling needs its capabilities and hostPID allowed: capabilities alone are not enough', () => {
    const caps = ['BPF', 'PERFMON', 'SYSLOG', 'SYS_PTRACE', 'SYS_RESOURCE'];
    const partial = policyConfig({ default: { name: 'apps', enforce: { level: 'baseline' }, allowances: [{ capabilities: caps }] } });
    expect(reviewMutation(requestFor(agentPod('ebpf-profiling')), { config: partial }).response.status!.message!.split('\n')).toEqual([
      'spec.hostPID: forbidden by policy apps (hostNamespaces)',
      'podvisor.io/agent: not applied, policy apps does not allow what it adds',
    ]);
  });

  it('podvisor.io/agent: ebpf-profiling with the capabilities and hostPID allowed (scoped to its labels): applied', () => {
    const allowance = { workloads: { selector: { matchLabels: { app: 'profiler' } } }, capabilities: ['BPF', 'PERFMON', 'SYSLOG', 'SYS_PTRACE', 'SYS_RESOURCE'], hostPID: true };
    const config = policyConfig({ default: { name: 'apps', enforce: { level: 'baseline' }, allowances: [allowance] } });
    const { response } = reviewMutation(requestFor(agentPod('ebpf-profiling')), { config });
    expect(response.allowed).toBe(true);
    expect(allCapabilities(resultSpec(agentPod('ebpf-profiling'), response.patch))).toEqual(expect.arrayContaining(['BPF', 'PERFMON', 'SYS_PTRACE']));
    // The same annotation on a workload outside the allowance's scope gets nothing.
    const other = agentPod('ebpf-profiling');
    (other['metadata'] as { labels: Record<string, string> }).labels = { app: 'web' };
    expect(reviewMutation(requestFor(other), { config }).response.allowed).toBe(false);
  });

  it('LXCFS: allowed by default (podvisor never fails its own policy), refused with lxcfs: deny', () => {
    const pod = fixtureObject('01-pod-nginx-lxcfs.yaml');
    const allowed = reviewMutation(requestFor(pod), { config: policyConfig({ default: { name: 'apps', enforce: { level: 'baseline' } } }) });
    expect(allowed.response.allowed).toBe(true);
    expect(allowed.outcome.injected).toEqual(['lxcfs']);
    const denied = reviewMutation(requestFor(pod), { config: policyConfig({ default: { name: 'apps', enforce: { level: 'baseline' }, lxcfs: 'deny' } }) });
    expect(denied.response.allowed).toBe(false);
    expect(denied.response.status!.message).toContain('podvisor.io/lxcfs: not applied');
  });

  it('an exempt user is not guarded', () => {
    const pod = fixtureObject('14-pod-fuse-rclone.yaml');
    const config = policyConfig({ ...BASELINE_ENFORCE, exemptions: { usernames: ['ci-bot'] } });
    const { response } = reviewMutation(requestFor(pod, { username: 'ci-bot' }), { config });
    expect(response.allowed).toBe(true);
    expect(allCapabilities(resultSpec(pod, response.patch))).toEqual(['SYS_ADMIN']);
  });

  it('workload templates follow policy.workloads: warn turns the refusal into a warning', () => {
    const deployment: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd', namespace: 'web' },
      spec: {
        selector: { matchLabels: { app: 'd' } },
        template: { metadata: { labels: { app: 'd' }, annotations: { 'podvisor.io/fuse': 'true' } }, spec: { containers: [{ name: 'c', image: 'c' }] } },
      },
    };
    const { response } = reviewMutation(requestFor(deployment), { config: policyConfig({ ...BASELINE_ENFORCE, workloads: 'warn' }) });
    expect(response.allowed).toBe(true);
    expect(response.warnings).toContain('podvisor.io/fuse: not applied, policy apps does not allow what it adds');
    expect(decodePatch(response.patch).some((op) => JSON.stringify(op).includes('SYS_ADMIN'))).toBe(false);
  });
});

describe('escalation guard over any Feature (test-only feature)', () => {
  const hostNetworkFeature: Feature = {
    name: 'lxcfs',
    annotation: 'test.podvisor.io/host-network',
    containersAnnotation: 'test.podvisor.io/host-network-containers',
    parse: () => ({ kind: 'on', value: 'true' }),
    apply: (ctx) => {
      ctx.pod.spec.hostNetwork = true;
      return { changed: true };
    },
  };
  const draft = (): PodDraft => ({ metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'c' }] } });
  const input = (policy: unknown) => ({ config: policyConfig(policy), namespace: 'web', namespaceLabels: {}, kind: findWorkloadKind('', 'v1', 'Pod')!, specField: 'spec', metaField: 'metadata' });

  it('refuses what the feature adds, in enforce mode', () => {
    const d = draft();
    const guard = createEscalationGuard(input(BASELINE_ENFORCE), d)!;
    hostNetworkFeature.apply({ pod: d } as never);
    expect(guard.review(hostNetworkFeature, d)).toEqual({
      mode: 'enforce',
      policy: 'apps',
      lines: ['spec.hostNetwork: forbidden by policy apps (hostNamespaces)', 'test.podvisor.io/host-network: not applied, policy apps does not allow what it adds'],
    });
  });

  it('accepts it with a hostNetwork allowance, and ignores violations that were already there', () => {
    const d = draft();
    const guard = createEscalationGuard(input({ default: { name: 'apps', enforce: { level: 'baseline' }, allowances: [{ hostNetwork: true }] } }), d)!;
    hostNetworkFeature.apply({ pod: d } as never);
    expect(guard.review(hostNetworkFeature, d)).toBeUndefined();
    const already = draft();
    already.spec.hostNetwork = true;
    const guard2 = createEscalationGuard(input(BASELINE_ENFORCE), already)!;
    hostNetworkFeature.apply({ pod: already } as never);
    expect(guard2.review(hostNetworkFeature, already)).toBeUndefined();
  });

  it('is off when the policy can refuse nothing', () => {
    expect(createEscalationGuard(input({}), draft())).toBeUndefined();
  });
});

describe('early refusal in /mutate', () => {
  it('denies what nothing podvisor injects would fix, and admits what podvisor.io/agent fixes', () => {
    const config = policyConfig(FORBID);
    const plain = fixtureObject('11-daemonset-agent-privileged.yaml');
    const template = (plain['spec'] as { template: { metadata: { annotations?: Record<string, string> } } }).template;
    delete template.metadata.annotations;
    const refused = reviewMutation(requestFor(plain), { config });
    expect(refused.response.allowed).toBe(false);
    expect(refused.response.status!.message).toContain('spec.template.spec.containers[0].securityContext.privileged: forbidden by policy forbid-privileged');
    expect(refused.decisions).toEqual([
      { policy: 'forbid-privileged', rule: 'podvisor:privileged', mode: 'enforce', decision: 'denied' },
    ]);
    const withAgent = reviewMutation(requestFor(fixtureObject('11-daemonset-agent-privileged.yaml')), { config });
    expect(withAgent.response.allowed).toBe(true);
    expect(withAgent.response.patch).toBeDefined();
  });

  it('keeps podvisor\'s own warnings in the denial (here: an invalid podvisor.io/agent value)', () => {
    const plain = fixtureObject('11-daemonset-agent-privileged.yaml');
    (plain['spec'] as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata.annotations = { 'podvisor.io/agent': ' , ' };
    const refused = reviewMutation(requestFor(plain), { config: policyConfig(FORBID) });
    expect(refused.response.allowed).toBe(false);
    expect(refused.response.warnings?.some((w) => w.startsWith('podvisor.io/agent: invalid value'))).toBe(true);
  });

  it('can be switched off (policy.refuseEarly: false)', () => {
    const plain = fixtureObject('11-daemonset-agent-privileged.yaml');
    delete (plain['spec'] as { template: { metadata: { annotations?: unknown } } }).template.metadata.annotations;
    expect(reviewMutation(requestFor(plain), { config: policyConfig({ ...FORBID, refuseEarly: false }) }).response.allowed).toBe(true);
  });
});

describe('review-11 fixtures under a forbid policy', () => {
  it('the Argo CD UPDATE that put privileged: true back is admitted, because podvisor.io/agent takes it out again', async () => {
    const { fixtureRequest } = await import('./support/policy.js');
    const config = policyConfig(FORBID);
    for (const name of ['review-11-daemonset-create.json', 'review-11-daemonset-update.json']) {
      const request = fixtureRequest(name);
      const { response } = reviewMutation(request, { config });
      expect(response.allowed).toBe(true);
      const final = jsonpatch.applyPatch(structuredClone(request.object!), decodePatch(response.patch), true, false).newDocument;
      const validated = reviewValidation({ ...request, object: final }, { config }).response;
      expect(validated.allowed).toBe(true);
      // Without podvisor's patch the validating webhook denies it.
      expect(reviewValidation(request, { config }).response.allowed).toBe(false);
    }
  });
});
