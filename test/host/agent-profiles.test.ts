import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { beforeAll, expect, it } from 'vitest';
import { AGENT_FEATURES, CAPABILITY_MODELS, type AgentFeature, type CapabilityModel } from '../../src/features/agent-profiles.js';
import { runConfined, capshName, type Step } from './support/confined.js';
import { hostDescribe, must, path, root, teardown, tempDir, tool } from './support/host.js';
import { inject, onlyContainer, podWith } from './support/podvisor.js';

/**
 * Each `podvisor.io/agent` feature against the real kernel: podvisor renders a Pod with the annotation, and the
 * operation the feature exists for runs as uid 0 with exactly the capabilities podvisor granted (sufficient), then
 * once per granted capability without it, where it must fail (minimal). The capabilities come from podvisor's own
 * output, never from this file.
 */

interface World {
  dir: string;
  probe: string;
  /** A process of another user, in its own mount and network namespace, standing in for another pod's process. */
  target: number;
  targetUid: number;
  targetNetns: string;
  loop: string;
}

interface Operation {
  /** What the feature exists for, as the proof table says it. */
  readonly proves: string;
  readonly steps: (pod: Pod) => readonly Step[];
  /** Full-root shell before the capabilities are dropped (interfaces, the mounts the pod spec gives the container). */
  readonly setup?: (pod: Pod) => string;
  readonly newNetworkNamespace?: boolean;
}

/** The mountPath podvisor gave the host's tracefs (the ebpf-tracing profile's mount), or undefined. */
function tracefsMountPath(pod: Pod): string | undefined {
  const volume = pod.spec?.volumes?.find((v) => v.hostPath?.path === '/sys/kernel/tracing');
  return onlyContainer(pod).volumeMounts?.find((m) => m.name === volume?.name && m.readOnly === true)?.mountPath;
}

const inTarget = (sh: string): string => `nsenter -t "$TARGET" -m sh -c '${sh}'`;
const probeFile = '"$DIR/target/app/probe-$RUN"';
/** chmod(2) clears setgid silently for a group the caller is not in, unless it holds FSETID. */
const setgidKept = (file: string): string => `{ test "$(stat -c %a ${file})" = 2755 || { echo "mode $(stat -c %a ${file}): setgid cleared"; false; }; }`;

const OPERATIONS: { readonly [F in AgentFeature]: Operation } = {
  'host-metrics': {
    proves: 'read host NIC counters and filesystem usage',
    steps: () => [
      { name: 'read NIC counters (/proc/net/dev)', sh: `awk 'NR > 2 { n++ } END { exit n == 0 }' /proc/net/dev` },
      { name: 'statfs the host root (df /)', sh: 'df -P / >/dev/null' },
    ],
  },
  process: {
    proves: "read another user's /proc/<pid>/environ and /proc/<pid>/fd",
    steps: () => [
      { name: "read another user's /proc/<pid>/environ", sh: `tr '\\0' '\\n' < /proc/$TARGET/environ | grep -qx PODVISOR_TARGET=1` },
      { name: "list another user's /proc/<pid>/fd", sh: 'ls /proc/$TARGET/fd | grep -qx 0' },
    ],
  },
  'container-metrics': {
    proves: "read another container's per-process I/O and open files",
    steps: () => [
      { name: "read another user's /proc/<pid>/io", sh: "grep -q '^rchar:' /proc/$TARGET/io" },
      { name: "count another user's open files (/proc/<pid>/fd)", sh: 'test "$(ls /proc/$TARGET/fd | wc -l)" -gt 0' },
    ],
  },
  'log-collection': {
    proves: "read another user's 0600 log in a 0700 directory",
    steps: () => [{ name: "read another user's 0600 log in a 0700 directory", sh: 'grep -q collected-line "$DIR/logs/app.log"' }],
  },
  'log-discovery': {
    proves: "read an application's log through /proc/<pid>/root",
    steps: () => [{ name: "read another user's 0600 log through /proc/<pid>/root", sh: 'grep -q discovered-line "/proc/$TARGET/root$DIR/target/log/app.log"' }],
  },
  'network-performance': {
    proves: 'attach XDP and tc programs, capture packets, trace TCP, map flows to pods',
    newNetworkNamespace: true,
    setup: () =>
      'ip link add pv0 type veth peer name pv1 && ip link set pv0 up && ip link set pv1 up && mkdir "$DIR/bpffs-$RUN" && mount -t bpf bpf "$DIR/bpffs-$RUN"',
    steps: () => [
      { name: 'attach an XDP program (BPF link)', sh: '"$PROBE" xdp pv0' },
      {
        name: 'attach a tc program (clsact + cls_bpf)',
        sh: '"$PROBE" sched-cls "$DIR/bpffs-$RUN/cls" && tc qdisc add dev pv0 clsact && tc filter add dev pv0 ingress bpf da object-pinned "$DIR/bpffs-$RUN/cls"',
      },
      { name: 'capture packets (AF_PACKET raw socket)', sh: '"$PROBE" packet pv0' },
      { name: 'trace TCP retransmits (raw tracepoint tcp_retransmit_skb)', sh: '"$PROBE" raw-tracepoint tcp_retransmit_skb' },
      { name: "map a flow to its pod (readlink another user's /proc/<pid>/ns/net)", sh: 'readlink -v /proc/$TARGET/ns/net >/dev/null' },
    ],
  },
  'netns-enter': {
    proves: "setns into another pod's network namespace",
    steps: () => [{ name: "setns into another user's network namespace", sh: `nsenter -t "$TARGET" -n sh -c 'test "$(readlink /proc/self/ns/net)" = "$TARGET_NETNS"'` }],
  },
  'ebpf-tracing': {
    proves: 'attach a BPF program to a tracepoint found in tracefs',
    setup: (pod) => {
      const mountPath = tracefsMountPath(pod);
      // The host may have tracefs mounted there already (perf and bpftrace mount it); the kernel refuses a second
      // mount of it on the same path, so this private namespace's copy of that mount is replaced.
      return mountPath === undefined ? '' : `if mountpoint -q ${mountPath}; then umount ${mountPath}; fi; mount -t tracefs -o ro nodev ${mountPath}`;
    },
    steps: (pod) => [
      { name: 'attach a BPF program to tracepoint sched/sched_switch (id from tracefs)', sh: `"$PROBE" tracepoint sched sched_switch ${tracefsMountPath(pod) ?? '/sys/kernel/tracing'}` },
    ],
  },
  'ebpf-profiling': {
    proves: 'sample stacks with a perf_event BPF program and symbolize them',
    steps: () => [
      { name: 'sample all processes on CPU 0 (perf_event BPF program)', sh: '"$PROBE" perf-event' },
      { name: 'kernel symbol addresses (/proc/kallsyms not zeroed)', sh: "awk 'NR == 1 { if ($1 ~ /^0+$/) { print \"addresses read as \" $1; exit 1 } }' /proc/kallsyms" },
      { name: "another user's memory map (/proc/<pid>/maps)", sh: 'grep -q . /proc/$TARGET/maps' },
      { name: "another user's executable for its symbols (/proc/<pid>/exe)", sh: 'head -c 4 /proc/$TARGET/exe | grep -q ELF' },
    ],
  },
  'kernel-events': {
    proves: 'hook OOM kills and read the kernel log',
    steps: () => [
      { name: 'hook OOM kills (raw tracepoint mark_victim)', sh: '"$PROBE" raw-tracepoint mark_victim' },
      { name: 'read the kernel log through syslog(2) (dmesg --syslog)', sh: 'dmesg --syslog >/dev/null' },
    ],
  },
  'apm-injection': {
    proves: "drop a probe into another pod's filesystem: setns, write, chown, chmod, setcap",
    steps: () => [
      { name: "enter another user's mount namespace (setns)", sh: inTarget('true') },
      { name: "write the probe into the app user's 0755 directory", sh: inTarget(`cp /usr/bin/true ${probeFile}`) },
      { name: 'hand the probe to the app user (chown)', sh: inTarget(`chown "$TARGET_UID:$TARGET_UID" ${probeFile}`) },
      { name: "chmod 2755 the app user's probe, setgid kept", sh: inTarget(`chmod 2755 ${probeFile} && ${setgidKept(probeFile)}`) },
      { name: 'file capabilities on the probe (setcap)', sh: inTarget(`setcap cap_net_bind_service+ep ${probeFile} && getcap ${probeFile} | grep -q cap_net_bind_service`) },
      { name: "read the app's environment (/proc/<pid>/environ)", sh: `tr '\\0' '\\n' < /proc/$TARGET/environ | grep -qx PODVISOR_TARGET=1` },
    ],
  },
  'run-as-non-root': {
    proves: 'prepare files for the agent user, then switch to it',
    steps: () => [
      { name: 'give a file the agent group (chown root:<gid>)', sh: 'cp /usr/bin/true "$DIR/agent-$RUN" && chown "0:$TARGET_UID" "$DIR/agent-$RUN"' },
      { name: 'chmod 2755 that file, setgid kept', sh: `chmod 2755 "$DIR/agent-$RUN" && ${setgidKept('"$DIR/agent-$RUN"')}` },
      { name: 'file capabilities on it (setcap)', sh: 'setcap cap_net_bind_service+ep "$DIR/agent-$RUN" && getcap "$DIR/agent-$RUN" | grep -q cap_net_bind_service' },
      { name: 'switch to the agent user (setgroups, setresgid, setresuid)', sh: `setpriv --reuid "$TARGET_UID" --regid "$TARGET_UID" --clear-groups sh -c 'test "$(id -u):$(id -g)" = "$TARGET_UID:$TARGET_UID"'` },
    ],
  },
  'host-chroot': {
    proves: 'chroot into the host root',
    steps: () => [{ name: 'chroot into the host root', sh: 'chroot / true' }],
  },
  'host-trim': {
    proves: 'fstrim a host filesystem',
    setup: () => 'mkdir "$DIR/trim-$RUN" && mount "$LOOP" "$DIR/trim-$RUN"',
    steps: () => [{ name: 'fstrim a mounted ext4 on a loop device (FITRIM)', sh: 'fstrim "$DIR/trim-$RUN"' }],
  },
};

/** The proof table's modern and legacy cells for a feature (docs/host-proofs.md), which must say what podvisor grants. */
function proofTableRow(feature: AgentFeature): [string, string] | undefined {
  const table = readFileSync(join(import.meta.dirname, '../../docs/host-proofs.md'), 'utf8');
  const line = table.split('\n').find((l) => l.startsWith(`| \`${feature}\` |`));
  const cells = line?.split('|').map((c) => c.trim());
  return cells === undefined ? undefined : [cells[2] ?? '', cells[3] ?? ''];
}

/** BPF memory has been charged to the memory cgroup since 5.11; before that, to RLIMIT_MEMLOCK. */
function kernelAtLeast(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}
const BPF_MEMLOCK = !kernelAtLeast(5, 11);

function render(world: World, feature: AgentFeature, model: CapabilityModel, bpfMemlock = BPF_MEMLOCK): Pod {
  return inject(podWith({ 'podvisor.io/agent': feature }), { dir: world.dir, config: { agent: { capabilityModel: model, bpfMemlock } } });
}

function granted(pod: Pod): string[] {
  const sc = onlyContainer(pod).securityContext;
  expect(sc?.capabilities?.drop).toEqual(['ALL']);
  expect(sc?.privileged ?? false).toBe(false);
  return sc?.capabilities?.add ?? [];
}

/** The uid the rendered Pod runs as: podvisor sets none, so the image's, which for these agents is root. */
function runAsUser(pod: Pod): number {
  return onlyContainer(pod).securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser ?? 0;
}

function confine(world: World, pod: Pod, operation: Operation, capabilities: readonly string[]) {
  return runConfined(
    {
      capabilities,
      steps: operation.steps(pod),
      setup: operation.setup?.(pod),
      newNetworkNamespace: operation.newNetworkNamespace,
      env: {
        DIR: world.dir,
        PROBE: world.probe,
        TARGET: String(world.target),
        TARGET_UID: String(world.targetUid),
        TARGET_NETNS: world.targetNetns,
        LOOP: world.loop,
      },
    },
    world.dir,
  );
}

hostDescribe(
  'agent profiles on a real kernel: sufficient and minimal',
  [root, tool('capsh', 'libcap2-bin'), tool('setcap', 'libcap2-bin'), tool('unshare', 'util-linux'), tool('nsenter', 'util-linux'), tool('mountpoint', 'util-linux'), tool('setpriv', 'util-linux'), tool('fstrim', 'util-linux'), tool('losetup', 'util-linux'), tool('mkfs.ext4', 'e2fsprogs'), tool('tc', 'iproute2'), tool('ip', 'iproute2'), tool('dmesg', 'util-linux'), tool('gcc', 'gcc'), path('/usr/include/linux/bpf.h', 'Debian package linux-libc-dev')],
  () => {
    const cleanup = teardown();
    const world = {} as World;

    beforeAll(async () => {
      world.dir = tempDir('agent');
      cleanup.add('remove the temp dir', () => rmSync(world.dir, { recursive: true, force: true }));
      chmodSync(world.dir, 0o755);
      world.probe = join(world.dir, 'bpf-probe');
      must('gcc', ['-O2', '-Wall', '-o', world.probe, join(import.meta.dirname, 'support/bpf-probe.c')]);
      world.targetUid = 40_000 + Math.floor(Math.random() * 20_000);
      const uid = String(world.targetUid);

      mkdirSync(join(world.dir, 'logs'));
      writeFileSync(join(world.dir, 'logs/app.log'), 'collected-line\n');
      must('chown', ['-R', `${uid}:${uid}`, join(world.dir, 'logs')]);
      chmodSync(join(world.dir, 'logs'), 0o700);
      chmodSync(join(world.dir, 'logs/app.log'), 0o600);

      // Another pod's process: its own mount namespace (a tmpfs with its app dir and log) and network namespace.
      mkdirSync(join(world.dir, 'target'));
      const target: ChildProcess = spawn(
        'unshare',
        ['-m', '-n', '--propagation', 'private', 'sh', '-ec', [
          `mount -t tmpfs tmpfs "$DIR/target"`,
          `mkdir "$DIR/target/app" "$DIR/target/log"`,
          `echo discovered-line > "$DIR/target/log/app.log"`,
          `chown -R "$U:$U" "$DIR/target/app" "$DIR/target/log"`,
          `chmod 700 "$DIR/target/log" && chmod 600 "$DIR/target/log/app.log"`,
          `exec env -i PODVISOR_TARGET=1 setpriv --reuid "$U" --regid "$U" --clear-groups sleep 3600`,
        ].join('\n')],
        { env: { ...process.env, DIR: world.dir, U: uid }, stdio: 'ignore' },
      );
      cleanup.add('stop the target process', () => target.kill('SIGKILL'));
      world.target = target.pid!;
      for (let i = 0; i < 100 && !/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${world.target}/status`, 'utf8'))?.[1]?.startsWith(uid); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(readFileSync(`/proc/${world.target}/cmdline`, 'utf8')).toContain('sleep');
      world.targetNetns = must('readlink', [`/proc/${world.target}/ns/net`]).trim();

      const image = join(world.dir, 'trim.img');
      must('truncate', ['-s', '64M', image]);
      must('mkfs.ext4', ['-q', '-F', image]);
      world.loop = must('losetup', ['--find', '--show', image]).trim();
      cleanup.add(`detach ${world.loop}`, () => must('losetup', ['-d', world.loop]));
    });

    it('every agent feature has an operation that proves it, and a row in the proof table (docs/host-proofs.md)', () => {
      expect(Object.keys(OPERATIONS).sort()).toEqual([...AGENT_FEATURES].sort());
      for (const feature of AGENT_FEATURES) expect(proofTableRow(feature), feature).toBeDefined();
    });

    for (const model of CAPABILITY_MODELS) {
      for (const feature of AGENT_FEATURES) {
        const operation = OPERATIONS[feature];
        it(`${feature} (${model}): ${operation.proves}, with exactly podvisor's capabilities, and not without any one of them`, () => {
          const pod = render(world, feature, model);
          const capabilities = granted(pod);
          expect(runAsUser(pod)).toBe(0);

          const row = proofTableRow(feature);
          const documented = model === 'modern' || row?.[1] === 'same' ? row?.[0] : row?.[1];
          expect(documented, `docs/host-proofs.md lists ${feature} (${model})`).toBe(capabilities.length === 0 ? '–' : capabilities.join(', '));

          const full = confine(world, pod, operation, capabilities);
          expect(full.effective.split(',').filter((c) => c.length > 0).sort()).toEqual(capabilities.map(capshName).sort());
          expect(full.ok, `${feature} (${model}) with [${capabilities.join(', ')}]: step "${full.failed?.step}" failed:\n${full.failed?.output}`).toBe(true);

          const unneeded: string[] = [];
          const evidence: string[] = [];
          for (const capability of capabilities) {
            const without = confine(world, pod, operation, capabilities.filter((c) => c !== capability));
            if (without.ok) unneeded.push(capability);
            else evidence.push(`  without ${capability}: "${without.failed?.step}" fails: ${without.failed?.output.split('\n').at(-1)}`);
          }
          console.log(`[proof] ${feature} (${model}) [${capabilities.join(', ')}]: sufficient\n${evidence.join('\n')}`);
          expect(unneeded, `${feature} (${model}): "${operation.proves}" succeeds without ${unneeded.join(', ')}: the profile is not minimal`).toEqual([]);
        });
      }
    }

    it(`SYS_RESOURCE for BPF memlock (bpfMemlock) adds only SYS_RESOURCE${BPF_MEMLOCK ? '' : '; this kernel charges BPF memory to the memory cgroup, so it is documented, not proven'}`, () => {
      for (const feature of ['network-performance', 'ebpf-tracing', 'ebpf-profiling', 'kernel-events'] as const) {
        const withMemlock = granted(render(world, feature, 'modern', true));
        const without = granted(render(world, feature, 'modern', false));
        expect(withMemlock.filter((c) => !without.includes(c))).toEqual(['SYS_RESOURCE']);
      }
      console.log(`[proof] kernel ${release()}: BPF memory charged to ${BPF_MEMLOCK ? 'RLIMIT_MEMLOCK' : 'the memory cgroup (≥ 5.11)'}; the proofs run with bpfMemlock: ${BPF_MEMLOCK}`);
    });
  },
);
