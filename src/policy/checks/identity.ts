// Sources (kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/):
// - check_allowPrivilegeEscalation.go (1.8; 1.25 exempts spec.os.name=windows);
// - check_runAsNonRoot.go (1.0; 1.35 skips pods with spec.hostUsers=false — before 1.35 that relaxation needed the
//   perma-alpha UserNamespacesPodSecurityStandards gate, off by default, so podvisor does not apply it there);
// - check_runAsUser.go (1.23; 1.35 skips pods with spec.hostUsers=false, same history).
import type { PodView } from '../pod-view.js';
import { containersOf, inUserNamespace, isWindowsOs } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

/** allowPrivilegeEscalation must be explicitly false in every container. */
export const allowPrivilegeEscalation: PssCheck = {
  id: 'allowPrivilegeEscalation',
  level: 'restricted',
  since: 8,
  run(pod: PodView, minor: number): Violation[] {
    if (minor >= 25 && isWindowsOs(pod.spec)) return [];
    return containersOf(pod)
      .filter((ref) => ref.container.securityContext?.allowPrivilegeEscalation !== false)
      .map((ref) => ({ check: 'allowPrivilegeEscalation', field: `${ref.field}.securityContext.allowPrivilegeEscalation`, value: 'must be false' }));
  },
};

/** runAsNonRoot: true at pod level (not overridden with false) or in every container. */
export const runAsNonRoot: PssCheck = {
  id: 'runAsNonRoot',
  level: 'restricted',
  since: 0,
  run(pod: PodView, minor: number): Violation[] {
    if (minor >= 35 && inUserNamespace(pod.spec)) return [];
    const out: Violation[] = [];
    const podValue = pod.spec.securityContext?.runAsNonRoot;
    if (podValue === false) out.push({ check: 'runAsNonRoot', field: `${pod.specField}.securityContext.runAsNonRoot`, value: 'false' });
    for (const ref of containersOf(pod)) {
      const value = ref.container.securityContext?.runAsNonRoot;
      if (value === false) out.push({ check: 'runAsNonRoot', field: `${ref.field}.securityContext.runAsNonRoot`, value: 'false' });
      else if (value === undefined && podValue !== true) {
        out.push({ check: 'runAsNonRoot', field: `${ref.field}.securityContext.runAsNonRoot`, value: 'must be true (here or at pod level)' });
      }
    }
    return out;
  },
};

/** runAsUser must not be 0, at pod or container level (unset is fine). */
export const runAsUser: PssCheck = {
  id: 'runAsUser',
  level: 'restricted',
  since: 23,
  run(pod: PodView, minor: number): Violation[] {
    if (minor >= 35 && inUserNamespace(pod.spec)) return [];
    const out: Violation[] = [];
    if (pod.spec.securityContext?.runAsUser === 0) out.push({ check: 'runAsUser', field: `${pod.specField}.securityContext.runAsUser`, value: '0' });
    for (const ref of containersOf(pod)) {
      if (ref.container.securityContext?.runAsUser === 0) out.push({ check: 'runAsUser', field: `${ref.field}.securityContext.runAsUser`, value: '0' });
    }
    return out;
  },
};
