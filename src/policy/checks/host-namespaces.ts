// Source: kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_hostNamespaces.go (1.0) and
// check_hostPorts.go (1.0). One VersionedCheck each, unchanged through release-1.36.
import type { PodView } from '../pod-view.js';
import type { ContainerPort } from 'kubernetes-types/core/v1.js';
import { containersOf, itemsOf } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

/** hostNetwork, hostPID and hostIPC must be unset or false. */
export const hostNamespaces: PssCheck = {
  id: 'hostNamespaces',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    for (const name of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
      if (pod.spec[name] === true) out.push({ check: 'hostNamespaces', field: `${pod.specField}.${name}`, subject: { kind: 'hostNamespace', name } });
    }
    return out;
  },
};

/** ports[*].hostPort must be unset or 0, in every container (init and ephemeral included). */
export const hostPorts: PssCheck = {
  id: 'hostPorts',
  level: 'baseline',
  since: 0,
  run(pod: PodView): Violation[] {
    const out: Violation[] = [];
    for (const ref of containersOf(pod)) {
      for (const [port, i] of itemsOf<ContainerPort>(ref.container.ports)) {
        if (port.hostPort !== undefined && port.hostPort !== 0) {
          out.push({
            check: 'hostPorts',
            field: `${ref.field}.ports[${i}].hostPort`,
            value: String(port.hostPort),
            subject: { kind: 'hostPort', hostPort: port.hostPort, containerPort: port.containerPort },
          });
        }
      }
    }
    return out;
  },
};
