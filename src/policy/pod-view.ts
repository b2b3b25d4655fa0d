import type { Container, PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';

/** A Pod, or a workload's pod template, with the field paths used in messages. */
export interface PodView {
  readonly metadata: ObjectMeta;
  readonly spec: PodSpec;
  /** e.g. `spec` for a Pod, `spec.template.spec` for a Deployment. */
  readonly specField: string;
  /** e.g. `metadata` for a Pod, `spec.template.metadata` for a Deployment. */
  readonly metaField: string;
}

export interface ContainerRef {
  /** An ephemeral container is read through the fields it shares with Container (EphemeralContainerCommon). */
  readonly container: Container;
  readonly field: string;
  readonly list: 'initContainers' | 'containers' | 'ephemeralContainers';
}

/**
 * Every container in the order of pod-security-admission `policy/visitor.go` visitContainers: init containers,
 * containers, then ephemeral containers. Native sidecars are ordinary init containers to PSA.
 */
export function containersOf(pod: PodView): ContainerRef[] {
  const refs: ContainerRef[] = [];
  for (const list of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    for (const [container, i] of itemsOf<Container>(pod.spec[list])) refs.push({ container, field: `${pod.specField}.${list}[${i}]`, list });
  }
  return refs;
}

/** `spec.os.name: windows`: the v1.25 restricted checks exempt these pods. */
export function isWindowsOs(spec: PodSpec): boolean {
  return spec.os?.name === 'windows';
}

/** KEP-127 relaxation (`policy/helpers.go` relaxPolicyForUserNamespacePod): `hostUsers` explicitly false. */
export function inUserNamespace(spec: PodSpec): boolean {
  return spec.hostUsers === false;
}

/**
 * The elements of a list field with their index, skipping anything of the wrong type. The apiserver only sends
 * well-typed objects, but `podvisor check` reads hand-written YAML: a malformed field is not a violation and must
 * never crash the evaluation.
 */
export function itemsOf<T>(list: unknown, kind: 'object' | 'string' = 'object'): [T, number][] {
  if (!Array.isArray(list)) return [];
  const out: [T, number][] = [];
  list.forEach((item: unknown, i) => {
    if (kind === 'string' ? typeof item === 'string' : typeof item === 'object' && item !== null && !Array.isArray(item)) out.push([item as T, i]);
  });
  return out;
}
