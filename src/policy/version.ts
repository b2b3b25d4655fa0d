/**
 * Pod Security Standards levels and policy versions. PSA resolves `latest` to the newest check version its registry
 * knows (`policy/registry.go` maxVersion); in kube-apiserver 1.35 and 1.36 that is v1.35, so `latest` is v1.35 here.
 * Every version PSA accepts is accepted (`api.ParseVersion`: "latest" or `v1.<minor>`, v1.0 onward): each check
 * applies the newest of its versions at or below the pinned one (the pre-1.19 seccomp annotations, the v1.25 Windows
 * exemptions, ...), and a pin above v1.35 evaluates like v1.35, as in PSA.
 */
export const LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export type Level = (typeof LEVELS)[number];

export const LATEST_MINOR = 35;

export const VERSION_PATTERN = /^(latest|v1\.(0|[1-9]\d{0,2}))$/;

/** `v1.32` → 32, `latest` and anything newer than v1.35 → 35. The schema has already checked the format. */
export function policyMinor(version: string): number {
  if (version === 'latest') return LATEST_MINOR;
  const minor = Number(version.slice('v1.'.length));
  if (!Number.isInteger(minor) || minor < 0) throw new Error(`unsupported policy version ${version}`);
  return Math.min(minor, LATEST_MINOR);
}
