// Sources (kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/):
// - check_procMount_baseline.go (ID procMount; 1.0 procMount_1_0; 1.35 procMount1_35baseline, which allows any value
//   when spec.hostUsers is false — PR #132157, which also dropped the UserNamespacesPodSecurityStandards gate);
// - check_procMount_restricted.go (ID procMount_restricted, 1.35, OverrideCheckIDs procMount: restricted keeps the
//   unconditional procMount_1_0 even for user-namespaced pods).
import type { PodView } from '../pod-view.js';
import { containersOf, inUserNamespace } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

function procMountViolations(pod: PodView, check: string): Violation[] {
  const out: Violation[] = [];
  for (const ref of containersOf(pod)) {
    const procMount = ref.container.securityContext?.procMount;
    if (procMount !== undefined && procMount !== null && procMount !== 'Default') {
      out.push({ check, field: `${ref.field}.securityContext.procMount`, value: procMount });
    }
  }
  return out;
}

export const procMount: PssCheck = {
  id: 'procMount',
  level: 'baseline',
  since: 0,
  run(pod: PodView, minor: number): Violation[] {
    if (minor >= 35 && inUserNamespace(pod.spec)) return [];
    return procMountViolations(pod, 'procMount');
  },
};

export const procMountRestricted: PssCheck = {
  id: 'procMount_restricted',
  level: 'restricted',
  since: 35,
  overrides: ['procMount'],
  run(pod: PodView): Violation[] {
    return procMountViolations(pod, 'procMount_restricted');
  },
};
