// Sources (kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/):
// - check_appArmorProfile.go (1.0; the securityContext.appArmorProfile field check was added to the 1.0 function in
//   v1.30, PR #123435, and the beta annotation is still checked at 1.36);
// - check_seccompProfile_baseline.go (1.0: the alpha annotations; 1.19: the field);
// - check_seccompProfile_restricted.go (1.19; 1.25 exempts spec.os.name=windows; overrides seccompProfile_baseline);
// - check_seLinuxOptions.go (1.0; 1.31 adds container_engine_t, selinuxAllowedTypes1_31).
import type { PodView } from '../pod-view.js';
import { containersOf, isWindowsOs } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

function allowedAppArmorType(type: string | undefined): boolean {
  return type === 'RuntimeDefault' || type === 'Localhost';
}

function allowedAppArmorAnnotation(value: string): boolean {
  return value === '' || value === 'runtime/default' || value.startsWith('localhost/');
}

/** AppArmor: field types RuntimeDefault/Localhost only; annotations empty, runtime/default or localhost/*. */
export const appArmorProfile: PssCheck = {
  id: 'appArmorProfile',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    const podProfile = pod.spec.securityContext?.appArmorProfile;
    if (podProfile !== undefined && podProfile !== null && !allowedAppArmorType(podProfile.type)) {
      out.push({ check: 'appArmorProfile', field: `${pod.specField}.securityContext.appArmorProfile.type`, value: String(podProfile.type) });
    }
    for (const ref of containersOf(pod)) {
      const profile = ref.container.securityContext?.appArmorProfile;
      if (profile !== undefined && profile !== null && !allowedAppArmorType(profile.type)) {
        out.push({ check: 'appArmorProfile', field: `${ref.field}.securityContext.appArmorProfile.type`, value: String(profile.type) });
      }
    }
    for (const [key, value] of Object.entries(pod.metadata.annotations ?? {})) {
      if (key.startsWith(APPARMOR_ANNOTATION_PREFIX) && !allowedAppArmorAnnotation(String(value))) {
        out.push({ check: 'appArmorProfile', field: `${pod.metaField}.annotations[${key}]`, value: String(value) });
      }
    }
    return out;
  },
};

function validSeccomp(type: string | undefined): boolean {
  return type === 'RuntimeDefault' || type === 'Localhost';
}

const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION_PREFIX = 'container.seccomp.security.alpha.kubernetes.io/';

function validSeccompAnnotation(value: string): boolean {
  return value === 'runtime/default' || value === 'docker/default' || value.startsWith('localhost/');
}

/** v1.0–v1.18: the alpha annotations, for the pod and each container by name, runtime/default, docker/default or localhost/*. */
function seccompAnnotationsBaseline(pod: PodView): Violation[] {
  const annotations = pod.metadata.annotations ?? {};
  const keys = [SECCOMP_POD_ANNOTATION, ...containersOf(pod).map((ref) => SECCOMP_CONTAINER_ANNOTATION_PREFIX + String(ref.container.name))];
  return keys
    .filter((key) => annotations[key] !== undefined && !validSeccompAnnotation(String(annotations[key])))
    .map((key) => ({ check: 'seccompProfile_baseline', field: `${pod.metaField}.annotations[${key}]`, value: String(annotations[key]) }));
}

/** Seccomp, baseline: where a profile is set, its type must be RuntimeDefault or Localhost (annotations before v1.19). */
export const seccompProfileBaseline: PssCheck = {
  id: 'seccompProfile_baseline',
  level: 'baseline',
  since: 0,
  run(pod: PodView, minor: number): Violation[] {
    if (minor < 19) return seccompAnnotationsBaseline(pod);
    const out: Violation[] = [];
    const podProfile = pod.spec.securityContext?.seccompProfile;
    if (podProfile !== undefined && podProfile !== null && !validSeccomp(podProfile.type)) {
      out.push({ check: 'seccompProfile_baseline', field: `${pod.specField}.securityContext.seccompProfile.type`, value: String(podProfile.type) });
    }
    for (const ref of containersOf(pod)) {
      const profile = ref.container.securityContext?.seccompProfile;
      if (profile !== undefined && profile !== null && !validSeccomp(profile.type)) {
        out.push({ check: 'seccompProfile_baseline', field: `${ref.field}.securityContext.seccompProfile.type`, value: String(profile.type) });
      }
    }
    return out;
  },
};

/** Seccomp, restricted: RuntimeDefault or Localhost must be set, per container or (valid) at pod level. */
export const seccompProfileRestricted: PssCheck = {
  id: 'seccompProfile_restricted',
  level: 'restricted',
  since: 19,
  overrides: ['seccompProfile_baseline'],
  run(pod: PodView, minor: number): Violation[] {
    if (minor >= 25 && isWindowsOs(pod.spec)) return [];
    const out: Violation[] = [];
    const podProfile = pod.spec.securityContext?.seccompProfile;
    let podSet = false;
    if (podProfile !== undefined && podProfile !== null) {
      if (validSeccomp(podProfile.type)) podSet = true;
      else out.push({ check: 'seccompProfile_restricted', field: `${pod.specField}.securityContext.seccompProfile.type`, value: String(podProfile.type) });
    }
    for (const ref of containersOf(pod)) {
      const profile = ref.container.securityContext?.seccompProfile;
      if (profile !== undefined && profile !== null) {
        if (!validSeccomp(profile.type)) {
          out.push({ check: 'seccompProfile_restricted', field: `${ref.field}.securityContext.seccompProfile.type`, value: String(profile.type) });
        }
      } else if (!podSet) {
        out.push({ check: 'seccompProfile_restricted', field: `${ref.field}.securityContext.seccompProfile`, value: 'must be RuntimeDefault or Localhost' });
      }
    }
    return out;
  },
};

const SELINUX_TYPES_1_0 = ['', 'container_t', 'container_init_t', 'container_kvm_t'];
const SELINUX_TYPES_1_31 = [...SELINUX_TYPES_1_0, 'container_engine_t'];

/** SELinux: type from the allowed set, user and role empty. */
export const seLinuxOptions: PssCheck = {
  id: 'seLinuxOptions',
  level: 'baseline',
  since: 0,
  run(pod: PodView, minor: number): Violation[] {
    const allowed = minor >= 31 ? SELINUX_TYPES_1_31 : SELINUX_TYPES_1_0;
    const out: Violation[] = [];
    const visit = (options: { type?: string; user?: string; role?: string } | undefined, field: string) => {
      if (options === undefined || options === null) return;
      if (!allowed.includes(options.type ?? '')) out.push({ check: 'seLinuxOptions', field: `${field}.seLinuxOptions.type`, value: options.type ?? '' });
      if ((options.user ?? '').length > 0) out.push({ check: 'seLinuxOptions', field: `${field}.seLinuxOptions.user`, value: options.user });
      if ((options.role ?? '').length > 0) out.push({ check: 'seLinuxOptions', field: `${field}.seLinuxOptions.role`, value: options.role });
    };
    visit(pod.spec.securityContext?.seLinuxOptions, `${pod.specField}.securityContext`);
    for (const ref of containersOf(pod)) visit(ref.container.securityContext?.seLinuxOptions, `${ref.field}.securityContext`);
    return out;
  },
};
