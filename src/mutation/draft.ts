import type { Container, PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { PodDraft } from '../features/feature.js';

/**
 * A deep copy of plain JSON data, several times faster than structuredClone for the small objects of a pod. Object
 * members that are null are left out: to the apiserver null and absent are the same (its decoder makes both the zero
 * value), so features only ever meet absent fields, and the diff removes the nulls (YAML `add:` left empty).
 */
export function cloneJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  const copy: Record<string, unknown> = {};
  for (const key in value) {
    const member = (value as Record<string, unknown>)[key];
    if (member !== null) copy[key] = cloneJson(member);
  }
  return copy as T;
}

/**
 * A container as features may change it: its own object (null members left out, as cloneJson does), with copies of
 * what a feature writes — `securityContext` and `resources` (deep: they are small) and the `volumeMounts` list (its
 * entries stay shared: features append mounts, they never edit one). Everything else (env, probes, ports, ...) is
 * shared with the original, so the diff skips it by reference instead of comparing it member by member.
 */
function draftContainer(container: Container): Container {
  const copy: Record<string, unknown> = {};
  for (const key in container) {
    const member = (container as unknown as Record<string, unknown>)[key];
    if (member !== null) copy[key] = member;
  }
  const draft = copy as unknown as Container;
  if (draft.securityContext !== undefined) draft.securityContext = cloneJson(draft.securityContext);
  if (draft.resources !== undefined) draft.resources = cloneJson(draft.resources);
  if (draft.volumeMounts !== undefined) draft.volumeMounts = [...draft.volumeMounts];
  return draft;
}

const draftContainers = (containers: Container[] | undefined) => containers?.map(draftContainer);

/**
 * The copy features mutate. Only what a feature may change is copied — metadata's annotation and label maps, the
 * spec's top level and its pod securityContext, the volumes list (its entries stay shared: features append volumes,
 * they never edit one), and in every container and init container what draftContainer copies. Everything else
 * (ephemeral containers, affinity, tolerations, a container's env, ...) is shared with the original, which also lets
 * the diff skip it (identical references). Tests deep-freeze the original, so a feature that writes to shared data
 * fails loudly.
 */
export function draftPod(metadata: ObjectMeta | undefined, spec: PodSpec): PodDraft {
  const meta: ObjectMeta = { ...metadata };
  if (meta.annotations !== undefined) meta.annotations = { ...meta.annotations };
  if (meta.labels !== undefined) meta.labels = { ...meta.labels };
  const draft: PodSpec = { ...spec, containers: draftContainers(spec.containers) ?? [] };
  if (spec.containers === undefined) delete (draft as Partial<PodSpec>).containers;
  if (spec.initContainers !== undefined) draft.initContainers = draftContainers(spec.initContainers)!;
  // null as well as absent: YAML `volumes:` left empty reads as null (podvisor inject), and the diff keeps it exact.
  if (spec.volumes != null) draft.volumes = [...spec.volumes];
  if (spec.securityContext !== undefined) draft.securityContext = cloneJson(spec.securityContext);
  return { metadata: meta, spec: draft };
}
