// Source: kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_privileged.go (1.0) and
// check_windowsHostProcess.go (1.0).
import type { PodView } from '../pod-view.js';
import { containersOf } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

/** securityContext.privileged must be unset or false in every container. */
export const privileged: PssCheck = {
  id: 'privileged',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    return containersOf(pod)
      .filter((ref) => ref.container.securityContext?.privileged === true)
      .map((ref) => ({ check: 'privileged', field: `${ref.field}.securityContext.privileged`, subject: { kind: 'privileged', ref } }));
  },
};

/** windowsOptions.hostProcess must be unset or false, at pod and container level. */
export const windowsHostProcess: PssCheck = {
  id: 'windowsHostProcess',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    if (pod.spec.securityContext?.windowsOptions?.hostProcess === true) {
      out.push({ check: 'windowsHostProcess', field: `${pod.specField}.securityContext.windowsOptions.hostProcess` });
    }
    for (const ref of containersOf(pod)) {
      if (ref.container.securityContext?.windowsOptions?.hostProcess === true) {
        out.push({ check: 'windowsHostProcess', field: `${ref.field}.securityContext.windowsOptions.hostProcess` });
      }
    }
    return out;
  },
};
