import type { PodSpec } from 'kubernetes-types/core/v1.js';
import type { TargetContainer } from './feature.js';
import { didYouMean } from '../closest-name.js';

/**
 * The containers a feature injects into: all of `spec.containers`, or exactly the names listed in `listed` (the
 * feature's `podvisor.io/<feature>-containers`, else the shared `podvisor.io/containers`, named by `key` in
 * warnings), which may name init containers and native sidecars. Ephemeral containers are never targets: they cannot
 * have resources or new volumes (kubernetes-rules.md §5.5).
 */
export function selectTargets(spec: PodSpec, specField: string, key: string, listed: string | undefined, warn: (message: string) => void): TargetContainer[] {
  const containers = spec.containers ?? [];
  if (listed === undefined) return containers.map((container, i) => ({ container, field: `${specField}.containers[${i}]` }));

  const names = [...new Set(listed.split(',').map((name) => name.trim()).filter((name) => name.length > 0))];
  if (names.length === 0) warn(`${key}: no container named; nothing injected`);
  const targets: TargetContainer[] = [];
  const known = [...containers, ...(spec.initContainers ?? [])].map((c) => c.name).filter((n): n is string => typeof n === "string");
  for (const name of names) {
    const index = containers.findIndex((c) => c.name === name);
    const initIndex = (spec.initContainers ?? []).findIndex((c) => c.name === name);
    if (index >= 0) targets.push({ container: containers[index]!, field: `${specField}.containers[${index}]` });
    else if (initIndex >= 0) targets.push({ container: spec.initContainers![initIndex]!, field: `${specField}.initContainers[${initIndex}]` });
    else if ((spec.ephemeralContainers ?? []).some((c) => c.name === name)) warn(`${key}: "${name}" is an ephemeral container; never injected`);
    else warn(`${key}: no container named "${name}"${didYouMean(name, known)}`);
  }
  return targets;
}
