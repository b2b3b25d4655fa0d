// Table tests per Pod Security control, level and version. Expected verdicts follow the pod-security-admission
// sources named in each src/policy/checks/*.ts file (kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/
// policy/check_*.go and their _test.go tables), read for this work.
import type { PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { describe, expect, it } from 'vitest';
import { checksFor, PSS_CHECKS } from '../src/policy/checks/index.js';
import { pssViolations } from '../src/policy/evaluate.js';
import type { PodView } from '../src/policy/pod-view.js';
import type { Level } from '../src/policy/version.js';

/** A pod that passes restricted at every supported version. Each case changes one control. */
function base(): PodSpec {
  return {
    securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    containers: [{ name: 'app', image: 'app:1', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
  };
}

function view(spec: PodSpec, metadata: ObjectMeta = {}): PodView {
  return { metadata, spec, specField: 'spec', metaField: 'metadata' };
}

function failing(level: Level, version: string, spec: PodSpec, metadata?: ObjectMeta): string[] {
  return [...new Set(pssViolations(view(spec, metadata), level, version).map((v) => v.check))].sort();
}

type Case = {
  control: string;
  change: (spec: PodSpec, meta: ObjectMeta) => void;
  baseline: string[];
  restricted: string[];
  version?: string;
};

const c0 = (spec: PodSpec) => spec.containers[0]!;
const sc = (spec: PodSpec) => (c0(spec).securityContext ??= {});

const CASES: Case[] = [
  { control: 'compliant pod', change: () => {}, baseline: [], restricted: [] },
  // hostNamespaces (check_hostNamespaces.go)
  { control: 'hostNetwork', change: (s) => (s.hostNetwork = true), baseline: ['hostNamespaces'], restricted: ['hostNamespaces'] },
  { control: 'hostPID', change: (s) => (s.hostPID = true), baseline: ['hostNamespaces'], restricted: ['hostNamespaces'] },
  { control: 'hostIPC', change: (s) => (s.hostIPC = true), baseline: ['hostNamespaces'], restricted: ['hostNamespaces'] },
  { control: 'hostNetwork false', change: (s) => (s.hostNetwork = false), baseline: [], restricted: [] },
  // privileged (check_privileged.go): containers, init containers and ephemeral containers
  { control: 'privileged container', change: (s) => (sc(s).privileged = true), baseline: ['privileged'], restricted: ['privileged'] },
  { control: 'privileged false', change: (s) => (sc(s).privileged = false), baseline: [], restricted: [] },
  {
    control: 'privileged init container',
    change: (s) => (s.initContainers = [{ name: 'init', image: 'i', securityContext: { privileged: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }]),
    baseline: ['privileged'],
    restricted: ['privileged'],
  },
  {
    control: 'privileged ephemeral container',
    change: (s) => (s.ephemeralContainers = [{ name: 'debug', image: 'busybox', securityContext: { privileged: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }]),
    baseline: ['privileged'],
    restricted: ['privileged'],
  },
  // capabilities (check_capabilities_baseline.go, check_capabilities_restricted.go)
  { control: 'add SYS_ADMIN', change: (s) => (sc(s).capabilities = { drop: ['ALL'], add: ['SYS_ADMIN'] }), baseline: ['capabilities_baseline'], restricted: ['capabilities_restricted'] },
  { control: 'add NET_RAW (not baseline)', change: (s) => (sc(s).capabilities = { drop: ['ALL'], add: ['NET_RAW'] }), baseline: ['capabilities_baseline'], restricted: ['capabilities_restricted'] },
  { control: 'add CHOWN (baseline only)', change: (s) => (sc(s).capabilities = { drop: ['ALL'], add: ['CHOWN'] }), baseline: [], restricted: ['capabilities_restricted'] },
  { control: 'add CAP_CHOWN (exact strings)', change: (s) => (sc(s).capabilities = { drop: ['ALL'], add: ['CAP_CHOWN'] }), baseline: ['capabilities_baseline'], restricted: ['capabilities_restricted'] },
  { control: 'add NET_BIND_SERVICE', change: (s) => (sc(s).capabilities = { drop: ['ALL'], add: ['NET_BIND_SERVICE'] }), baseline: [], restricted: [] },
  { control: 'drop without ALL', change: (s) => (sc(s).capabilities = { drop: ['NET_RAW'] }), baseline: [], restricted: ['capabilities_restricted'] },
  { control: 'drop lower-case all', change: (s) => (sc(s).capabilities = { drop: ['all'] }), baseline: [], restricted: ['capabilities_restricted'] },
  { control: 'no capabilities', change: (s) => delete sc(s).capabilities, baseline: [], restricted: ['capabilities_restricted'] },
  // volumes (check_hostPathVolumes.go, check_restrictedVolumes.go)
  { control: 'hostPath volume', change: (s) => (s.volumes = [{ name: 'h', hostPath: { path: '/var/log' } }]), baseline: ['hostPathVolumes'], restricted: ['restrictedVolumes'] },
  { control: 'nfs volume', change: (s) => (s.volumes = [{ name: 'n', nfs: { server: 'nfs', path: '/' } }]), baseline: [], restricted: ['restrictedVolumes'] },
  {
    control: 'allowed volume types',
    change: (s) =>
      (s.volumes = [
        { name: 'a', configMap: { name: 'c' } },
        { name: 'b', secret: { secretName: 's' } },
        { name: 'c', emptyDir: {} },
        { name: 'd', persistentVolumeClaim: { claimName: 'p' } },
        { name: 'e', projected: { sources: [] } },
        { name: 'f', downwardAPI: {} },
        { name: 'g', csi: { driver: 'd' } },
        { name: 'h', ephemeral: {} },
        { name: 'i', image: { reference: 'data:1' } } as never,
      ]),
    baseline: [],
    restricted: [],
  },
  // hostPorts (check_hostPorts.go)
  { control: 'hostPort', change: (s) => (c0(s).ports = [{ containerPort: 80, hostPort: 8080 }]), baseline: ['hostPorts'], restricted: ['hostPorts'] },
  { control: 'hostPort 0', change: (s) => (c0(s).ports = [{ containerPort: 80, hostPort: 0 }]), baseline: [], restricted: [] },
  // appArmorProfile (check_appArmorProfile.go): fields and the beta annotation
  { control: 'AppArmor field Unconfined', change: (s) => (sc(s).appArmorProfile = { type: 'Unconfined' }), baseline: ['appArmorProfile'], restricted: ['appArmorProfile'] },
  { control: 'AppArmor pod field Unconfined', change: (s) => (s.securityContext!.appArmorProfile = { type: 'Unconfined' }), baseline: ['appArmorProfile'], restricted: ['appArmorProfile'] },
  { control: 'AppArmor field Localhost', change: (s) => (sc(s).appArmorProfile = { type: 'Localhost', localhostProfile: 'p' }), baseline: [], restricted: [] },
  {
    control: 'AppArmor annotation unconfined',
    change: (_s, m) => (m.annotations = { 'container.apparmor.security.beta.kubernetes.io/app': 'unconfined' }),
    baseline: ['appArmorProfile'],
    restricted: ['appArmorProfile'],
  },
  {
    control: 'AppArmor annotation localhost/',
    change: (_s, m) => (m.annotations = { 'container.apparmor.security.beta.kubernetes.io/app': 'localhost/k8s-nginx' }),
    baseline: [],
    restricted: [],
  },
  // seLinuxOptions (check_seLinuxOptions.go; container_engine_t from 1.31)
  { control: 'SELinux spc_t', change: (s) => (sc(s).seLinuxOptions = { type: 'spc_t' }), baseline: ['seLinuxOptions'], restricted: ['seLinuxOptions'] },
  { control: 'SELinux container_t', change: (s) => (sc(s).seLinuxOptions = { type: 'container_t', level: 's0:c1,c2' }), baseline: [], restricted: [] },
  { control: 'SELinux user', change: (s) => (s.securityContext!.seLinuxOptions = { user: 'system_u' }), baseline: ['seLinuxOptions'], restricted: ['seLinuxOptions'] },
  { control: 'SELinux container_engine_t @1.30', version: 'v1.30', change: (s) => (sc(s).seLinuxOptions = { type: 'container_engine_t' }), baseline: ['seLinuxOptions'], restricted: ['seLinuxOptions'] },
  { control: 'SELinux container_engine_t @1.31', version: 'v1.31', change: (s) => (sc(s).seLinuxOptions = { type: 'container_engine_t' }), baseline: [], restricted: [] },
  // procMount (check_procMount_baseline.go, check_procMount_restricted.go)
  { control: 'procMount Unmasked', change: (s) => (sc(s).procMount = 'Unmasked'), baseline: ['procMount'], restricted: ['procMount_restricted'] },
  { control: 'procMount Default', change: (s) => (sc(s).procMount = 'Default'), baseline: [], restricted: [] },
  { control: 'procMount Unmasked, hostUsers false @1.34', version: 'v1.34', change: (s) => ((s.hostUsers = false), (sc(s).procMount = 'Unmasked')), baseline: ['procMount'], restricted: ['procMount'] },
  { control: 'procMount Unmasked, hostUsers false @1.35', version: 'v1.35', change: (s) => ((s.hostUsers = false), (sc(s).procMount = 'Unmasked')), baseline: [], restricted: ['procMount_restricted'] },
  // seccomp (check_seccompProfile_baseline.go, check_seccompProfile_restricted.go)
  { control: 'seccomp Unconfined (container)', change: (s) => (sc(s).seccompProfile = { type: 'Unconfined' }), baseline: ['seccompProfile_baseline'], restricted: ['seccompProfile_restricted'] },
  { control: 'seccomp Unconfined (pod)', change: (s) => (s.securityContext!.seccompProfile = { type: 'Unconfined' }), baseline: ['seccompProfile_baseline'], restricted: ['seccompProfile_restricted'] },
  { control: 'seccomp unset', change: (s) => delete s.securityContext!.seccompProfile, baseline: [], restricted: ['seccompProfile_restricted'] },
  { control: 'seccomp Localhost (container only)', change: (s) => ((s.securityContext!.seccompProfile = undefined), (sc(s).seccompProfile = { type: 'Localhost', localhostProfile: 'p.json' })), baseline: [], restricted: [] },
  // sysctls (check_sysctls.go: 1.0, 1.27, 1.29, 1.32)
  { control: 'sysctl kernel.msgmax', change: (s) => (s.securityContext!.sysctls = [{ name: 'kernel.msgmax', value: '1' }]), baseline: ['sysctls'], restricted: ['sysctls'] },
  { control: 'sysctl net.ipv4.ping_group_range', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.ping_group_range', value: '0 1' }]), baseline: [], restricted: [] },
  { control: 'sysctl ip_local_reserved_ports @1.26', version: 'v1.26', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.ip_local_reserved_ports', value: '1' }]), baseline: ['sysctls'], restricted: ['sysctls'] },
  { control: 'sysctl ip_local_reserved_ports @1.27', version: 'v1.27', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.ip_local_reserved_ports', value: '1' }]), baseline: [], restricted: [] },
  { control: 'sysctl tcp_keepalive_time @1.28', version: 'v1.28', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.tcp_keepalive_time', value: '60' }]), baseline: ['sysctls'], restricted: ['sysctls'] },
  { control: 'sysctl tcp_keepalive_time @1.29', version: 'v1.29', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.tcp_keepalive_time', value: '60' }]), baseline: [], restricted: [] },
  { control: 'sysctl tcp_rmem @1.31', version: 'v1.31', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.tcp_rmem', value: '4096 87380 6291456' }]), baseline: ['sysctls'], restricted: ['sysctls'] },
  { control: 'sysctl tcp_rmem @1.32', version: 'v1.32', change: (s) => (s.securityContext!.sysctls = [{ name: 'net.ipv4.tcp_rmem', value: '4096 87380 6291456' }]), baseline: [], restricted: [] },
  // windowsHostProcess (check_windowsHostProcess.go)
  { control: 'hostProcess container', change: (s) => (sc(s).windowsOptions = { hostProcess: true }), baseline: ['windowsHostProcess'], restricted: ['windowsHostProcess'] },
  { control: 'hostProcess pod', change: (s) => (s.securityContext!.windowsOptions = { hostProcess: true }), baseline: ['windowsHostProcess'], restricted: ['windowsHostProcess'] },
  // hostProbesAndHostLifecycle (check_hostProbesAndhostLifecycle.go, from 1.34)
  { control: 'probe host @1.33', version: 'v1.33', change: (s) => (c0(s).readinessProbe = { httpGet: { port: 80, host: '10.0.0.1' } }), baseline: [], restricted: [] },
  { control: 'probe host @1.34', version: 'v1.34', change: (s) => (c0(s).readinessProbe = { httpGet: { port: 80, host: '10.0.0.1' } }), baseline: ['hostProbesAndHostLifecycle'], restricted: ['hostProbesAndHostLifecycle'] },
  { control: 'preStop tcpSocket host', change: (s) => (c0(s).lifecycle = { preStop: { tcpSocket: { port: 80, host: 'db' } } as never }), baseline: ['hostProbesAndHostLifecycle'], restricted: ['hostProbesAndHostLifecycle'] },
  { control: 'probe host empty', change: (s) => (c0(s).livenessProbe = { tcpSocket: { port: 80, host: '' } }), baseline: [], restricted: [] },
  // allowPrivilegeEscalation (check_allowPrivilegeEscalation.go)
  { control: 'APE unset', change: (s) => delete sc(s).allowPrivilegeEscalation, baseline: [], restricted: ['allowPrivilegeEscalation'] },
  { control: 'APE true', change: (s) => (sc(s).allowPrivilegeEscalation = true), baseline: [], restricted: ['allowPrivilegeEscalation'] },
  // runAsNonRoot (check_runAsNonRoot.go)
  { control: 'runAsNonRoot pod false', change: (s) => (s.securityContext!.runAsNonRoot = false), baseline: [], restricted: ['runAsNonRoot'] },
  { control: 'runAsNonRoot unset', change: (s) => delete s.securityContext!.runAsNonRoot, baseline: [], restricted: ['runAsNonRoot'] },
  { control: 'runAsNonRoot on container only', change: (s) => (delete s.securityContext!.runAsNonRoot, (sc(s).runAsNonRoot = true)), baseline: [], restricted: [] },
  { control: 'runAsNonRoot unset, hostUsers false @1.34', version: 'v1.34', change: (s) => (delete s.securityContext!.runAsNonRoot, (s.hostUsers = false)), baseline: [], restricted: ['runAsNonRoot'] },
  { control: 'runAsNonRoot unset, hostUsers false @1.35', version: 'v1.35', change: (s) => (delete s.securityContext!.runAsNonRoot, (s.hostUsers = false)), baseline: [], restricted: [] },
  // runAsUser (check_runAsUser.go)
  { control: 'runAsUser 0 (container)', change: (s) => (sc(s).runAsUser = 0), baseline: [], restricted: ['runAsUser'] },
  { control: 'runAsUser 0 (pod)', change: (s) => (s.securityContext!.runAsUser = 0), baseline: [], restricted: ['runAsUser'] },
  { control: 'runAsUser 1000', change: (s) => (sc(s).runAsUser = 1000), baseline: [], restricted: [] },
  { control: 'runAsUser 0, hostUsers false @1.34', version: 'v1.34', change: (s) => ((sc(s).runAsUser = 0), (s.hostUsers = false)), baseline: [], restricted: ['runAsUser'] },
  { control: 'runAsUser 0, hostUsers false @1.35', version: 'v1.35', change: (s) => ((sc(s).runAsUser = 0), (s.hostUsers = false)), baseline: [], restricted: [] },
  // Windows exemptions of the 1.25 restricted checks (allowPrivilegeEscalation, seccomp, capabilities)
  {
    control: 'windows pod without APE/seccomp/capabilities',
    change: (s) => ((s.os = { name: 'windows' }), delete s.securityContext!.seccompProfile, (c0(s).securityContext = {})),
    baseline: [],
    restricted: [],
  },
  {
    control: 'linux pod without APE/seccomp/capabilities',
    change: (s) => (delete s.securityContext!.seccompProfile, (c0(s).securityContext = {})),
    baseline: [],
    restricted: ['allowPrivilegeEscalation', 'capabilities_restricted', 'seccompProfile_restricted'],
  },
];

describe('Pod Security Standards checks (same verdicts as pod-security-admission)', () => {
  it.each(CASES)('$control', (c) => {
    const spec = base();
    const meta: ObjectMeta = {};
    c.change(spec, meta);
    const version = c.version ?? 'latest';
    expect(failing('baseline', version, spec, meta)).toEqual([...c.baseline].sort());
    expect(failing('restricted', version, spec, meta)).toEqual([...c.restricted].sort());
    // privileged checks nothing.
    expect(failing('privileged', version, spec, meta)).toEqual([]);
  });

  it('every case list covers every check ID of the registry', () => {
    const covered = new Set(CASES.flatMap((c) => [...c.baseline, ...c.restricted]));
    expect(PSS_CHECKS.map((c) => c.id).filter((id) => !covered.has(id))).toEqual([]);
  });
});

describe('the registry like policy/registry.go', () => {
  it('restricted drops the overridden baseline checks', () => {
    const ids = (level: Level, minor: number) => checksFor(level, minor).map((c) => c.id);
    expect(ids('restricted', 35)).not.toContain('hostPathVolumes');
    expect(ids('restricted', 35)).not.toContain('capabilities_baseline');
    expect(ids('restricted', 35)).not.toContain('seccompProfile_baseline');
    expect(ids('restricted', 35)).not.toContain('procMount');
    // procMount_restricted exists from 1.35 only, so before that baseline's procMount stays in restricted.
    expect(ids('restricted', 34)).toContain('procMount');
    expect(ids('restricted', 34)).not.toContain('procMount_restricted');
    expect(ids('baseline', 33)).not.toContain('hostProbesAndHostLifecycle');
    expect(ids('baseline', 34)).toContain('hostProbesAndHostLifecycle');
    expect(ids('privileged', 35)).toEqual([]);
  });
});

// Ported from check_runAsNonRoot_test.go TestRunAsNonRoot (the table read from the Kubernetes source).
describe('check_runAsNonRoot_test.go cases', () => {
  const cases: { name: string; spec: PodSpec; allowed: boolean; fields: string[] }[] = [
    { name: 'no explicit runAsNonRoot', spec: { containers: [{ name: 'a' }] }, allowed: false, fields: ['spec.containers[0].securityContext.runAsNonRoot'] },
    { name: 'pod runAsNonRoot=false', spec: { securityContext: { runAsNonRoot: false }, containers: [{ name: 'a' }] }, allowed: false, fields: ['spec.securityContext.runAsNonRoot', 'spec.containers[0].securityContext.runAsNonRoot'] },
    {
      name: 'containers runAsNonRoot=false',
      spec: {
        securityContext: { runAsNonRoot: true },
        containers: [
          { name: 'a' },
          { name: 'b', securityContext: {} },
          { name: 'c', securityContext: { runAsNonRoot: false } },
          { name: 'd', securityContext: { runAsNonRoot: false } },
          { name: 'e', securityContext: { runAsNonRoot: true } },
        ],
      },
      allowed: false,
      fields: ['spec.containers[2].securityContext.runAsNonRoot', 'spec.containers[3].securityContext.runAsNonRoot'],
    },
    {
      name: 'pod nil, container fallthrough',
      spec: { containers: [{ name: 'a' }, { name: 'b', securityContext: {} }, { name: 'd', securityContext: { runAsNonRoot: true } }] },
      allowed: false,
      fields: ['spec.containers[0].securityContext.runAsNonRoot', 'spec.containers[1].securityContext.runAsNonRoot'],
    },
    { name: 'hostUsers false (1.35)', spec: { hostUsers: false, containers: [{ name: 'a' }] }, allowed: true, fields: [] },
    { name: 'hostUsers true', spec: { hostUsers: true, containers: [{ name: 'a' }] }, allowed: false, fields: ['spec.containers[0].securityContext.runAsNonRoot'] },
  ];
  it.each(cases)('$name', ({ spec, allowed, fields }) => {
    const found = pssViolations(view(spec), 'restricted', 'v1.35').filter((v) => v.check === 'runAsNonRoot');
    expect(found.length === 0).toBe(allowed);
    expect(found.map((v) => v.field)).toEqual(fields);
  });
});
