import { describe, expect, it } from 'vitest';
import { run } from './support/harness.js';
import { asDaemonSet, containerOf, runChecked, statusOf } from './support/security-features.js';

/** Objects are plain JSON here; tests index into them freely. */
type KubeObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** An app and a FUSE sidecar, with the given annotations. */
function appWithSidecar(annotations: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'shop', namespace: 'web', annotations },
    spec: {
      containers: [
        { name: 'app', image: 'registry.example/shop:1.4', volumeMounts: [{ name: 'data', mountPath: '/data', mountPropagation: 'HostToContainer' }] },
        { name: 'mounter', image: 'rclone/rclone:1.68', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
      ],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}

const lxcfsMounts = (c: { volumeMounts?: { name: string }[] }) => (c.volumeMounts ?? []).filter((m) => m.name.startsWith('podvisor-lxcfs-')).length;

describe('per-feature container scope', () => {
  it('LXCFS on the app, FUSE on the sidecar: each feature only where it is scoped; the status names both', () => {
    for (const object of [appWithSidecar({ 'podvisor.io/lxcfs': 'true', 'podvisor.io/fuse': 'true', 'podvisor.io/lxcfs-containers': 'app', 'podvisor.io/fuse-containers': 'mounter' })]) {
      for (const wrapped of [object, asDaemonSet(object)]) {
        const r = runChecked(wrapped);
        const app = containerOf(r.result, 'app');
        const mounter = containerOf(r.result, 'mounter');
        expect(lxcfsMounts(app)).toBe(8);
        expect(lxcfsMounts(mounter)).toBe(0);
        expect(app.securityContext?.capabilities).toBeUndefined();
        expect(app.resources).toBeUndefined();
        expect(mounter.securityContext?.capabilities?.add).toEqual(['SYS_ADMIN']);
        expect(mounter.resources?.limits).toEqual({ 'smarter-devices/fuse': '1' });
        expect(statusOf(r.result)).toEqual({ version: 1, features: ['lxcfs', 'fuse'], containers: ['app', 'mounter'], targets: { lxcfs: ['app'], fuse: ['mounter'] }, fuse: { resources: { mounter: 'smarter-devices/fuse' } } });
      }
    }
  });

  it('podvisor.io/containers stays the shared default; a feature\'s own list overrides it for that feature only', () => {
    const r = runChecked(appWithSidecar({ 'podvisor.io/lxcfs': 'true', 'podvisor.io/fuse': 'true', 'podvisor.io/containers': 'app', 'podvisor.io/fuse-containers': 'mounter' }));
    expect(lxcfsMounts(containerOf(r.result, 'app'))).toBe(8);
    expect(lxcfsMounts(containerOf(r.result, 'mounter'))).toBe(0);
    expect(containerOf(r.result, 'app').securityContext).toBeUndefined();
    expect(containerOf(r.result, 'mounter').securityContext?.capabilities?.add).toEqual(['SYS_ADMIN']);
  });

  it('agent and FUSE on different containers: the agent container gets no SYS_ADMIN on FUSE\'s account', () => {
    const object = appWithSidecar({ 'podvisor.io/agent': 'host-chroot', 'podvisor.io/fuse': 'true', 'podvisor.io/agent-containers': 'app', 'podvisor.io/fuse-containers': 'mounter' });
    object['spec'].containers[0].securityContext = { capabilities: { add: ['SYS_ADMIN'] } };
    const r = runChecked(object);
    expect(containerOf(r.result, 'app').securityContext?.capabilities).toEqual({ drop: ['ALL'], add: ['SYS_CHROOT'] });
    expect(r.outcome.warnings).toContain('spec.containers[0].securityContext.capabilities.add: removed SYS_ADMIN (not needed)');
    const agent = statusOf(r.result)['agent'] as { containers: Record<string, { capabilities: Record<string, string[]> }> };
    expect(agent.containers['app']!.capabilities).toEqual({ SYS_CHROOT: ['host-chroot'] });
  });

  it('a container list that matches nothing: nothing injected, no status claiming a feature, one warning per list', () => {
    const r = run(appWithSidecar({ 'podvisor.io/lxcfs': 'true', 'podvisor.io/fuse': 'true', 'podvisor.io/containers': 'apq' }));
    expect(r.outcome.patch).toEqual([]);
    expect(r.outcome.features).toEqual([]);
    expect(r.outcome.warnings).toEqual(['podvisor.io/containers: no container named "apq" (did you mean "app"?)']);
    // One feature's list matches nothing: only the other feature is claimed.
    const partial = runChecked(appWithSidecar({ 'podvisor.io/lxcfs': 'true', 'podvisor.io/fuse': 'true', 'podvisor.io/fuse-containers': 'nope' }));
    expect(statusOf(partial.result)['features']).toEqual(['lxcfs']);
    expect(partial.outcome.warnings).toEqual(['podvisor.io/fuse-containers: no container named "nope"']);
  });

  it('LXCFS whose every file is the owner\'s own mount is not claimed in the status', () => {
    const object = appWithSidecar({ 'podvisor.io/lxcfs': 'true', 'podvisor.io/containers': 'app' });
    const files = ['/proc/cpuinfo', '/proc/meminfo', '/proc/stat', '/proc/diskstats', '/proc/swaps', '/proc/uptime', '/proc/loadavg', '/sys/devices/system/cpu/online'];
    object['spec'].containers[0].volumeMounts.push(...files.map((f) => ({ name: 'data', mountPath: f, subPath: f.slice(1) })));
    const r = run(object);
    expect(r.outcome.features).toEqual([]);
    expect(r.outcome.patch).toEqual([]);
    expect(r.rerun.patch).toEqual([]);
  });
});
