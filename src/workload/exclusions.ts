import type { UserInfo } from 'kubernetes-types/authentication/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { PodSpec } from 'kubernetes-types/core/v1.js';
import { EXCLUDE_LABEL, MIRROR_POD_ANNOTATION } from '../annotations.js';

export function isExcludedByLabel(meta: ObjectMeta | undefined): boolean {
  return meta?.labels?.[EXCLUDE_LABEL] === 'true';
}

/**
 * A workload with a controller (a Deployment's ReplicaSet, a CronJob's Job) is never mutated: its parent's
 * controller compares templates and would keep creating new children (kubernetes-rules.md §3). Its Pods are
 * injected at Pod CREATE instead.
 */
export function hasController(meta: ObjectMeta | undefined): boolean {
  return meta?.ownerReferences?.some((ref) => ref.controller === true) ?? false;
}

export function isMirrorPod(meta: ObjectMeta | undefined): boolean {
  return meta?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined;
}

/**
 * A mirror pod as the kubelet creates it: the annotation, sent by a node (`system:node:<name>`). Anyone allowed to
 * create Pods can set the annotation, so policy must never exempt a Pod on the annotation alone.
 */
export function isKubeletMirrorPod(meta: ObjectMeta | undefined, userInfo: UserInfo | undefined): boolean {
  const username: unknown = userInfo?.username;
  return isMirrorPod(meta) && typeof username === 'string' && username.startsWith('system:node:');
}

const OS_LABEL = 'kubernetes.io/os';

/**
 * Windows pods: `spec.os.name: windows`, a `kubernetes.io/os: windows` nodeSelector, or required node affinity
 * whose every term pins `kubernetes.io/os In [windows]` (kubernetes-rules.md §10). LXCFS and FUSE are Linux-only,
 * and the API rejects capabilities on `os.name: windows` pods.
 */
export function isWindowsPod(spec: PodSpec): boolean {
  if (spec.os?.name === 'windows') return true;
  if (spec.nodeSelector?.[OS_LABEL] === 'windows') return true;
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  return (
    terms.length > 0 &&
    terms.every((term) =>
      (term.matchExpressions ?? []).some(
        (e) => e.key === OS_LABEL && e.operator === 'In' && (e.values ?? []).length > 0 && (e.values ?? []).every((v) => v === 'windows'),
      ),
    )
  );
}
