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
