import type { PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { allowanceContext } from '../src/policy/allowances.js';
import { evaluatePod } from '../src/policy/evaluate.js';
import type { PodView } from '../src/policy/pod-view.js';

const ctx = { lxcfsHostRoot: '/var/lib/lxcfs', fuseResourceName: 'smarter-devices/fuse', recursiveReadOnly: true };

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

  it('hostPath prefixes, by path component, on normalized paths, with the read-only requirement', () => {
    const view = pod({
      volumes: [
        { name: 'logs', hostPath: { path: '/var/log/pods', type: 'Directory' } },
        { name: 'logz', hostPath: { path: '/var/logs', type: 'Directory' } },
        { name: 'state', hostPath: { path: '/var/log/agent-state', type: 'Directory' } },
        { name: 'escape', hostPath: { path: '/var/log/../../etc', type: 'Directory' } },
        { name: 'slashes', hostPath: { path: '//var//log/pods/', type: 'Directory' } },
      ],
      containers: [
        {
          name: 'agent',
          image: 'a',
          volumeMounts: [
            { name: 'logs', mountPath: '/host/logs', readOnly: true, recursiveReadOnly: 'Enabled' },
            { name: 'logz', mountPath: '/host/logz', readOnly: true, recursiveReadOnly: 'Enabled' },
            { name: 'state', mountPath: '/state' },
            { name: 'escape', mountPath: '/host/etc', readOnly: true, recursiveReadOnly: 'Enabled' },
            { name: 'slashes', mountPath: '/host/pods', readOnly: true, recursiveReadOnly: 'Enabled' },
          ],
        },
      ],
    });
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/var/log' }] }] })).toEqual([
      'spec.volumes[1].hostPath hostPathVolumes',
      'spec.volumes[2].hostPath hostPathVolumes',
      'spec.volumes[3].hostPath hostPathVolumes',
    ]);
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/var/log/', readOnly: false }] }] })).toEqual([
      'spec.volumes[1].hostPath hostPathVolumes',
      'spec.volumes[3].hostPath hostPathVolumes',
    ]);
  });

  it('read-only means every mount, init and ephemeral containers included', () => {
    const view = pod({
      volumes: [{ name: 'root', hostPath: { path: '/', type: 'Directory' } }],
      containers: [{ name: 'agent', image: 'a', volumeMounts: [{ name: 'root', mountPath: '/host', readOnly: true, recursiveReadOnly: 'Enabled' }] }],
      initContainers: [{ name: 'setup', image: 'a', volumeMounts: [{ name: 'root', mountPath: '/host' }] }],
    });
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/' }] }] })).toEqual(['spec.volumes[0].hostPath hostPathVolumes']);
  });

  // Each row: the hostPath type, the mount, whether a read-only allowance of `/var/lib/agent` admits it.
  it.each<[string | undefined, Record<string, unknown>, boolean, string]>([
    ['File', { readOnly: true }, true, 'a file has no submounts'],
    ['File', {}, false, 'writable mount'],
    ['Directory', { readOnly: true, recursiveReadOnly: 'Enabled' }, true, 'readOnly and recursive'],
    ['Directory', { readOnly: true }, false, 'submounts below the directory stay writable'],
    ['Directory', { readOnly: true, recursiveReadOnly: 'IfPossible' }, false, 'IfPossible falls back to non-recursive silently'],
    [undefined, { readOnly: true, recursiveReadOnly: 'Enabled' }, false, 'no type: the path could be a socket or a device'],
    ['FileOrCreate', { readOnly: true }, false, 'the kubelet creates the file on the host'],
    ['DirectoryOrCreate', { readOnly: true, recursiveReadOnly: 'Enabled' }, false, 'the kubelet creates the directory on the host'],
    ['Socket', { readOnly: true }, false, 'connecting to a socket ignores a read-only mount'],
    ['CharDevice', { readOnly: true }, false, 'a device node opens read-write on a read-only mount'],
    ['BlockDevice', { readOnly: true }, false, 'a device node opens read-write on a read-only mount'],
  ])('read-only allowance, type %s, mount %j → admitted %s (%s)', (type, mount, admitted) => {
    const view = pod({
      volumes: [{ name: 'v', hostPath: { path: '/var/lib/agent/x', ...(type === undefined ? {} : { type }) } }],
      containers: [{ name: 'agent', image: 'a', volumeMounts: [{ name: 'v', mountPath: '/x', ...mount }] }],
    });
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/var/lib/agent' }] }] })).toEqual(admitted ? [] : ['spec.volumes[0].hostPath hostPathVolumes']);
    // A writable allowance admits every type: the admin accepted writes to the host.
    expect(enforced(view, { allowances: [{ hostPaths: [{ pathPrefix: '/var/lib/agent', readOnly: false }] }] })).toEqual([]);
  });

  it('recursiveReadOnly counts only where the cluster honours it (1.31 on), and a refused path says why', () => {
    const view = pod({
      volumes: [{ name: 'v', hostPath: { path: '/var/lib/agent', type: 'Directory' } }],
      containers: [{ name: 'agent', image: 'a', volumeMounts: [{ name: 'v', mountPath: '/x', readOnly: true, recursiveReadOnly: 'Enabled' }] }],
    });
    const policy = policyWith({ allowances: [{ hostPaths: [{ pathPrefix: '/var/lib/agent' }] }] });
    expect(evaluatePod(view, policy, { ...ctx, recursiveReadOnly: true }).enforce).toEqual([]);
    const [refused] = evaluatePod(view, policy, { ...ctx, recursiveReadOnly: false }).enforce;
    expect(refused?.hint).toBe('hostPath /var/lib/agent: read-only needs type File, or Directory with readOnly + recursiveReadOnly: Enabled (>= 1.31)');
    expect(refused!.hint!.length).toBeLessThanOrEqual(120);
    expect(allowanceContext(parseConfig({ kubernetesVersion: '1.30' })).recursiveReadOnly).toBe(false);
    expect(allowanceContext(parseConfig({ kubernetesVersion: '1.31' })).recursiveReadOnly).toBe(true);
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
