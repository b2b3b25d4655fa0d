import type { Pod } from 'kubernetes-types/core/v1.js';
import { ANNOTATION, MIRROR_POD_ANNOTATION } from '../annotations.js';
import type { LxcfsNodeState } from './lxcfs-pods.js';
import { timestampMillis } from './timestamps.js';

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** Containers whose LXCFS binds predate the running lxcfs. */
  readonly containers: readonly string[];
}

export interface NodePlan {
  /** Pods with a controller: evicted, so that the controller recreates them with live mounts. */
  readonly evict: readonly PodRef[];
  /** Pods without a controller (and mirror pods): reported, never deleted — nothing would bring them back. */
  readonly bare: readonly PodRef[];
}

interface RecordedStatus {
  readonly features: readonly string[];
  /** The containers LXCFS was mounted into. */
  readonly lxcfsContainers: readonly string[];
}

/**
 * The `podvisor.io/status` annotation ({"version":1,"features":["lxcfs",...],"containers":[...]}), if readable.
 * `containers` is the union over all features; `targets.lxcfs`, written when feature scopes differ, narrows it.
 */
export function recordedStatus(pod: Pod): RecordedStatus | undefined {
  const text = pod.metadata?.annotations?.[ANNOTATION.status];
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { features?: unknown; containers?: unknown; targets?: { lxcfs?: unknown } };
    const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const lxcfsTargets = parsed.targets?.lxcfs;
    return { features: strings(parsed.features), lxcfsContainers: strings(Array.isArray(lxcfsTargets) ? lxcfsTargets : parsed.containers) };
  } catch {
    return undefined;
  }
}

/**
 * The containers of `pod` whose LXCFS bind mounts belong to an lxcfs that is no longer running: they started before
 * the node's current lxcfs container did. Both times come from the same kubelet (node clock). A container that
 * started (or restarted) after lxcfs got fresh binds and is fine, so a pod whose affected containers all restarted
 * since needs nothing.
 */
export function staleContainers(pod: Pod, lxcfs: LxcfsNodeState): string[] {
  if (lxcfs.startedAt === undefined) return [];
  const status = recordedStatus(pod);
  if (status === undefined || !status.features.includes('lxcfs')) return [];
  const targets = new Set(status.lxcfsContainers);
  const stale: string[] = [];
  for (const container of pod.status?.containerStatuses ?? []) {
    if (targets.size > 0 && !targets.has(container.name)) continue;
    const started = timestampMillis(container.state?.running?.startedAt);
    if (started !== undefined && started < lxcfs.startedAt) stale.push(container.name);
  }
  return stale.sort();
}

function hasController(pod: Pod): boolean {
  return (pod.metadata?.ownerReferences ?? []).some((o) => o.controller === true) && pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] === undefined;
}

/**
 * What to do on one node whose lxcfs restarted: pure, from the node's lxcfs state and the pods listed on it. Nothing
 * until the new lxcfs is ready, because pods recreated before that would bind a dead or empty mount again.
 */
export function planNode(lxcfs: LxcfsNodeState, pods: readonly Pod[]): NodePlan {
  if (!lxcfs.ready || lxcfs.startedAt === undefined) return { evict: [], bare: [] };
  const evict: PodRef[] = [];
  const bare: PodRef[] = [];
  for (const pod of pods) {
    if (pod.spec?.nodeName !== lxcfs.node) continue;
    if (pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null) continue;
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
    const containers = staleContainers(pod, lxcfs);
    if (containers.length === 0) continue;
    const ref: PodRef = { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '', containers };
    (hasController(pod) ? evict : bare).push(ref);
  }
  const order = (a: PodRef, b: PodRef): number => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`);
  return { evict: evict.sort(order), bare: bare.sort(order) };
}
