import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { beforeAll, expect, it } from 'vitest';
import { allCapabilities, capshName } from './support/confined.js';
import { fuseDevice, hostDescribe, must, root, run, teardown, tempDir, tool, uniqueSuffix, type Requirement } from './support/host.js';
import { inject, onlyContainer, podWith } from './support/podvisor.js';

/**
 * FUSE without `privileged`: a Pod with `podvisor.io/fuse` rendered by `podvisor inject`, and its container realized
 * with the capability set and device access that output gives it: a squashfuse mount of a real image, then a read
 * through it. The same without SYS_ADMIN, and without the device, must fail.
 *
 * Model (the one thing no kubelet is here to do): the container runtime's default capability set, which the Pod's
 * `capabilities.add`/`drop` edit, is containerd's and Docker's default list (containerd pkg/oci defaultUnixCaps,
 * moby oci/caps/defaults.go). The device plugin's `/dev/fuse` grant is modelled as runc's default device-cgroup
 * allowlist plus `c 10:229 rwm`, the entry a device plugin's DeviceSpec adds.
 */
const RUNTIME_DEFAULT_CAPABILITIES = ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'NET_RAW', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];
const RUNC_DEFAULT_DEVICES = ['c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:2 rwm', 'c 136:* rwm'];
const FUSE_DEVICE = 'c 10:229 rwm';

const DEVICES_ROOT = '/sys/fs/cgroup/devices';
const devicesCgroup: Requirement = {
  name: 'cgroup v1 devices controller',
  problem: () => (existsSync(join(DEVICES_ROOT, 'devices.allow')) ? undefined : 'no cgroup v1 devices hierarchy (cgroup v2 filters devices with BPF programs)'),
};

function ownDevicesCgroup(): string {
  const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes('devices'));
  return join(DEVICES_ROOT, line?.split(':')[2] ?? '/');
}

/** The container's capability set: the runtime default, minus `drop`, plus `add` (ALL drops everything). */
function containerCapabilities(pod: Pod): string[] {
  const caps = onlyContainer(pod).securityContext?.capabilities;
  const drop = caps?.drop ?? [];
  const base = drop.includes('ALL') ? [] : RUNTIME_DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c));
  return [...new Set([...base, ...(caps?.add ?? [])])];
}

hostDescribe('FUSE without privileged: the capability set and device podvisor gives a FUSE container', [root, fuseDevice, devicesCgroup, tool('squashfuse', 'squashfuse'), tool('mksquashfs', 'squashfs-tools'), tool('fusermount3', 'fuse3'), tool('capsh', 'libcap2-bin'), tool('unshare', 'util-linux')], () => {
  const cleanup = teardown();
  let dir: string;
  let pod: Pod;

  beforeAll(() => {
    dir = tempDir('fuse');
    cleanup.add('remove the temp dir', () => must('rm', ['-rf', dir]));
    mkdirSync(join(dir, 'content'));
    writeFileSync(join(dir, 'content/hello.txt'), 'read through FUSE\n');
    must('mksquashfs', [join(dir, 'content'), join(dir, 'image.sqfs'), '-quiet', '-noappend']);
    mkdirSync(join(dir, 'mnt'));
    pod = inject(podWith({ 'podvisor.io/fuse': 'true' }), { dir });
  });

  /** Runs squashfuse and a read in the realized container: its device cgroup, PID and mount namespace, capabilities. */
  function mountAndRead(capabilities: readonly string[], devices: readonly string[]) {
    const cgroup = join(ownDevicesCgroup(), `podvisor-host-${uniqueSuffix()}`);
    mkdirSync(cgroup);
    try {
      writeFileSync(join(cgroup, 'devices.deny'), 'a');
      for (const d of devices) writeFileSync(join(cgroup, 'devices.allow'), d);
      const granted = new Set(capabilities.map(capshName));
      const dropped = allCapabilities().filter((c) => !granted.has(c));
      const daemon = [
        'squashfuse -f "$DIR/image.sqfs" "$DIR/mnt" & daemon=$!',
        'for i in $(seq 50); do grep -q " $DIR/mnt fuse" /proc/self/mounts && break; kill -0 $daemon 2>/dev/null || break; sleep 0.1; done',
        'cat "$DIR/mnt/hello.txt" && umount "$DIR/mnt"; status=$?; kill $daemon 2>/dev/null; wait; exit $status',
      ].join('\n');
      return run('sh', ['-ec', `echo $$ > ${cgroup}/cgroup.procs\nexec unshare -m -p -f --propagation private --mount-proc capsh --drop=${dropped.join(',')} --inh= -- -c "$DAEMON"`], {
        env: { ...process.env, DIR: dir, DAEMON: daemon },
      });
    } finally {
      // The container's processes are gone with its PID namespace; a cgroup keeps none after they exit.
      run('rmdir', [cgroup]);
    }
  }

  it('podvisor asks for SYS_ADMIN, the FUSE device and the FUSE AppArmor profile, never privileged', () => {
    const container = onlyContainer(pod);
    expect(container.securityContext?.privileged ?? false).toBe(false);
    expect(container.securityContext?.capabilities?.add).toContain('SYS_ADMIN');
    expect(container.resources?.limits?.['smarter-devices/fuse']).toBe('1');
    expect(container.securityContext?.appArmorProfile).toEqual({ type: 'Localhost', localhostProfile: 'podvisor-fuse' });
  });

  it('with exactly that set and /dev/fuse allowed, squashfuse mounts an image and a file reads through it', () => {
    const r = mountAndRead(containerCapabilities(pod), [...RUNC_DEFAULT_DEVICES, FUSE_DEVICE]);
    console.log(`[proof] FUSE with [${containerCapabilities(pod).join(', ')}]: exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('read through FUSE\n');
  });

  it('without SYS_ADMIN the mount fails', () => {
    const r = mountAndRead(containerCapabilities(pod).filter((c) => c !== 'SYS_ADMIN'), [...RUNC_DEFAULT_DEVICES, FUSE_DEVICE]);
    console.log(`[proof] FUSE without SYS_ADMIN: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('read through FUSE');
  });

  it('without the FUSE device in the device cgroup the mount fails', () => {
    const r = mountAndRead(containerCapabilities(pod), RUNC_DEFAULT_DEVICES);
    console.log(`[proof] FUSE without /dev/fuse allowed: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('read through FUSE');
  });
});

const PROFILE = join(import.meta.dirname, '../../deploy/components/apparmor/podvisor-fuse');

hostDescribe('the podvisor-fuse AppArmor profile', [tool('apparmor_parser', 'apparmor')], () => {
  it(`parses with apparmor_parser -Q (syntax only: AppArmor is ${existsSync('/sys/module/apparmor/parameters/enabled') ? 'present' : 'not enforced'} on this kernel)`, () => {
    if (!existsSync('/sys/module/apparmor/parameters/enabled')) console.log('[proof] AppArmor is not enabled on this kernel: the profile is syntax-checked, not enforced');
    const r = run('apparmor_parser', ['-Q', '-K', PROFILE]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(PROFILE, 'utf8')).toMatch(/^profile podvisor-fuse /m);
  });

  it('the syntax check rejects a broken profile (so a pass means something)', () => {
    const dir = tempDir('apparmor');
    try {
      const broken = join(dir, 'broken');
      writeFileSync(broken, readFileSync(PROFILE, 'utf8').replace('mount fstype=fuse,', 'mount fstype=fuse,,'));
      expect(run('apparmor_parser', ['-Q', '-K', broken]).code).not.toBe(0);
    } finally {
      must('rm', ['-rf', dir]);
    }
  });
});
