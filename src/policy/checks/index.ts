import type { Level } from '../version.js';
import { capabilitiesBaseline, capabilitiesRestricted } from './capabilities.js';
import type { PssCheck } from './check.js';
import { hostNamespaces, hostPorts } from './host-namespaces.js';
import { allowPrivilegeEscalation, runAsNonRoot, runAsUser } from './identity.js';
import { privileged, windowsHostProcess } from './privileged.js';
import { hostProbesAndHostLifecycle } from './probe-host.js';
import { procMount, procMountRestricted } from './proc-mount.js';
import { appArmorProfile, seccompProfileBaseline, seccompProfileRestricted, seLinuxOptions } from './profiles.js';
import { sysctls } from './sysctls.js';
import { hostPathVolumes, restrictedVolumes } from './volumes.js';

export type { PssCheck } from './check.js';

/** Every check of pod-security-admission's registry as of release-1.36 (whose `latest` is policy v1.35). */
export const PSS_CHECKS: readonly PssCheck[] = [
  hostNamespaces,
  privileged,
  capabilitiesBaseline,
  hostPathVolumes,
  hostPorts,
  appArmorProfile,
  seLinuxOptions,
  procMount,
  seccompProfileBaseline,
  sysctls,
  windowsHostProcess,
  hostProbesAndHostLifecycle,
  restrictedVolumes,
  allowPrivilegeEscalation,
  runAsNonRoot,
  runAsUser,
  seccompProfileRestricted,
  capabilitiesRestricted,
  procMountRestricted,
];

/**
 * The checks in force for a level at a policy version, as `policy/registry.go` builds them: privileged has none;
 * baseline has every baseline check that exists at the version; restricted adds the restricted checks and drops the
 * baseline checks they override (only overrides of checks that exist at that version count).
 */
export function checksFor(level: Level, minor: number): PssCheck[] {
  if (level === 'privileged') return [];
  const existing = PSS_CHECKS.filter((c) => c.since <= minor && (level === 'restricted' || c.level === 'baseline'));
  if (level === 'baseline') return existing;
  const overridden = new Set(existing.filter((c) => c.level === 'restricted').flatMap((c) => c.overrides ?? []));
  return existing.filter((c) => !overridden.has(c.id));
}
