// Names of the Kubernetes objects podvisor creates, reads or is reached through. The deploy manifests (deploy/) and
// the recovery controller use the same names; change them only together.

/** Both webhook configurations (MutatingWebhookConfiguration and ValidatingWebhookConfiguration) are named this. */
export const WEBHOOK_CONFIGURATION_NAME = 'podvisor';

export const WEBHOOK_NAME = {
  /** Objects that opted in by annotation (filtered by matchConditions). */
  mutate: 'mutate.podvisor.io',
  /**
   * Objects in namespaces that opted in by label. A second entry because namespaceSelector and matchConditions are
   * ANDed (kubernetes-rules.md §2): "namespace label OR object annotation" cannot be one webhook.
   */
  mutateNamespace: 'mutate-namespace.podvisor.io',
  validate: 'validate.podvisor.io',
} as const;

/**
 * The namespace-label entry of one feature: `mutate-namespace.podvisor.io` for lxcfs (`podvisor.io/lxcfs=enabled`),
 * `mutate-namespace-<feature>.podvisor.io` for the others. A label selector cannot OR two keys, so each namespace
 * opt-in label needs its own entry.
 */
export function namespaceWebhookName(feature: string): string {
  return feature === 'lxcfs' ? WEBHOOK_NAME.mutateNamespace : `mutate-namespace-${feature}.podvisor.io`;
}

/** The Service in front of the pods (config `service` / `namespace` default to these). */
export const SERVICE_NAME = 'podvisor';
export const NAMESPACE = 'podvisor-system';
/** Service port 443 → container port 8443. */
export const SERVICE_PORT = 443;
export const CONTAINER_PORT = 8443;
export const PATH = { mutate: '/mutate', validate: '/validate' } as const;

/** The TLS Secret shared by every replica: CA, serving certificate and key (and the previous CA during rotation). */
export const TLS_SECRET_NAME = 'podvisor-tls';
export const TLS_SECRET_KEYS = {
  ca: 'ca.crt',
  cert: 'tls.crt',
  key: 'tls.key',
  /** The CA's private key: any replica can renew the serving certificate without a new CA. */
  caKey: 'ca.key',
  /** The CA being retired, kept in the caBundle until every replica serves a certificate of the new CA. */
  previousCa: 'ca-previous.crt',
} as const;

/** The config file, mounted from this ConfigMap. */
export const CONFIG_MAP_NAME = 'podvisor-config';
export const CONFIG_FILE = '/etc/podvisor/config.yaml';

/** Leader-election Lease of the lxcfs recovery controller (deploy/). */
export const RECOVERY_LEASE_NAME = 'podvisor-recovery';

/** `source.component` / `reportingComponent` of the Events podvisor writes, and the field manager of its writes. */
export const COMPONENT = 'podvisor';
