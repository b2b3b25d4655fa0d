import { RECOVERY_LEASE_NAME } from '../k8s/names.js';

export interface RecoveryOptions {
  /** Namespace of the lxcfs DaemonSet and of the Lease (podvisor's own). */
  readonly namespace: string;
  /** Label selector of the lxcfs DaemonSet's pods (deploy/components/lxcfs). */
  readonly lxcfsSelector: string;
  readonly lxcfsContainer: string;
  /** This replica's name in the Lease. */
  readonly identity: string;
  readonly leaseName: string;
  readonly leaseDurationSeconds: number;
  /** How often the holder renews and the others retry. */
  readonly leaseRenewMs: number;
  /** Evictions per minute across the cluster, and how many may go at once. */
  readonly evictionsPerMinute: number;
  readonly evictionBurst: number;
  /** Wait before retrying an eviction a PodDisruptionBudget refused (429) or that failed. */
  readonly evictionRetryMs: number;
  /** Full pass over every node while leading (catches restarts seen by no leader). */
  readonly resyncMs: number;
}

export function recoveryOptions(namespace: string, identity: string, overrides: Partial<RecoveryOptions> = {}): RecoveryOptions {
  return {
    namespace,
    lxcfsSelector: 'app.kubernetes.io/name=lxcfs',
    lxcfsContainer: 'lxcfs',
    identity,
    leaseName: RECOVERY_LEASE_NAME,
    leaseDurationSeconds: 15,
    leaseRenewMs: 5_000,
    evictionsPerMinute: 10,
    evictionBurst: 2,
    evictionRetryMs: 30_000,
    resyncMs: 300_000,
    ...overrides,
  };
}
