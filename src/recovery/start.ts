import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { findKubeConfig } from '../k8s/kubeconfig.js';
import type { Logger } from '../observability/logger.js';
import { startLxcfsRecovery, type LxcfsRecovery } from './controller.js';
import { kubeRecoveryApi } from './kube-api.js';
import { createRecoveryMetrics } from './metrics.js';
import { recoveryOptions } from './options.js';

/**
 * `serve --lxcfs-recovery` (or `lxcfsRecovery.enabled`): starts the controller with the cluster's credentials. The
 * Lease holder identity is the pod name (Downward API POD_NAME in deploy/, else the hostname, which is the pod name).
 */
export async function startConfiguredLxcfsRecovery(
  config: Config,
  log: Logger,
  registry: Registry,
  kubeConfig: KubeConfig | undefined = findKubeConfig(undefined)?.kubeConfig,
): Promise<LxcfsRecovery> {
  if (kubeConfig === undefined) {
    throw new ConfigError('lxcfs recovery (--lxcfs-recovery) needs a cluster: run in a pod or set KUBECONFIG');
  }
  const identity = process.env['POD_NAME'] || hostname();
  const { evictionsPerMinute, evictionBurst, lxcfsSelector } = config.lxcfsRecovery;
  const options = recoveryOptions(config.namespace, identity, { evictionsPerMinute, evictionBurst, lxcfsSelector });
  const recoveryLog = log.child({ component: 'lxcfs-recovery' });
  recoveryLog.info({ identity, lease: options.leaseName, evictionsPerMinute, lxcfsSelector }, 'lxcfs restart recovery enabled');
  return startLxcfsRecovery(kubeRecoveryApi(kubeConfig, options), options, recoveryLog, createRecoveryMetrics(registry));
}
