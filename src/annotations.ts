// The user-facing contract: every annotation and label podvisor reads or writes. Keys match exactly and
// case-sensitively, like every Kubernetes annotation key (`podvisor.io/LXCFS` is not `podvisor.io/lxcfs`).

export const ANNOTATION = {
  lxcfs: 'podvisor.io/lxcfs',
  containers: 'podvisor.io/containers',
  status: 'podvisor.io/status',
} as const;

/** Objects carrying this label with value "true" are never mutated (the lxcfs DaemonSet carries it). */
export const EXCLUDE_LABEL = 'podvisor.io/exclude';

/** Set by the kubelet on mirror pods of static manifests: never mutate or deny those. */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';
