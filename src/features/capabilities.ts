import type { Container } from 'kubernetes-types/core/v1.js';

/**
 * Capability names are bare (`SYS_ADMIN`). containerd prepends `CAP_` itself, so an owner's `CAP_SYS_ADMIN` becomes
 * `CAP_CAP_SYS_ADMIN`, which runc ≥ rc94 ignores: the capability is silently missing (kubernetes-rules.md §7,
 * kubernetes/kubernetes#119568). Input is normalised: trimmed, upper-case, `CAP_` stripped.
 */
export function normalizeCapability(name: string): string {
  const upper = name.trim().toUpperCase();
  return upper.startsWith('CAP_') ? upper.slice(4) : upper;
}

/** Plain ASCII order (`SYSLOG` before `SYS_PTRACE`), the fixed order podvisor emits. */
export function sortCapabilities(names: Iterable<string>): string[] {
  // The default order of sort() is UTF-16 code units: for these names, ASCII order, without a comparator call per pair.
  return [...new Set(names)].sort();
}

/** The normalised, de-duplicated `capabilities.add` of a container, in the owner's order. */
export function addedCapabilities(container: Container): string[] {
  return [...new Set((container.securityContext?.capabilities?.add ?? []).map(normalizeCapability).filter((c) => c.length > 0))];
}
