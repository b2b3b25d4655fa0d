// Source: kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_capabilities_baseline.go
// (1.0, capabilities_allowed_1_0) and check_capabilities_restricted.go (1.22; 1.25 exempts spec.os.name=windows).
// PSA compares exact strings: `CAP_CHOWN` is not `CHOWN`, and `all` is not `ALL`.
import type { PodView } from '../pod-view.js';
import { containersOf, isWindowsOs, itemsOf } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

export const BASELINE_CAPABILITIES: ReadonlySet<string> = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);

/** capabilities.add may only hold the 13 baseline capabilities (NET_RAW is not one of them). */
export const capabilitiesBaseline: PssCheck = {
  id: 'capabilities_baseline',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    for (const ref of containersOf(pod)) {
      for (const [capability, i] of itemsOf<string>(ref.container.securityContext?.capabilities?.add, 'string')) {
        if (!BASELINE_CAPABILITIES.has(capability)) {
          out.push({
            check: 'capabilities_baseline',
            field: `${ref.field}.securityContext.capabilities.add[${i}]`,
            value: capability,
            subject: { kind: 'capability', ref, capability },
          });
        }
      }
    }
    return out;
  },
};

/** Pod Security restricted allows only this one in `capabilities.add`. */
export const RESTRICTED_CAPABILITIES: ReadonlySet<string> = new Set(['NET_BIND_SERVICE']);

/** drop must contain "ALL" and add may only hold NET_BIND_SERVICE; Windows pods are exempt from v1.25. */
export const capabilitiesRestricted: PssCheck = {
  id: 'capabilities_restricted',
  level: 'restricted',
  since: 22,
  overrides: ['capabilities_baseline'],
  run(pod: PodView, minor: number): Violation[] {
    if (minor >= 25 && isWindowsOs(pod.spec)) return [];
    const out: Violation[] = [];
    for (const ref of containersOf(pod)) {
      const caps = ref.container.securityContext?.capabilities;
      if (!itemsOf<string>(caps?.drop, 'string').some(([c]) => c === 'ALL')) {
        out.push({ check: 'capabilities_restricted', field: `${ref.field}.securityContext.capabilities.drop`, value: 'must include ALL' });
      }
      for (const [capability, i] of itemsOf<string>(caps?.add, 'string')) {
        if (!RESTRICTED_CAPABILITIES.has(capability)) {
          out.push({
            check: 'capabilities_restricted',
            field: `${ref.field}.securityContext.capabilities.add[${i}]`,
            value: capability,
            subject: { kind: 'capability', ref, capability },
          });
        }
      }
    }
    return out;
  },
};
