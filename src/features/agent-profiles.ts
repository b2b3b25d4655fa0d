/**
 * What each `podvisor.io/agent` feature needs: Linux capabilities (two models), host namespaces and host mounts.
 * Source: agent-capabilities.md §5 (SmartAgent 9.7 per-capability list, the eBPF-in-pod example, capabilities(7),
 * setns(2), Falco's least-privilege set). The README's feature table mirrors this one.
 * Each row is proven sufficient and minimal on a real kernel by test/host/agent-profiles.test.ts (docs/host-proofs.md).
 *
 * Models:
 * - `modern`: kernel ≥ 5.8, runc ≥ 1.0.0-rc93, containerd ≥ 1.6.9: BPF + PERFMON for tracing instead of SYS_ADMIN,
 *   BPF + NET_ADMIN for XDP/tc.
 * - `legacy`: BPF and PERFMON do not exist (or the runtime's seccomp profile only lets bpf/perf_event_open through
 *   with SYS_ADMIN), so SYS_ADMIN stands in for both.
 * SYS_RESOURCE (`memlock`) is added to the eBPF features unless config says every node runs kernel ≥ 5.11, where BPF
 * memory is charged to the memory cgroup instead of RLIMIT_MEMLOCK.
 */

export const AGENT_FEATURES = [
  'host-metrics',
  'process',
  'container-metrics',
  'log-collection',
  'log-discovery',
  'network-performance',
  'netns-enter',
  'ebpf-tracing',
  'ebpf-profiling',
  'kernel-events',
  'apm-injection',
  'run-as-non-root',
  'host-chroot',
  'host-trim',
] as const;
export type AgentFeature = (typeof AGENT_FEATURES)[number];

export const CAPABILITY_MODELS = ['modern', 'legacy'] as const;
export type CapabilityModel = (typeof CAPABILITY_MODELS)[number];

/** `required`: podvisor sets it when the pod can take it; `recommended`: a warning when absent. */
export type HostNamespaceNeed = 'required' | 'recommended' | 'none';

/** A read-only hostPath mount podvisor adds when no mounted hostPath volume already covers one of `coveredBy`. */
export interface AgentMount {
  readonly hostPath: string;
  readonly mountPath: string;
  readonly volumeName: string;
  /** Host paths any of which (or a parent of which) already gives the container this view. */
  readonly coveredBy: readonly string[];
}

export interface AgentProfile {
  readonly capabilities: { readonly [M in CapabilityModel]: readonly string[] };
  /** Gets SYS_RESOURCE to lift RLIMIT_MEMLOCK for BPF maps (kernels < 5.11). */
  readonly memlock: boolean;
  /** A host PID view: `hostPID: true`, or a mounted hostPath of the host `/proc`. */
  readonly hostPID: HostNamespaceNeed;
  readonly hostNetwork: HostNamespaceNeed;
  /** Mounts podvisor adds (read-only, only when needed and none with that host path exists). */
  readonly mounts: readonly AgentMount[];
  /** Host paths the agent should see; advice only, a warning when no mounted hostPath covers them. */
  readonly advisedHostPaths: readonly string[];
}

/** tracefs for tracepoint IDs/formats and tracefs-based attach; debugfs contains it at /sys/kernel/debug/tracing. */
export const TRACEFS_MOUNT: AgentMount = {
  hostPath: '/sys/kernel/tracing',
  mountPath: '/sys/kernel/tracing',
  volumeName: 'podvisor-agent-sys-kernel-tracing',
  coveredBy: ['/sys/kernel/tracing', '/sys/kernel/debug'],
};

const same = (caps: readonly string[]) => ({ modern: caps, legacy: caps });
const none = { memlock: false, hostPID: 'none', hostNetwork: 'none', mounts: [], advisedHostPaths: [] } as const;

export const AGENT_PROFILES: { readonly [F in AgentFeature]: AgentProfile } = {
  'host-metrics': { ...none, capabilities: same([]), hostPID: 'recommended', hostNetwork: 'required', advisedHostPaths: ['/proc', '/sys', '/'] },
  process: { ...none, capabilities: same(['DAC_READ_SEARCH', 'SYS_PTRACE']), hostPID: 'required' },
  'container-metrics': { ...none, capabilities: same(['DAC_READ_SEARCH', 'SYS_PTRACE']), hostPID: 'required', advisedHostPaths: ['/sys/fs/cgroup'] },
  'log-collection': { ...none, capabilities: same(['DAC_READ_SEARCH']), advisedHostPaths: ['/var/log'] },
  'log-discovery': { ...none, capabilities: same(['DAC_READ_SEARCH', 'SYS_PTRACE']), hostPID: 'required', advisedHostPaths: ['/'] },
  'network-performance': {
    ...none,
    capabilities: { modern: ['BPF', 'NET_ADMIN', 'NET_RAW', 'PERFMON', 'SYS_PTRACE'], legacy: ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'SYS_PTRACE'] },
    memlock: true,
    hostPID: 'required',
    hostNetwork: 'recommended',
  },
  'netns-enter': { ...none, capabilities: same(['SYS_ADMIN', 'SYS_PTRACE']), hostPID: 'required' },
  'ebpf-tracing': {
    ...none,
    capabilities: { modern: ['BPF', 'PERFMON'], legacy: ['SYS_ADMIN'] },
    memlock: true,
    hostPID: 'recommended',
    mounts: [TRACEFS_MOUNT],
  },
  'ebpf-profiling': {
    ...none,
    capabilities: { modern: ['BPF', 'PERFMON', 'SYSLOG', 'SYS_PTRACE'], legacy: ['SYSLOG', 'SYS_ADMIN', 'SYS_PTRACE'] },
    memlock: true,
    hostPID: 'required',
  },
  'kernel-events': { ...none, capabilities: { modern: ['BPF', 'PERFMON', 'SYSLOG'], legacy: ['SYSLOG', 'SYS_ADMIN'] }, memlock: true },
  'apm-injection': {
    ...none,
    // No DAC_READ_SEARCH: DAC_OVERRIDE already passes every read and search check (generic_permission), proven in
    // test/host/agent-profiles.test.ts.
    capabilities: same(['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'SETFCAP', 'SYS_ADMIN', 'SYS_CHROOT', 'SYS_PTRACE']),
    hostPID: 'required',
    advisedHostPaths: ['/'],
  },
  'run-as-non-root': { ...none, capabilities: same(['CHOWN', 'FSETID', 'SETFCAP', 'SETGID', 'SETUID']) },
  'host-chroot': { ...none, capabilities: same(['SYS_CHROOT']), advisedHostPaths: ['/'] },
  'host-trim': { ...none, capabilities: same(['SYS_ADMIN']), advisedHostPaths: ['/'] },
};

const AGENT_FEATURE_SET: ReadonlySet<string> = new Set(AGENT_FEATURES);

export function isAgentFeature(name: string): name is AgentFeature {
  return AGENT_FEATURE_SET.has(name);
}

/** The capabilities one feature needs under a model, SYS_RESOURCE included when BPF memory is memlock-charged. */
export function featureCapabilities(feature: AgentFeature, model: CapabilityModel, bpfMemlock: boolean): string[] {
  const profile = AGENT_PROFILES[feature];
  return [...profile.capabilities[model], ...(profile.memlock && bpfMemlock ? ['SYS_RESOURCE'] : [])];
}

export interface ParsedAgentFeatures {
  /** Known features, de-duplicated, in table order. */
  readonly known: AgentFeature[];
  /** Everything else (including `CAP_…` tokens), as written. */
  readonly unknown: string[];
}

/** `"process, Container-Metrics,,foo"` → known [process, container-metrics], unknown [foo]. */
export function parseAgentFeatures(value: string): ParsedAgentFeatures {
  const tokens = value.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  const known = new Set<AgentFeature>();
  const unknown: string[] = [];
  for (const token of tokens) {
    const name = token.toLowerCase();
    if (isAgentFeature(name)) known.add(name);
    else if (!unknown.includes(token)) unknown.push(token);
  }
  return { known: AGENT_FEATURES.filter((f) => known.has(f)), unknown };
}

/** Values that switch the agent feature off (an owner's opt-out under a namespace default). */
export const AGENT_OFF_VALUES: ReadonlySet<string> = new Set(['false', 'disabled', 'none']);

/** Config defaults are stricter than annotations: every name must be known. Returns the problem, if any. */
export function agentSettingProblem(value: string): string | undefined {
  if (AGENT_OFF_VALUES.has(value.trim().toLowerCase())) return undefined;
  const { known, unknown } = parseAgentFeatures(value);
  if (unknown.length > 0) return `unknown agent feature(s) ${unknown.map((u) => JSON.stringify(u)).join(', ')}; valid: ${AGENT_FEATURES.join(', ')}`;
  if (known.length === 0) return `expected a comma-separated list of: ${AGENT_FEATURES.join(', ')}`;
  return undefined;
}
