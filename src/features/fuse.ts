import type { Container } from 'kubernetes-types/core/v1.js';
import { ANNOTATION } from '../annotations.js';
import { parseAppArmorValue, ownerAppArmorProfile, writeAppArmorProfile } from './apparmor.js';
import { addedCapabilities, sortCapabilities } from './capabilities.js';
import { parseBooleanSetting, type Feature, type FeatureContext, type FeatureResult, type TargetContainer } from './feature.js';

/**
 * FUSE for an unprivileged container (kubernetes-rules.md §8): `/dev/fuse` through a device plugin's extended
 * resource, SYS_ADMIN for mount(2), and an AppArmor profile that allows FUSE mounts. Never `privileged`.
 */

/** Device plugins that expose /dev/fuse: any of them already in a container's resources means "FUSE requested". */
export const KNOWN_FUSE_RESOURCES: readonly string[] = ['smarter-devices/fuse', 'squat.ai/fuse', 'github.com/fuse', 'hdls.me/fuse', 'nextflow.io/fuse'];

/**
 * Extended resources are integers and not overcommittable (ValidateResourceRequirements, §5.4): a request must
 * equal the limit and never stands alone. Podvisor writes `limits` only; the apiserver defaults the request from
 * the limit on Pods, and templates may keep limit-only. An owner's value is kept.
 */
function requestDevice(ctx: FeatureContext, { container, field }: TargetContainer): { changed: boolean; resource: string } {
  const { resourceName } = ctx.config.fuse;
  const names = [resourceName, ...KNOWN_FUSE_RESOURCES.filter((n) => n !== resourceName)];
  const limits = container.resources?.limits ?? {};
  const requests = container.resources?.requests ?? {};
  const present = names.find((n) => limits[n] !== undefined || requests[n] !== undefined);
  if (present === undefined) {
    ((container.resources ??= {}).limits ??= {})[resourceName] = '1';
    return { changed: true, resource: resourceName };
  }
  const request = requests[present];
  if (limits[present] === undefined && request !== undefined) {
    // A request without a limit is invalid ("Limit must be set for non overcommitable resources"): complete it.
    ((container.resources ??= {}).limits ??= {})[present] = request;
    return { changed: true, resource: present };
  }
  if (request !== undefined && String(request) !== String(limits[present])) {
    ctx.warn(`${field}.resources: requests["${present}"] must equal its limit; owner's values kept`);
  }
  return { changed: false, resource: present };
}

/** SYS_ADMIN, bare, added to what the owner has; the owner's `CAP_`/lower-case spellings are normalised. */
function addSysAdmin(container: Container): boolean {
  const current = container.securityContext?.capabilities?.add ?? [];
  const normalized = addedCapabilities(container);
  if (normalized.includes('SYS_ADMIN') && normalized.length === current.length && normalized.every((c, i) => c === current[i])) return false;
  ((container.securityContext ??= {}).capabilities ??= {}).add = sortCapabilities([...normalized, 'SYS_ADMIN']);
  return true;
}

function apply(ctx: FeatureContext): FeatureResult {
  const profile = parseAppArmorValue(ctx.config.fuse.appArmorProfile);
  let changed = false;
  // Per container, the device resource that serves it (an owner's plugin may differ from the configured one).
  const resources: Record<string, string> = {};
  for (const target of [...ctx.targets].sort((a, b) => (a.container.name < b.container.name ? -1 : 1))) {
    const { container, field } = target;
    const device = requestDevice(ctx, target);
    resources[container.name] = device.resource;
    changed = device.changed || changed;
    changed = addSysAdmin(container) || changed;

    // containerd's RuntimeDefault AppArmor profile has `deny mount,`: FUSE mounts fail on AppArmor hosts.
    const owner = ownerAppArmorProfile(ctx.pod, target, true);
    if (owner === undefined && profile !== undefined) {
      changed = writeAppArmorProfile(ctx, target, profile, ANNOTATION.fuse) === 'written' || changed;
    } else if (owner?.profile?.type === 'RuntimeDefault') {
      ctx.warn(`${field}: AppArmor RuntimeDefault denies mount; FUSE mounts fail on AppArmor nodes`);
    }
    // The apiserver rejects Bidirectional propagation in an unprivileged container (kubernetes-rules.md §5.2), and
    // podvisor never grants `privileged`: say so instead of producing a container the apiserver will refuse.
    const bidirectional = (container.volumeMounts ?? []).findIndex((m) => m.mountPropagation === 'Bidirectional');
    if (bidirectional >= 0 && container.securityContext?.privileged !== true) {
      ctx.warn(`${field}.volumeMounts[${bidirectional}].mountPropagation: Bidirectional needs privileged: true; the apiserver rejects it`);
    }
    // no_new_privs disables the setuid bit of fusermount3, so a non-root FUSE daemon cannot mount (§8.5).
    if (container.securityContext?.allowPrivilegeEscalation === false) {
      ctx.warn(`${field}.securityContext.allowPrivilegeEscalation: false breaks setuid fusermount (non-root FUSE)`);
    }
  }
  return { changed, detail: { resources } };
}

export const fuse: Feature = {
  name: 'fuse',
  annotation: ANNOTATION.fuse,
  containersAnnotation: ANNOTATION.fuseContainers,
  parse: parseBooleanSetting,
  apply,
};
