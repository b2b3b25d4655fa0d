// Source: kubernetes/kubernetes staging/src/k8s.io/pod-security-admission/policy/check_sysctls.go, versions 1.0, 1.27
// (net.ipv4.ip_local_reserved_ports), 1.29 (tcp_keepalive_time, tcp_fin_timeout, tcp_keepalive_intvl,
// tcp_keepalive_probes) and 1.32 (tcp_rmem, tcp_wmem, PR #125234). The 1.37 additions are above every supported version.
// Only spec.securityContext.sysctls is checked: the API has no container-level sysctls.
import type { Sysctl } from 'kubernetes-types/core/v1.js';
import { itemsOf, type PodView } from '../pod-view.js';
import type { Violation } from '../violation.js';
import type { PssCheck } from './check.js';

const SAFE_1_0 = ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start'];
const SAFE_1_27 = [...SAFE_1_0, 'net.ipv4.ip_local_reserved_ports'];
const SAFE_1_29 = [...SAFE_1_27, 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes'];
const SAFE_1_32 = [...SAFE_1_29, 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'];

export function safeSysctls(minor: number): readonly string[] {
  if (minor >= 32) return SAFE_1_32;
  if (minor >= 29) return SAFE_1_29;
  if (minor >= 27) return SAFE_1_27;
  return SAFE_1_0;
}

export const sysctls: PssCheck = {
  id: 'sysctls',
  level: 'baseline',
  since: 0,
  run(pod: PodView, minor: number): Violation[] {
    const safe = safeSysctls(minor);
    const out: Violation[] = [];
    for (const [sysctl, i] of itemsOf<Sysctl>(pod.spec.securityContext?.sysctls)) {
      if (!safe.includes(sysctl.name)) out.push({ check: 'sysctls', field: `${pod.specField}.securityContext.sysctls[${i}].name`, value: String(sysctl.name) });
    }
    return out;
  },
};
