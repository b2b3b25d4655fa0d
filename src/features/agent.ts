import type { Container, PodSpec, Volume } from 'kubernetes-types/core/v1.js';
import { ANNOTATION } from '../annotations.js';
import {
  AGENT_FEATURES,
  AGENT_PROFILES,
  featureCapabilities,
  AGENT_OFF_VALUES,
  parseAgentFeatures,
  type AgentFeature,
  type AgentMount,
} from './agent-profiles.js';
import { addedCapabilities, sortCapabilities } from './capabilities.js';
import type { Feature, FeatureContext, FeatureResult, ParsedSetting, PodDraft, TargetContainer } from './feature.js';
import { isRecord } from '../json-value.js';
import { didYouMean } from '../closest-name.js';

/**
 * `podvisor.io/agent: "<feature>,<feature>"`: a node agent declares what it does and gets exactly the capabilities,
 * host namespaces and mounts those features need (agent-profiles.ts; composition rules in agent-capabilities.md §5).
 * The owner asked for this set by declaring features, so capabilities outside it are removed and listed.
 */

/** What the status annotation records per container. */
export interface AgentContainerRecord {
  /** Each granted capability and the features that required it. */
  readonly capabilities: Record<string, string[]>;
  /** Names podvisor removed from the owner's `capabilities.add` (carried over from an earlier status). */
  readonly removed?: string[];
  /** `privileged: true` was turned into `false`. */
  readonly deprivileged?: true;
}

/** These checks use the init user namespace, so in a `hostUsers: false` pod they grant nothing (§5.6). */
const INIT_USERNS_ONLY = ['BPF', 'PERFMON', 'SYSLOG'];

/**
 * An unknown name makes the whole value invalid: the agent is then not applied at all, rather than granting the subset
 * that was spelt right (a privileged agent stays as written, where the policy can judge it, and the owner sees why).
 */
function parse(value: string): ParsedSetting {
  if (AGENT_OFF_VALUES.has(value.trim().toLowerCase())) return { kind: 'off' };
  const { known, unknown } = parseAgentFeatures(value);
  const expected = 'a comma-separated list of agent features';
  if (unknown.length > 0) {
    const names = unknown.map((u) => `${JSON.stringify(u)}${didYouMean(u, AGENT_FEATURES)}`).join(', ');
    return { kind: 'invalid', expected, problem: `unknown feature${unknown.length > 1 ? 's' : ''} ${names}` };
  }
  if (known.length === 0) return { kind: 'invalid', expected };
  return { kind: 'on', value: known.join(',') };
}

function byName(a: TargetContainer, b: TargetContainer): number {
  return a.container.name < b.container.name ? -1 : a.container.name > b.container.name ? 1 : 0;
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The per-container record of an earlier run, read back from `podvisor.io/status`. Removed names and de-privileging
 * are facts about the object's history, no longer visible in the object itself: carrying them over keeps the status
 * identical on re-invocation, on Pods created from an injected template, and on a re-applied manifest.
 */
function previousRecords(pod: PodDraft): Record<string, unknown> {
  const raw = pod.metadata.annotations?.[ANNOTATION.status];
  if (raw === undefined) return {};
  try {
    const status: unknown = JSON.parse(raw);
    const agent = isRecord(status) ? status['agent'] : undefined;
    const containers = isRecord(agent) ? agent['containers'] : undefined;
    return isRecord(containers) ? containers : {};
  } catch {
    return {};
  }
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The pod's volumes by name, kept up to date by ensureMount. */
type VolumesByName = Map<string, Volume>;

/** Host paths of the hostPath volumes a container mounts. */
function mountedHostPaths(volumes: VolumesByName, container: Container): string[] {
  return (container.volumeMounts ?? []).flatMap((m) => {
    const path = volumes.get(m.name)?.hostPath?.path;
    return path === undefined ? [] : [path.replace(/(.)\/+$/, '$1')];
  });
}

/** A mounted host path `mounted` gives a view of `wanted` when it is the same path or a parent (hostPath binds are recursive). */
function covers(mounted: string, wanted: string): boolean {
  return mounted === '/' || mounted === wanted || wanted.startsWith(`${mounted}/`);
}

/**
 * Adds a read-only host mount only when the feature needs it and no mounted hostPath already gives that view.
 * Returns whether it added one.
 */
function ensureMount(ctx: FeatureContext, { container, field }: TargetContainer, mount: AgentMount, volumes: VolumesByName): boolean {
  const spec = ctx.pod.spec;
  const hostPaths = mountedHostPaths(volumes, container);
  if (mount.coveredBy.some((wanted) => hostPaths.some((mounted) => covers(mounted, wanted)))) return false;
  if ((container.volumeMounts ?? []).some((m) => m.mountPath === mount.mountPath)) {
    ctx.warn(`${field}.volumeMounts: ${mount.mountPath} is the owner's mount; host ${mount.hostPath} not added`);
    return false;
  }
  const volume = (spec.volumes ?? []).find((v) => v.name === mount.volumeName);
  if (volume !== undefined && volume.hostPath?.path !== mount.hostPath) {
    ctx.warn(`${ctx.specField}.volumes: "${mount.volumeName}" is the owner's volume; host ${mount.hostPath} not added`);
    return false;
  }
  if (volume === undefined) {
    const added: Volume = { name: mount.volumeName, hostPath: { path: mount.hostPath, type: 'Directory' } };
    (spec.volumes ??= []).push(added);
    volumes.set(added.name, added);
  }
  (container.volumeMounts ??= []).push({ name: mount.volumeName, mountPath: mount.mountPath, readOnly: true });
  return true;
}

/** Why the pod cannot take a host namespace, if it cannot (validateHostUsers, §5.6). */
function hostNamespaceBlocker(spec: PodSpec, key: 'hostPID' | 'hostNetwork'): string | undefined {
  if (spec.hostUsers === false) return 'hostUsers: false forbids it';
  if (key === 'hostPID' && spec.shareProcessNamespace === true) return 'shareProcessNamespace forbids it';
  // With hostNetwork, a hostPort must equal its containerPort.
  const ports = [...(spec.initContainers ?? []), ...spec.containers].flatMap((c) => c.ports ?? []);
  if (key === 'hostNetwork' && ports.some((p) => p.hostPort !== undefined && p.hostPort !== 0 && p.hostPort !== p.containerPort)) {
    return 'a hostPort differs from its containerPort';
  }
  // On a hostNetwork pod the apiserver defaults every hostPort to its containerPort: two ports with the same number
  // and protocol would then be duplicate host ports, and the Pod would be rejected.
  if (key === 'hostNetwork') {
    const seen = new Set<string>();
    for (const p of ports) {
      const port = `${p.containerPort}/${p.protocol ?? 'TCP'}`;
      if (seen.has(port)) return `containerPort ${port} is used twice and would become a duplicate hostPort`;
      seen.add(port);
    }
  }
  return undefined;
}

/** The host namespaces the features require (for the status), and whether one was set. */
function applyHostNamespaces(ctx: FeatureContext, features: readonly AgentFeature[], volumes: VolumesByName): { required: Record<string, string[]>; changed: boolean } {
  const spec = ctx.pod.spec;
  const required: Record<string, string[]> = {};
  let changed = false;
  for (const key of ['hostNetwork', 'hostPID'] as const) {
    const needs = features.filter((f) => AGENT_PROFILES[f][key] === 'required');
    const recommended = features.filter((f) => AGENT_PROFILES[f][key] === 'recommended');
    if (needs.length > 0) required[key] = needs;
    if (spec[key] === true) continue;
    // A mounted hostPath of the host /proc is a host PID view too.
    if (key === 'hostPID' && ctx.targets.some((t) => mountedHostPaths(volumes, t.container).includes('/proc'))) continue;
    if (needs.length > 0) {
      const blocker = hostNamespaceBlocker(spec, key);
      if (blocker === undefined) {
        spec[key] = true;
        changed = true;
        // Without ClusterFirstWithHostNet a hostNetwork pod resolves names with the node's DNS, not the cluster's.
        if (key === 'hostNetwork' && spec.dnsPolicy !== 'ClusterFirstWithHostNet' && spec.dnsPolicy !== 'Default' && spec.dnsPolicy !== 'None') {
          ctx.warn(`${ctx.specField}.dnsPolicy: hostNetwork added; set ClusterFirstWithHostNet to resolve cluster names`);
        }
      } else ctx.warn(`${ctx.specField}.${key}: needed by ${needs.join(', ')} but not set: ${blocker}`);
    } else if (recommended.length > 0) {
      ctx.warn(`${ctx.specField}.${key}: recommended for ${recommended.join(', ')}; not set`);
    }
  }
  return { required, changed };
}

function apply(ctx: FeatureContext): FeatureResult {
  // parse() wrote the value: the known features, de-duplicated, in table order, joined by commas.
  const known = ctx.value.split(',') as AgentFeature[];

  const { capabilityModel: model, bpfMemlock } = ctx.config.agent;
  // Each capability and the features that need it, those in ASCII order.
  const grants = new Map<string, string[]>();
  for (const feature of known) {
    for (const capability of featureCapabilities(feature, model, bpfMemlock)) {
      const by = grants.get(capability);
      if (by === undefined) grants.set(capability, [feature]);
      else if (!by.includes(feature)) by.push(feature);
    }
  }
  for (const by of grants.values()) by.sort();
  const own = sortCapabilities(grants.keys());
  // FUSE adds SYS_ADMIN to the same list after the agent, in the containers FUSE targets. There the agent never
  // removes it (or every re-run would remove and report it again), but leaves adding it to FUSE, so the escalation
  // guard charges it to FUSE.
  const withFuse = new Map(grants);
  withFuse.set('SYS_ADMIN', [...(grants.get('SYS_ADMIN') ?? []), 'fuse'].sort());

  const spec = ctx.pod.spec;
  const volumes: VolumesByName = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  // Every write below says whether it changed the draft.
  let changed = false;
  const previous = previousRecords(ctx.pod);
  const containers: Record<string, AgentContainerRecord> = {};
  for (const target of [...ctx.targets].sort(byName)) {
    const { container, field } = target;
    const fuseShares = ctx.featureTargets?.fuse?.has(container.name) === true;
    const containerGrants = fuseShares ? withFuse : grants;
    const securityContext = (container.securityContext ??= {});
    const ownerNames = addedCapabilities(container);
    const removedNow = ownerNames.filter((c) => !containerGrants.has(c));
    const computed = fuseShares && ownerNames.includes('SYS_ADMIN') ? sortCapabilities([...own, 'SYS_ADMIN']) : own;
    if (removedNow.length > 0) ctx.warn(`${field}.securityContext.capabilities.add: removed ${sortCapabilities(removedNow).join(', ')} (not needed)`);

    const capabilities = (securityContext.capabilities ??= {});
    // drop: [ALL] then add: exactly {X, Y} on containerd and CRI-O; PSA wants the exact string ALL (§7).
    if (!sameList(capabilities.drop, ['ALL'])) {
      capabilities.drop = ['ALL'];
      changed = true;
    }
    if (computed.length === 0) {
      if (capabilities.add !== undefined) changed = true;
      delete capabilities.add;
    } else if (!sameList(capabilities.add, computed)) {
      capabilities.add = [...computed];
      changed = true;
    }

    let deprivileged = false;
    if (securityContext.privileged === true) {
      if ((container.volumeMounts ?? []).some((m) => m.mountPropagation === 'Bidirectional')) {
        // The apiserver rejects Bidirectional propagation in an unprivileged container (§5.2).
        ctx.warn(`${field}.securityContext.privileged: kept true, a volumeMount uses Bidirectional propagation`);
      } else {
        securityContext.privileged = false;
        deprivileged = true;
        changed = true;
      }
    }
    if (securityContext.allowPrivilegeEscalation === false && known.includes('run-as-non-root')) {
      ctx.warn(`${field}.securityContext.allowPrivilegeEscalation: false breaks run-as-non-root (no_new_privs)`);
    }
    if (own.includes('SYS_ADMIN')) ctx.warn(`${field}.securityContext.capabilities: SYS_ADMIN (${grants.get('SYS_ADMIN')!.join(', ')}) is near-root`);

    const mounts = new Map(known.flatMap((f) => AGENT_PROFILES[f].mounts).map((m) => [m.volumeName, m]));
    for (const mount of mounts.values()) changed = ensureMount(ctx, target, mount, volumes) || changed;
    const hostPaths = mountedHostPaths(volumes, container);
    const advised = [...new Set(known.flatMap((f) => AGENT_PROFILES[f].advisedHostPaths))].filter((p) => !hostPaths.some((m) => covers(m, p)));
    if (advised.length > 0) ctx.warn(`${field}.volumeMounts: no host ${advised.join(', ')} mounted (agent features read it)`);

    const earlier = isRecord(previous[container.name]) ? (previous[container.name] as Record<string, unknown>) : {};
    const removed = sortCapabilities([...stringList(earlier['removed']), ...removedNow]).filter((c) => !containerGrants.has(c));
    containers[container.name] = {
      capabilities: Object.fromEntries(sortCapabilities(containerGrants.keys()).map((c) => [c, containerGrants.get(c)!])),
      ...(removed.length > 0 ? { removed } : {}),
      ...(deprivileged || earlier['deprivileged'] === true ? { deprivileged: true as const } : {}),
    };
  }
  if (spec.hostUsers === false && own.some((c) => INIT_USERNS_ONLY.includes(c))) {
    ctx.warn(`${ctx.specField}.hostUsers: false; BPF, PERFMON and SYSLOG have no effect in a user namespace`);
  }
  const { required: hostNamespaces, changed: hostNamespacesSet } = applyHostNamespaces(ctx, known, volumes);
  return { changed: changed || hostNamespacesSet, ...(ctx.targets.length === 0 ? { inForce: false as const } : {}), detail: { model, features: known, containers, ...(Object.keys(hostNamespaces).length > 0 ? { hostNamespaces } : {}) } };
}

export const agent: Feature = {
  name: 'agent',
  annotation: ANNOTATION.agent,
  containersAnnotation: ANNOTATION.agentContainers,
  parse,
  apply,
};
