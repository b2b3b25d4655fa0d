import type { Container, PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { APPARMOR_ANNOTATION_PREFIX } from '../annotations.js';
import { normalizeCapability } from '../features/capabilities.js';
import { BASELINE_CAPABILITIES, RESTRICTED_CAPABILITIES } from '../policy/checks/capabilities.js';

/**
 * Podvisor's own injections can push a pod below its namespace's enforced Pod Security level (LXCFS adds hostPath
 * volumes; FUSE and most agent features add capabilities outside baseline; agents may get host namespaces). The
 * apiserver's PSA rejection comes after all webhooks and names neither podvisor nor the cause, so podvisor warns at
 * admission time, naming the PSS control. This is a light check of what podvisor added, not a Pod Security engine:
 * only controls podvisor's injections touch are looked at (kubernetes-rules.md §9).
 */

interface PodParts {
  readonly metadata?: ObjectMeta | undefined;
  readonly spec: PodSpec;
}

type Level = 'baseline' | 'restricted';

function containersOf(spec: PodSpec): [Container, string][] {
  return [
    ...(spec.initContainers ?? []).map((c, i): [Container, string] => [c, `initContainers[${i}]`]),
    ...(spec.containers ?? []).map((c, i): [Container, string] => [c, `containers[${i}]`]),
  ];
}

function capabilitySet(container: Container | undefined): Set<string> {
  return new Set((container?.securityContext?.capabilities?.add ?? []).map(normalizeCapability));
}

function appArmorUnconfined(pod: PodParts, container: Container): boolean {
  const field = container.securityContext?.appArmorProfile ?? pod.spec.securityContext?.appArmorProfile;
  return field?.type === 'Unconfined' || pod.metadata?.annotations?.[APPARMOR_ANNOTATION_PREFIX + container.name] === 'unconfined';
}

/** Warnings for controls of the enforced level that the mutated pod fails because of what podvisor added. */
export function podSecurityWarnings(enforce: string | undefined, original: PodParts, mutated: PodParts, specField: string): string[] {
  if (enforce !== 'baseline' && enforce !== 'restricted') return [];
  const level: Level = enforce;
  const fail = (field: string, control: string, detail: string) => `${field}: pods fail Pod Security "${level}" control ${control} (${detail})`;
  const warnings: string[] = [];

  const originalVolumes = new Set((original.spec.volumes ?? []).map((v) => v.name));
  const hostPaths = (mutated.spec.volumes ?? []).filter((v) => v.hostPath !== undefined && !originalVolumes.has(v.name));
  if (hostPaths.length > 0) warnings.push(fail(`${specField}.volumes`, '"HostPath Volumes"', `${hostPaths.length} added by podvisor`));

  const hostNamespaces = (['hostPID', 'hostNetwork'] as const).filter((key) => mutated.spec[key] === true && original.spec[key] !== true);
  if (hostNamespaces.length > 0) warnings.push(fail(specField, '"Host Namespaces"', hostNamespaces.join(', ')));

  const allowed = level === 'restricted' ? RESTRICTED_CAPABILITIES : BASELINE_CAPABILITIES;
  const before = new Map(containersOf(original.spec).map(([c]) => [c.name, c]));
  for (const [container, where] of containersOf(mutated.spec)) {
    const had = capabilitySet(before.get(container.name));
    const added = [...capabilitySet(container)].filter((c) => !had.has(c) && !allowed.has(c));
    if (added.length > 0) warnings.push(fail(`${specField}.${where}.securityContext`, '"Capabilities"', added.join(', ')));
    const previous = before.get(container.name);
    if (appArmorUnconfined(mutated, container) && (previous === undefined || !appArmorUnconfined(original, previous))) {
      warnings.push(fail(`${specField}.${where}.securityContext`, '"AppArmor"', 'Unconfined'));
    }
  }
  return warnings;
}
