// The user-facing contract: every annotation and label podvisor reads or writes. Keys match exactly and
// case-sensitively, like every Kubernetes annotation key (`podvisor.io/LXCFS` is not `podvisor.io/lxcfs`).

export const ANNOTATION = {
  lxcfs: 'podvisor.io/lxcfs',
  fuse: 'podvisor.io/fuse',
  apparmor: 'podvisor.io/apparmor',
  agent: 'podvisor.io/agent',
  /** The containers every feature targets, unless the feature's own `podvisor.io/<feature>-containers` is set. */
  containers: 'podvisor.io/containers',
  lxcfsContainers: 'podvisor.io/lxcfs-containers',
  fuseContainers: 'podvisor.io/fuse-containers',
  apparmorContainers: 'podvisor.io/apparmor-containers',
  agentContainers: 'podvisor.io/agent-containers',
  status: 'podvisor.io/status',
} as const;

/** Every `podvisor.io/` annotation key podvisor knows; any other key with that prefix is a typo and gets a warning. */
export const KNOWN_ANNOTATIONS: readonly string[] = Object.values(ANNOTATION);

export const ANNOTATION_PREFIX = 'podvisor.io/';

/** Objects carrying this label with value "true" are never mutated (the lxcfs DaemonSet carries it). */
export const EXCLUDE_LABEL = 'podvisor.io/exclude';

/**
 * Audit annotation (AdmissionResponse.auditAnnotations) listing the violations of the policy's audit level. The
 * apiserver records it as `<webhook name>/<key>` (`validate.podvisor.io/audit-violations`) and drops a key whose
 * prefixed form is not a qualified name with exactly one "/" (apiserver admission `checkKeyFormat`): no "/" here.
 */
export const AUDIT_VIOLATIONS_ANNOTATION = 'audit-violations';

/** Set by the kubelet on mirror pods of static manifests: never mutate or deny those. */
export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

/** The pre-1.30 AppArmor annotation, one per container: `<prefix><container name>`. */
export const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';

/** Pod Security Admission's enforce label on a namespace (kubernetes-rules.md §9). */
export const PSA_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
