// Offline judging sees what the apiserver sees: its defaults that change a Pod Security verdict, and every policy
// version Pod Security Admission accepts (v1.0 onward) with each check's historical behaviour.
import type { PodSpec } from 'kubernetes-types/core/v1.js';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../src/admission/types.js';
import { checkManifests } from '../src/cli/check.js';
import { parseManifests } from '../src/cli/manifests.js';
import { withApiDefaults } from '../src/policy/api-defaults.js';
import { reviewValidation } from '../src/policy/validate-review.js';
import { deepFreeze } from './support/harness.js';
import { policyConfig, requestFor } from './support/policy.js';

const restricted = (version = 'latest') => policyConfig({ default: { name: 'r', enforce: { level: 'restricted', version } } });
const baseline = (version: string) => policyConfig({ default: { name: 'b', enforce: { level: 'baseline', version } } });

const compliantContainer = {
  name: 'c',
  image: 'c',
  securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
};

describe('apiserver defaults (pkg/apis/core/v1/defaults.go)', () => {
  it('a volume without a source is an emptyDir, as the apiserver makes it: allowed at restricted', () => {
    const manifest = `apiVersion: v1
kind: Pod
metadata: {name: scratch, namespace: web}
spec:
  volumes: [{name: tmp}]
  containers:
    - {name: c, image: c, securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}}
`;
    const judge = (text: string) => checkManifests(parseManifests([{ name: 'test', text }], 'web'), restricted(), { mutate: false });
    const [verdict] = judge(manifest);
    expect(verdict!.outcome.allowed).toBe(true);
    // The same volume with a forbidden source is still denied.
    const [nfs] = judge(manifest.replace('[{name: tmp}]', '[{name: tmp, nfs: {server: s, path: /}}]'));
    expect(nfs!.outcome.denial).toEqual(['spec.volumes[0].nfs: forbidden by policy r (restrictedVolumes: nfs)']);
  });

  it('hostNetwork Pods get hostPort = containerPort; templates do not (DefaultHostNetworkHostPortsInPodTemplates is off)', () => {
    const spec = { hostNetwork: true, containers: [{ name: 'c', image: 'c', ports: [{ containerPort: 9100 }, { containerPort: 53, hostPort: 5353 }] }] };
    expect(withApiDefaults(spec, true).containers[0]!.ports).toEqual([{ containerPort: 9100, hostPort: 9100 }, { containerPort: 53, hostPort: 5353 }]);
    expect(withApiDefaults(spec, false)).toBe(spec);
    const pod: KubeObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'web' }, spec };
    const fields = reviewValidation(requestFor(pod), { config: baseline('latest') }).outcome.evaluation!.enforce.map((v) => v.field);
    expect(fields).toEqual(['spec.hostNetwork', 'spec.containers[0].ports[0].hostPort', 'spec.containers[0].ports[1].hostPort']);
  });

  it('copy on write: an already defaulted spec is returned as it is, and the input is never changed', () => {
    const spec: PodSpec = deepFreeze({ volumes: [{ name: 'v', emptyDir: {} }], containers: [] });
    expect(withApiDefaults(spec, true)).toBe(spec);
    const bare: PodSpec = deepFreeze({ volumes: [{ name: 'v' }], containers: [] });
    expect(withApiDefaults(bare, true).volumes).toEqual([{ name: 'v', emptyDir: {} }]);
  });
});

describe('every policy version PSA accepts', () => {
  const pod = (spec: object, annotations: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'web', annotations }, spec });
  const enforced = (object: KubeObject, config = restricted()) => reviewValidation(requestFor(object), { config }).outcome.evaluation!.enforce.map((v) => `${v.check} ${v.field}`);

  it('accepts v1.0 to v1.35 and later pins, refuses what PSA refuses', () => {
    for (const version of ['v1.0', 'v1.8', 'v1.19', 'v1.24', 'v1.35', 'v1.40']) expect(() => baseline(version)).not.toThrow();
    for (const version of ['v1.00', 'v1.024', '1.25', 'v2.0', 'v1.x']) expect(() => baseline(version)).toThrow(/expected "latest"/);
  });

  it('seccomp: the alpha annotations before v1.19, the field from v1.19', () => {
    const annotated = pod({ containers: [{ name: 'c', image: 'c' }] }, { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined', 'container.seccomp.security.alpha.kubernetes.io/c': 'docker/default' });
    expect(enforced(annotated, baseline('v1.18'))).toEqual(['seccompProfile_baseline metadata.annotations[seccomp.security.alpha.kubernetes.io/pod]']);
    expect(enforced(annotated, baseline('v1.19'))).toEqual([]);
    const field = pod({ containers: [{ name: 'c', image: 'c', securityContext: { seccompProfile: { type: 'Unconfined' } } }] });
    expect(enforced(field, baseline('v1.18'))).toEqual([]);
    expect(enforced(field, baseline('v1.19'))).toEqual(['seccompProfile_baseline spec.containers[0].securityContext.seccompProfile.type']);
  });

  it('restricted grows by version: allowPrivilegeEscalation v1.8, seccomp v1.19, capabilities v1.22, runAsUser v1.23', () => {
    const bare = pod({ containers: [{ name: 'c', image: 'c', securityContext: { runAsNonRoot: true, runAsUser: 0 } }] });
    const checks = (version: string) => [...new Set(enforced(bare, restricted(version)).map((line) => line.split(' ')[0]))];
    expect(checks('v1.0')).toEqual([]);
    expect(checks('v1.8')).toEqual(['allowPrivilegeEscalation']);
    expect(checks('v1.19')).toEqual(['allowPrivilegeEscalation', 'seccompProfile_restricted']);
    expect(checks('v1.22')).toEqual(['allowPrivilegeEscalation', 'seccompProfile_restricted', 'capabilities_restricted']);
    expect(checks('v1.23')).toEqual(['allowPrivilegeEscalation', 'runAsUser', 'seccompProfile_restricted', 'capabilities_restricted']);
  });

  it('the Windows exemptions start at v1.25', () => {
    const windows = pod({ os: { name: 'windows' }, containers: [{ name: 'c', image: 'c', securityContext: { runAsNonRoot: true } }] });
    expect(enforced(windows, restricted('v1.24')).length).toBeGreaterThan(0);
    expect(enforced(windows, restricted('v1.25'))).toEqual([]);
  });

  it('a pin above the newest known version evaluates like latest', () => {
    const object = pod({ containers: [compliantContainer] });
    expect(enforced(object, restricted('v1.40'))).toEqual(enforced(object, restricted('latest')));
  });
});
