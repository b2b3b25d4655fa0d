/**
 * Pod Security Standards levels and policy versions. PSA resolves `latest` to the newest check version its registry
 * knows (`policy/registry.go` maxVersion); in kube-apiserver 1.35 and 1.36 that is v1.35, so `latest` is v1.35 here.
 * Versions older than v1.25 are not offered: every check podvisor implements has the same verdict from v1.25 on as
 * the v1.25 function (the Windows exemptions of `allowPrivilegeEscalation`, `seccompProfile_restricted` and
 * `capabilities_restricted` arrived in v1.25).
 */
export const LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export type Level = (typeof LEVELS)[number];

export const OLDEST_MINOR = 25;
export const LATEST_MINOR = 35;

export const VERSION_PATTERN = /^(latest|v1\.(2[5-9]|3[0-5]))$/;

/** `v1.32` → 32, `latest` → 35. The schema has already checked the format. */
export function policyMinor(version: string): number {
  if (version === 'latest') return LATEST_MINOR;
  const minor = Number(version.slice('v1.'.length));
  if (!Number.isInteger(minor) || minor < OLDEST_MINOR || minor > LATEST_MINOR) throw new Error(`unsupported policy version ${version}`);
  return minor;
}
