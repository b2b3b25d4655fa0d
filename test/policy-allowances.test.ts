import type { PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { evaluatePod } from '../src/policy/evaluate.js';
import type { PodView } from '../src/policy/pod-view.js';

const ctx = { lxcfsHostRoot: '/var/lib/lxcfs', fuseResourceName: 'smarter-devices/fuse' };

function policyWith(fields: Record<string, unknown>) {
  return parseConfig({ policy: { default: { name: 'p', enforce: { level: 'baseline' }, ...fields } } }).policy.default;
}

function pod(spec: Partial<PodSpec>, metadata: ObjectMeta = { labels: { app: 'agent' } }): PodView {
  return { metadata, spec: { containers: [{ name: 'agent', image: 'a' }], ...spec }, specField: 'spec', metaField: 'metadata' };
}

const enforced = (view: PodView, fields: Record<string, unknown>) => evaluatePod(view, policyWith(fields), ctx).enforce.map((v) => `${v.field} ${v.check}`);

const agentCaps: PodSpec['containers'][number] = { name: 'agent', image: 'a', securityContext: { capabilities: { drop: ['ALL'], add: ['BPF', 'PERFMON', 'SYS_PTRACE'] } } };

describe('agent allowances (baseline enforce)', () => {
  it('named capabilities: only the listed ones are waived', () => {
    const view = pod({ containers: [agentCaps] });
    expect(enforced(view, {})).toHaveLength(3);
    expect(enforced(view, { allowances: [{ capabilities: ['BPF', 'PERFMON'] }] })).toEqual(['spec.containers[0].securityContext.capabilities.add[2] capabilities_baseline']);
    expect(enforced(view, { allowances: [{ capabilities: ['BPF', 'PERFMON', 'SYS_PTRACE'] }] })).toEqual([]);
  });

  it('hostPID and hostNetwork, never hostIPC', () => {
    const view = pod({ hostPID: true, hostNetwork: true, hostIPC: true });
    expect(enforced(view, { allowances: [{ hostPID: true }] })).toEqual(['spec.hostNetwork hostNamespaces', 'spec.hostIPC hostNamespaces']);
    expect(enforced(view, { allowances: [{ hostPID: true, hostNetwork: true }] })).toEqual(['spec.hostIPC hostNamespaces']);
  });

  it('hostNetwork also waives hostPort == containerPort (set by the apiserver on hostNetwork pods), nothing else', () => {
    const view = pod({ hostNetwork: true, containers: [{ name: 'agent', image: 'a', ports: [{ containerPort: 9100, hostPort: 9100 }, { containerPort: 80, hostPort: 8080 }] }] });
    expect(enforced(view, { allowances: [{ hostNetwork: true }] })).toEqual(['spec.containers[0].ports[1].hostPort hostPorts']);
  });

  it('hostPath prefixes, by path component, with the read-only requirement', () => {
    const view = pod({
      volumes: [
        { name: 'logs', hostPath: { path: '/var/log/pods' } },
        { name: 'logz', hostPath: { path: '/var/logs' } },
        { name: 'state', hostPath: { path: '/var/log/agent-state' } },
      ],
      containers: [
        {
          name: 'agent',
          image: 'a',
          volumeMounts: [
            { name: 'logs', mountPath: '/host/logs', readOnly: true },
            { name: 'logz', mountPath: '/host/logz', readOnly: true },
            { name: 'state', mountPath: '/state' },
          ],
        },
      ],
    });
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/var/log' }] }] })).toEqual([
      'spec.volumes[1].hostPath hostPathVolumes',
      'spec.volumes[2].hostPath hostPathVolumes',
    ]);
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/var/log/', readOnly: false }] }] })).toEqual(['spec.volumes[1].hostPath hostPathVolumes']);
  });

  it('read-only means every mount, init and ephemeral containers included', () => {
    const view = pod({
      volumes: [{ name: 'root', hostPath: { path: '/' } }],
      containers: [{ name: 'agent', image: 'a', volumeMounts: [{ name: 'root', mountPath: '/host', readOnly: true }] }],
      initContainers: [{ name: 'setup', image: 'a', volumeMounts: [{ name: 'root', mountPath: '/host' }] }],
    });
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/' }] }] })).toEqual(['spec.volumes[0].hostPath hostPathVolumes']);
  });

  it('FUSE: SYS_ADMIN only on containers that request a FUSE device', () => {
    const fuseContainer = { name: 'rclone', image: 'r', resources: { limits: { 'smarter-devices/fuse': '1' } }, securityContext: { capabilities: { add: ['SYS_ADMIN'] } } };
    const plain = { name: 'sidecar', image: 's', securityContext: { capabilities: { add: ['SYS_ADMIN'] } } };
    const view = pod({ containers: [fuseContainer, plain] });
    expect(enforced(view, { allowances: [{ fuse: true }] })).toEqual(['spec.containers[1].securityContext.capabilities.add[0] capabilities_baseline']);
    expect(enforced(view, {})).toHaveLength(2);
  });

  it('fuse waives SYS_ADMIN only with a real device: a known or configured resource with a limit of at least 1', () => {
    const withResources = (resources: object) => ({ name: 'c', image: 'i', resources, securityContext: { capabilities: { add: ['SYS_ADMIN'] } } });
    const waived = (resources: object) => enforced(pod({ containers: [withResources(resources)] }), { allowances: [{ fuse: true }] }).length === 0;
    expect(waived({ limits: { 'smarter-devices/fuse': '1' } })).toBe(true);
    expect(waived({ limits: { 'squat.ai/fuse': 2 } })).toBe(true);
    expect(waived({ limits: { 'smarter-devices/fuse': '0' } })).toBe(false); // a "0" limit schedules anywhere, no device
    expect(waived({ limits: { 'evil.example/fuse': '1' } })).toBe(false); // not a FUSE device plugin
    expect(waived({ requests: { 'smarter-devices/fuse': '1' } })).toBe(false); // a request alone is invalid, no device
  });

  it('LXCFS: podvisor\'s own read-only files pass unless the policy says lxcfs: deny', () => {
    const view = pod({
      volumes: [
        { name: 'podvisor-lxcfs-proc-meminfo', hostPath: { path: '/var/lib/lxcfs/proc/meminfo', type: 'File' } },
        { name: 'other', hostPath: { path: '/var/lib/lxcfs/proc/kcore', type: 'File' } },
      ],
      containers: [
        {
          name: 'agent',
          image: 'a',
          volumeMounts: [
            { name: 'podvisor-lxcfs-proc-meminfo', mountPath: '/proc/meminfo', readOnly: true },
            { name: 'other', mountPath: '/x', readOnly: true },
          ],
        },
      ],
    });
    expect(enforced(view, {})).toEqual(['spec.volumes[1].hostPath hostPathVolumes']);
    expect(enforced(view, { lxcfs: 'deny' })).toHaveLength(2);
  });

  it('scoped by workload labels and by service account', () => {
    const allowance = { workloads: { selector: { matchLabels: { app: 'agent' } }, serviceAccounts: ['agent-sa'] }, capabilities: ['BPF', 'PERFMON', 'SYS_PTRACE'] };
    expect(enforced(pod({ containers: [agentCaps], serviceAccountName: 'agent-sa' }), { allowances: [allowance] })).toEqual([]);
    expect(enforced(pod({ containers: [agentCaps], serviceAccountName: 'other' }), { allowances: [allowance] })).toHaveLength(3);
    expect(enforced(pod({ containers: [agentCaps], serviceAccountName: 'agent-sa' }, { labels: { app: 'web' } }), { allowances: [allowance] })).toHaveLength(3);
    // An unset serviceAccountName is the "default" service account.
    expect(enforced(pod({ containers: [agentCaps] }), { allowances: [{ workloads: { serviceAccounts: ['default'] }, capabilities: ['BPF', 'PERFMON', 'SYS_PTRACE'] }] })).toEqual([]);
  });

  it('privileged is never waived: neither by allowances nor by privileged: allow at baseline', () => {
    const view = pod({ containers: [{ name: 'agent', image: 'a', securityContext: { privileged: true } }] });
    expect(enforced(view, { privileged: 'allow', allowances: [{ capabilities: ['SYS_ADMIN'], hostPID: true }] })).toEqual(['spec.containers[0].securityContext.privileged privileged']);
  });

  it('privileged: deny applies even at the privileged level', () => {
    const view = pod({ containers: [{ name: 'agent', image: 'a', securityContext: { privileged: true } }] });
    const policy = parseConfig({ policy: { default: { privileged: 'deny' } } }).policy.default;
    expect(evaluatePod(view, policy, ctx).enforce.map((v) => v.check)).toEqual(['podvisor:privileged']);
    expect(evaluatePod(view, policy, ctx).warn).toEqual([]);
  });
});
