// Source: kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_hostProbesAndhostLifecycle.go
// (ID hostProbesAndHostLifecycle, MinimumVersion 1.34, PR #125271). Pinning a version below v1.34 disables it.
import type { PodView } from '../pod-view.js';
import { containersOf } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

interface HostHandler {
  httpGet?: { host?: string } | null;
  tcpSocket?: { host?: string } | null;
}

export const hostProbesAndHostLifecycle: PssCheck = {
  id: 'hostProbesAndHostLifecycle',
  level: 'baseline',
  since: 34,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    const visit = (handler: HostHandler | undefined | null, field: string) => {
      if (handler === undefined || handler === null) return;
      for (const kind of ['httpGet', 'tcpSocket'] as const) {
        const host = handler[kind]?.host;
        if (host !== undefined && host !== '') out.push({ check: 'hostProbesAndHostLifecycle', field: `${field}.${kind}.host`, value: host });
      }
    };
    for (const ref of containersOf(pod)) {
      const c = ref.container;
      visit(c.livenessProbe, `${ref.field}.livenessProbe`);
      visit(c.readinessProbe, `${ref.field}.readinessProbe`);
      visit(c.startupProbe, `${ref.field}.startupProbe`);
      visit(c.lifecycle?.postStart as HostHandler | undefined, `${ref.field}.lifecycle.postStart`);
      visit(c.lifecycle?.preStop as HostHandler | undefined, `${ref.field}.lifecycle.preStop`);
    }
    return out;
  },
};
