import { readFileSync } from 'node:fs';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { beforeAll, expect, it } from 'vitest';
import { DEFAULT_LXCFS_HOST_ROOT } from '../../src/config/schema.js';
import { cgroupLimits, createLimitedCgroup } from './support/cgroup.js';
import { fuseDevice, hostDescribe, must, root, run, teardown, tempDir, tool, uniqueSuffix } from './support/host.js';
import { lxcfsContainer, startLxcfsLikeTheDaemonSet, type RunningLxcfs } from './support/lxcfs-daemonset.js';
import { inject, onlyContainer, podWith } from './support/podvisor.js';

/**
 * The LXCFS view end to end: lxcfs started as deploy/components/lxcfs starts it, a Pod with limits rendered by
 * `podvisor inject` with the embedded defaults, and its container realized as far as Linux allows without a kubelet:
 * a cgroup with the Pod's limits, a new PID and mount namespace, each injected hostPath bind-mounted read-only at its
 * mountPath after the check kubelet makes for its hostPath type. Then what a user looks at.
 */

const MEMORY_MIB = 256;
const CPUS = 1;

/** What a user runs in the container; each section's output follows its `@@ name` line. */
const LOOK = [
  ['free', 'free -m'],
  ['cpuinfo', "grep -c '^processor' /proc/cpuinfo"],
  ['online', 'cat /sys/devices/system/cpu/online'],
  ['getconf', 'getconf _NPROCESSORS_ONLN'],
  ['nproc', 'nproc'],
  ['uptime', 'cat /proc/uptime'],
  ['stat', "grep -c '^cpu[0-9]' /proc/stat"],
  ['loadavg', 'cat /proc/loadavg'],
  ['meminfo-write', 'echo x 2>&1 > /proc/meminfo && echo writable || echo read-only'],
] as const;
type Section = (typeof LOOK)[number][0];

function sections(output: string): Record<Section, string> {
  const out = {} as Record<Section, string>;
  for (const part of output.split('@@ ').slice(1)) {
    const [name = '', ...body] = part.split('\n');
    out[name as Section] = body.join('\n').trim();
  }
  return out;
}

/** The bind mounts the rendered container gets: [hostPath, hostPath type, mountPath, readOnly]. */
function hostPathMounts(pod: Pod): [string, string, string, boolean][] {
  const volumes = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  return (onlyContainer(pod).volumeMounts ?? []).flatMap((m) => {
    const hostPath = volumes.get(m.name)?.hostPath;
    return hostPath === undefined ? [] : [[hostPath.path, hostPath.type ?? '', m.mountPath, m.readOnly === true] as [string, string, string, boolean]];
  });
}

/** kubelet's hostPath type check (File: a regular file; Directory: a directory), as `test` flags. */
const TYPE_TEST: Record<string, string> = { File: '-f', Directory: '-d' };

hostDescribe('LXCFS view: lxcfs as the DaemonSet runs it, a Pod rendered with the default config', [root, fuseDevice, cgroupLimits, tool('lxcfs', 'lxcfs'), tool('free', 'procps'), tool('unshare', 'util-linux'), tool('nsenter', 'util-linux')], () => {
  const cleanup = teardown();
  let lxcfs: RunningLxcfs;
  let pod: Pod;
  let look: Record<Section, string>;

  beforeAll(async () => {
    const dir = tempDir('lxcfs');
    cleanup.add('remove the temp dir', () => must('rm', ['-rf', dir]));
    lxcfs = await startLxcfsLikeTheDaemonSet();
    cleanup.add('stop lxcfs', () => lxcfs.stop());
    pod = inject(podWith({ 'podvisor.io/lxcfs': 'true' }, { cpu: String(CPUS), memory: `${MEMORY_MIB}Mi` }), { dir });

    const cgroup = createLimitedCgroup(`podvisor-host-${uniqueSuffix()}`, { memoryBytes: MEMORY_MIB * 1024 * 1024, cpus: CPUS });
    cleanup.add('remove the cgroup', () => cgroup.remove());
    const mounts = hostPathMounts(pod)
      .map(([source, type, target, readOnly]) => `test ${TYPE_TEST[type] ?? '-e'} ${source} || { echo "hostPath ${source} is not a ${type}" >&2; exit 1; }\nmount --bind ${readOnly ? '-o ro ' : ''}${source} ${target}`)
      .join('\n');
    const container = `set -e\n${mounts}\n${LOOK.map(([name, sh]) => `echo "@@ ${name}"; ${sh}`).join('\n')}`;
    // Join the cgroup, enter lxcfs's mount namespace (the node's, where its FUSE mount is), then the container's own
    // PID and mount namespaces with a fresh /proc.
    const join = cgroup.directories.map((d) => `echo $$ > ${d}/cgroup.procs`).join('\n');
    const r = run('sh', ['-ec', `${join}\nexec nsenter ${lxcfs.nsenterArgs.join(' ')} unshare -m -p -f --propagation private --mount-proc sh -c "$CONTAINER"`], {
      env: { ...process.env, CONTAINER: container },
    });
    expect(r.code, `container failed: ${r.stderr}\nlxcfs: ${lxcfs.stderr()}`).toBe(0);
    look = sections(r.stdout);
    console.log(`[proof] inside the container (limits cpu ${CPUS}, memory ${MEMORY_MIB}Mi):\n${r.stdout}`);
  });

  it('the embedded default lxcfs root is where the DaemonSet serves, and every injected hostPath exists there with its type', () => {
    expect(lxcfs.root).toBe(DEFAULT_LXCFS_HOST_ROOT);
    const mounts = hostPathMounts(pod);
    expect(mounts.length).toBeGreaterThan(0);
    for (const [source, type, , readOnly] of mounts) {
      expect(source.startsWith(`${lxcfs.root}/`), source).toBe(true);
      expect(readOnly, source).toBe(true);
      expect(run('nsenter', [...lxcfs.nsenterArgs, 'test', TYPE_TEST[type] ?? '-e', source]).code, `${source} (${type}) in the running lxcfs`).toBe(0);
    }
  });

  it('the DaemonSet starts lxcfs with its manifest flags (-l, --enable-cfs)', () => {
    const flags = lxcfsContainer().env?.find((e) => e.name === 'LXCFS_FLAGS')?.value ?? '';
    const cmdline = readFileSync(`/proc/${lxcfs.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of flags.split(/\s+/).filter((f) => f.length > 0)) expect(cmdline).toContain(flag);
  });

  it(`free shows the memory limit (${MEMORY_MIB} MiB), not the host's`, () => {
    const total = Number(/^Mem:\s+(\d+)/m.exec(look.free)?.[1]);
    expect(total).toBe(MEMORY_MIB);
    expect(Number(/^Mem:\s+(\d+)/m.exec(must('free', ['-m']))?.[1])).toBeGreaterThan(MEMORY_MIB);
  });

  it(`/proc/cpuinfo, /sys/devices/system/cpu/online, getconf and /proc/stat show ${CPUS} CPU from the CFS quota`, () => {
    expect(Number(look.cpuinfo)).toBe(CPUS);
    expect(look.online).toBe(CPUS === 1 ? '0' : `0-${CPUS - 1}`);
    expect(Number(look.getconf)).toBe(CPUS);
    expect(Number(look.stat)).toBe(CPUS);
  });

  it('nproc follows the CPU affinity (sched_getaffinity), which lxcfs does not change: it shows the host CPUs', () => {
    expect(Number(look.nproc)).toBe(Number(must('nproc', []).trim()));
  });

  it("/proc/uptime is the container's age, not the host's", () => {
    const uptime = Number(look.uptime.split(/\s+/)[0]);
    const host = Number(readFileSync('/proc/uptime', 'utf8').split(/\s+/)[0]);
    expect(uptime).toBeLessThan(60);
    expect(uptime).toBeLessThan(host);
  });

  it("/proc/loadavg counts the container's tasks, not the host's", () => {
    const tasks = (loadavg: string) => Number(loadavg.split(/\s+/)[3]?.split('/')[1]);
    expect(tasks(look.loadavg)).toBeLessThan(tasks(readFileSync('/proc/loadavg', 'utf8')));
  });

  it('the LXCFS files are mounted read-only', () => {
    expect(look['meminfo-write']).toContain('read-only');
  });
});
