import { describe, expect, it } from 'vitest';
import type { Container, Volume } from 'kubernetes-types/core/v1.js';
import { lxcfsVolumeName } from '../src/features/lxcfs.js';
import { DEFAULT_LXCFS_FILES, DEFAULT_LXCFS_HOST_ROOT } from '../src/config/schema.js';
import { annotationsOf, config, fixture, podOf, run, violations } from './support/harness.js';

const LXCFS_PATHS = [...DEFAULT_LXCFS_FILES];

function container(object: Record<string, unknown>, name: string): Container {
  const spec = podOf(object).spec;
  const found = [...(spec.initContainers ?? []), ...spec.containers].find((c) => c.name === name);
  if (found === undefined) throw new Error(`no container ${name}`);
  return found;
}
const mountPaths = (c: Container) => (c.volumeMounts ?? []).map((m) => m.mountPath);
const lxcfsVolumes = (object: Record<string, unknown>): Volume[] =>
  (podOf(object).spec.volumes ?? []).filter((v) => v.hostPath?.path.startsWith(`${DEFAULT_LXCFS_HOST_ROOT}/`));

/** The invariants every mutation must keep: rules hold, and re-running on the output changes nothing. */
function expectValidAndIdempotent(r: ReturnType<typeof run>): void {
  expect(violations(r.result)).toEqual([]);
  expect(r.rerun.patch).toEqual([]);
}

describe('lxcfs mutator on the fixtures', () => {
  it('01: adds the 8 volumes (hostPath File) and 8 read-only mounts, keeps existing ones', () => {
    const original = fixture('01-pod-nginx-lxcfs.yaml');
    const r = run(original);
    expect(r.outcome.features).toEqual(['lxcfs']);
    expect(r.outcome.injected).toEqual(['lxcfs']);
    const nginx = container(r.result, 'nginx');
    expect(mountPaths(nginx)).toEqual(['/etc/nginx/conf.d', '/var/cache/nginx', ...LXCFS_PATHS]);
    for (const mount of nginx.volumeMounts!.slice(2)) {
      expect(mount).toEqual({ name: lxcfsVolumeName(mount.mountPath as never), mountPath: mount.mountPath, readOnly: true });
    }
    expect(podOf(r.result).spec.volumes!.slice(0, 2)).toEqual(podOf(original).spec.volumes);
    expect(lxcfsVolumes(r.result)).toEqual(
      LXCFS_PATHS.map((p) => ({ name: lxcfsVolumeName(p), hostPath: { path: `${DEFAULT_LXCFS_HOST_ROOT}${p}`, type: 'File' } })),
    );
    expect(JSON.parse(annotationsOf(r.result)['podvisor.io/status']!)).toEqual({ version: 1, features: ['lxcfs'], containers: ['nginx'] });
    expect(r.outcome.patch.every((op) => op.op === 'add')).toBe(true);
    expectValidAndIdempotent(r);
  });

  it('02: Deployment: only spec.containers by default; init container and native sidecar untouched', () => {
    const original = fixture('02-deployment-java-sidecar.yaml');
    const r = run(original);
    expect(mountPaths(container(r.result, 'orders-api'))).toEqual(['/var/log/orders', ...LXCFS_PATHS]);
    expect(container(r.result, 'db-migrate')).toEqual(container(original, 'db-migrate'));
    expect(container(r.result, 'log-shipper')).toEqual(container(original, 'log-shipper'));
    expect(r.outcome.patch.every((op) => op.path.startsWith('/spec/template/'))).toBe(true);
    expectValidAndIdempotent(r);
  });

  it('02: a Pod created from the injected template, and the Deployment-owned ReplicaSet, need no patch', () => {
    const deployment = run(fixture('02-deployment-java-sidecar.yaml')).result;
    const template = (deployment['spec'] as { template: Record<string, unknown> }).template;
    const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-api-5d4f', uid: 'u1', controller: true };
    const pod = { apiVersion: 'v1', kind: 'Pod', ...structuredClone(template) } as Record<string, unknown>;
    (pod['metadata'] as Record<string, unknown>)['ownerReferences'] = [owner];
    expect(run(pod, { namespace: 'web' }).outcome.patch).toEqual([]);

    const replicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: 'orders-api-5d4f', namespace: 'web', ownerReferences: [{ ...owner, kind: 'Deployment', name: 'orders-api' }] },
      spec: { selector: {}, template: fixture('02-deployment-java-sidecar.yaml')['spec'] && (fixture('02-deployment-java-sidecar.yaml')['spec'] as { template: unknown }).template },
    };
    const rs = run(replicaSet);
    expect(rs.outcome.skip).toBe('controller_owned');
    expect(rs.outcome.patch).toEqual([]);
  });

  it('03: a container that already mounts /proc/meminfo keeps its mount; no unused volume; warning', () => {
    const r = run(fixture('03-pod-existing-proc-meminfo.yaml'));
    const worker = container(r.result, 'worker');
    expect(mountPaths(worker).filter((p) => p === '/proc/meminfo')).toHaveLength(1);
    expect(worker.volumeMounts!.find((m) => m.mountPath === '/proc/meminfo')!.name).toBe('meminfo-view');
    expect(mountPaths(worker)).toEqual(['/proc/meminfo', ...LXCFS_PATHS.filter((p) => p !== '/proc/meminfo')]);
    expect(lxcfsVolumes(r.result).map((v) => v.name)).not.toContain('podvisor-lxcfs-proc-meminfo');
    expect(r.outcome.warnings.some((w) => w.includes('/proc/meminfo'))).toBe(true);
    expectValidAndIdempotent(r);
  });

  it('04: the owner volume named like podvisor\'s cpuinfo volume is never duplicated nor mounted at /proc/cpuinfo', () => {
    const r = run(fixture('04-pod-volume-name-collision.yaml'));
    const spec = podOf(r.result).spec;
    expect(spec.volumes!.filter((v) => v.name === 'podvisor-lxcfs-proc-cpuinfo')).toEqual([
      { name: 'podvisor-lxcfs-proc-cpuinfo', configMap: { name: 'planner-cpu-models' } },
    ]);
    expect(mountPaths(container(r.result, 'planner'))).not.toContain('/proc/cpuinfo');
    expect(mountPaths(container(r.result, 'planner'))).toEqual(['/etc/planner', ...LXCFS_PATHS.filter((p) => p !== '/proc/cpuinfo')]);
    expect(r.outcome.warnings.some((w) => w.includes('podvisor-lxcfs-proc-cpuinfo') && w.includes('/proc/cpuinfo'))).toBe(true);
    expectValidAndIdempotent(r);
  });

  it('05: namespace default from the namespace label; annotations map added whole because the parent is missing', () => {
    const env = { config: config({ namespaces: { shop: { labels: { 'podvisor.io/lxcfs': 'enabled' } } } }) };
    const r = run(fixture('05-pod-no-annotations.yaml'), { env });
    expect(r.outcome.features).toEqual(['lxcfs']);
    const annotationOps = r.outcome.patch.filter((op) => op.path.startsWith('/metadata/annotations'));
    expect(annotationOps).toHaveLength(1);
    expect(annotationOps[0]).toMatchObject({ op: 'add', path: '/metadata/annotations' });
    expect(mountPaths(container(r.result, 'worker'))).toEqual(LXCFS_PATHS);
    expectValidAndIdempotent(r);
    // Without the namespace default the same Pod is left alone.
    expect(run(fixture('05-pod-no-annotations.yaml')).outcome.skip).toBe('not_opted_in');
  });

  it('06: look-alike keys (podvisor.io/LXCFS, lxcfs.podvisor.io/enabled, ...) never opt into LXCFS', () => {
    const r = run(fixture('06-pod-annotation-keys-slashes.yaml'));
    expect(r.outcome.features).not.toContain('lxcfs');
    expect(lxcfsVolumes(r.result)).toEqual([]);
    expect(r.outcome.patch.filter((op) => op.path.includes('volume'))).toEqual([]);
  });

  it('07: a Windows pod gets no patch and a warning', () => {
    const r = run(fixture('07-pod-windows.yaml'));
    expect(r.outcome.patch).toEqual([]);
    expect(r.outcome.skip).toBe('windows');
    expect(r.outcome.warnings.join()).toMatch(/Windows/);
  });

  it('07: a kubernetes.io/os=windows nodeSelector alone marks a Windows pod', () => {
    const pod = fixture('07-pod-windows.yaml');
    delete (pod['spec'] as Record<string, unknown>)['os'];
    expect(run(pod).outcome.skip).toBe('windows');
  });

  it('08: hostNetwork is no reason to skip; ports, dnsPolicy and capabilities untouched', () => {
    const original = fixture('08-pod-hostnetwork.yaml');
    const r = run(original);
    const haproxy = container(r.result, 'haproxy');
    expect(mountPaths(haproxy)).toEqual(['/usr/local/etc/haproxy', ...LXCFS_PATHS]);
    expect(haproxy.ports).toEqual(container(original, 'haproxy').ports);
    expect(haproxy.securityContext).toEqual(container(original, 'haproxy').securityContext);
    expect(podOf(r.result).spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expectValidAndIdempotent(r);
  });

  it('09: StatefulSet with podvisor.io/containers: only postgres; re-applied manifest gives the identical template', () => {
    const original = fixture('09-statefulset-postgres.yaml');
    const r = run(original);
    expect(mountPaths(container(r.result, 'postgres'))).toEqual(['/var/lib/postgresql/data', '/dev/shm', ...LXCFS_PATHS]);
    expect(container(r.result, 'exporter')).toEqual(container(original, 'exporter'));
    expect((r.result['spec'] as Record<string, unknown>)['volumeClaimTemplates']).toEqual((original['spec'] as Record<string, unknown>)['volumeClaimTemplates']);
    expect(lxcfsVolumes(r.result)).toHaveLength(8);
    expectValidAndIdempotent(r);
    const reapplied = run(original, { operation: 'UPDATE' });
    expect(reapplied.result).toEqual(r.result);
    expect(run(r.result, { operation: 'UPDATE' }).outcome.patch).toEqual([]);
  });

  it('10: CronJob: patches under spec.jobTemplate.spec.template; its Jobs are skipped; their Pods need no patch', () => {
    const r = run(fixture('10-cronjob-backup.yaml'));
    expect(r.outcome.patch.length).toBeGreaterThan(0);
    expect(r.outcome.patch.every((op) => op.path.startsWith('/spec/jobTemplate/spec/template/'))).toBe(true);
    expect(mountPaths(container(r.result, 'pg-dump'))).toEqual(['/backup', ...LXCFS_PATHS]);
    expectValidAndIdempotent(r);

    const jobTemplate = (r.result['spec'] as { jobTemplate: { spec: { template: Record<string, unknown> } } }).jobTemplate;
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'orders-db-backup-29000', namespace: 'data', ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'orders-db-backup', uid: 'u', controller: true }] },
      spec: structuredClone(jobTemplate.spec),
    };
    expect(run(job).outcome.skip).toBe('controller_owned');
    const pod = { apiVersion: 'v1', kind: 'Pod', ...structuredClone(jobTemplate.spec.template) } as Record<string, unknown>;
    expect(run(pod, { namespace: 'data' }).outcome.patch).toEqual([]);
  });

  it('15: the lxcfs DaemonSet is never mutated (excluded namespace, exclude label)', () => {
    const daemonSet = fixture('15-lxcfs-daemonset.yaml');
    expect(run(daemonSet).outcome).toMatchObject({ patch: [], skip: 'excluded_namespace' });
    expect(run(daemonSet, { namespace: 'somewhere-else' }).outcome).toMatchObject({ patch: [], skip: 'excluded_label' });
  });

  it('16: a mirror pod is never mutated', () => {
    expect(run(fixture('16-pod-mirror.yaml')).outcome).toMatchObject({ patch: [], skip: 'mirror_pod' });
  });
});

describe('lxcfs mutator rules', () => {
  it('never patches a Pod UPDATE, nor a Job UPDATE; a Job CREATE is patched', () => {
    expect(run(fixture('01-pod-nginx-lxcfs.yaml'), { operation: 'UPDATE' }).outcome).toMatchObject({ patch: [], skip: 'unsupported_operation' });
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'j', namespace: 'data' },
      spec: structuredClone((fixture('10-cronjob-backup.yaml')['spec'] as { jobTemplate: { spec: unknown } }).jobTemplate.spec),
    };
    expect(run(job, { operation: 'UPDATE' }).outcome.skip).toBe('unsupported_operation');
    expect(run(job).outcome.injected).toEqual(['lxcfs']);
  });

  it('skips excluded namespaces, including podvisor\'s own', () => {
    for (const ns of ['kube-system', 'kube-public', 'kube-node-lease', 'podvisor-system']) {
      expect(run(fixture('01-pod-nginx-lxcfs.yaml'), { namespace: ns }).outcome.skip).toBe('excluded_namespace');
    }
  });

  it('podvisor.io/containers may name init containers and native sidecars; unknown and ephemeral names warn', () => {
    const deployment = fixture('02-deployment-java-sidecar.yaml');
    const annotations = (podOf(deployment).metadata!.annotations ??= {});
    annotations['podvisor.io/containers'] = ' log-shipper , db-migrate,nope';
    const r = run(deployment);
    expect(mountPaths(container(r.result, 'log-shipper'))).toEqual(['/var/log/orders', '/fluent-bit/etc', ...LXCFS_PATHS]);
    expect(mountPaths(container(r.result, 'db-migrate'))).toEqual(['/flyway/sql', ...LXCFS_PATHS]);
    expect(mountPaths(container(r.result, 'orders-api'))).toEqual(['/var/log/orders']);
    expect(r.outcome.warnings).toContain('podvisor.io/containers: no container named "nope"');
    expect(JSON.parse(annotationsOf(r.result)['podvisor.io/status']!).containers).toEqual(['db-migrate', 'log-shipper']);
    expectValidAndIdempotent(r);

    const pod = fixture('01-pod-nginx-lxcfs.yaml');
    (pod['metadata'] as { annotations: Record<string, string> }).annotations['podvisor.io/containers'] = 'debugger';
    (pod['spec'] as Record<string, unknown>)['ephemeralContainers'] = [{ name: 'debugger', image: 'busybox' }];
    const e = run(pod);
    expect(e.outcome.warnings).toContain('podvisor.io/containers: "debugger" is an ephemeral container; never injected');
    expect(lxcfsVolumes(e.result)).toEqual([]);
  });

  it('reuses an older webhook\'s volume that points at the same host path', () => {
    const pod = fixture('01-pod-nginx-lxcfs.yaml');
    const spec = pod['spec'] as { volumes: Volume[]; containers: Container[] };
    spec.volumes.push({ name: 'lxcfs-proc-meminfo', hostPath: { path: `${DEFAULT_LXCFS_HOST_ROOT}/proc/meminfo/`, type: 'File' } });
    const r = run(pod);
    const nginx = container(r.result, 'nginx');
    expect(nginx.volumeMounts!.find((m) => m.mountPath === '/proc/meminfo')!.name).toBe('lxcfs-proc-meminfo');
    expect(podOf(r.result).spec.volumes!.map((v) => v.name)).not.toContain('podvisor-lxcfs-proc-meminfo');
    expectValidAndIdempotent(r);
  });

  it('follows the configured host root and file list (slabinfo opt-in, cpu directory variant)', () => {
    const env = { config: config({ lxcfs: { hostRoot: '/var/lib/lxc/lxcfs', files: ['/proc/meminfo', '/proc/slabinfo', '/sys/devices/system/cpu'] } }) };
    const r = run(fixture('01-pod-nginx-lxcfs.yaml'), { env });
    expect(podOf(r.result).spec.volumes!.slice(2)).toEqual([
      { name: 'podvisor-lxcfs-proc-meminfo', hostPath: { path: '/var/lib/lxc/lxcfs/proc/meminfo', type: 'File' } },
      { name: 'podvisor-lxcfs-proc-slabinfo', hostPath: { path: '/var/lib/lxc/lxcfs/proc/slabinfo', type: 'File' } },
      { name: 'podvisor-lxcfs-sys-devices-system-cpu', hostPath: { path: '/var/lib/lxc/lxcfs/sys/devices/system/cpu', type: 'Directory' } },
    ]);
    expectValidAndIdempotent(r);
  });

  it('every volume name is a DNS-1123 label of at most 63 characters', () => {
    for (const file of ['/proc/cpuinfo', '/proc/meminfo', '/proc/slabinfo', '/sys/devices/system/cpu/online', '/sys/devices/system/cpu'] as const) {
      expect(lxcfsVolumeName(file)).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(lxcfsVolumeName(file).length).toBeLessThanOrEqual(63);
    }
  });

  it('a Pod created from a template that opted in through the workload\'s own annotation passes unchanged', () => {
    const deployment = fixture('02-deployment-java-sidecar.yaml');
    delete podOf(deployment).metadata!.annotations;
    (deployment['metadata'] as Record<string, unknown>)['annotations'] = { 'podvisor.io/lxcfs': 'true' };
    const r = run(deployment);
    expect(r.outcome.injected).toEqual(['lxcfs']);
    const pod = { apiVersion: 'v1', kind: 'Pod', ...structuredClone((r.result['spec'] as { template: object }).template) };
    expect(run(pod, { namespace: 'web' }).outcome.patch).toEqual([]);
  });
});
