import { Counter, Gauge, type Registry } from 'prom-client';

export interface RecoveryMetrics {
  readonly lxcfsRestarts: Counter;
  readonly evictions: Counter<'result'>;
  readonly barePods: Gauge;
  readonly bareReports: Counter;
  readonly leader: Gauge;
}

export function createRecoveryMetrics(registry: Registry): RecoveryMetrics {
  const registers = [registry];
  return {
    lxcfsRestarts: new Counter({
      name: 'podvisor_lxcfs_restarts_total',
      help: 'lxcfs restarts seen on any node (container restart or pod replaced)',
      registers,
    }),
    evictions: new Counter({
      name: 'podvisor_lxcfs_recovery_evictions_total',
      help: 'Evictions of pods with stale LXCFS mounts, by result (evicted, gone, blocked = 429 from a PodDisruptionBudget, error)',
      labelNames: ['result'] as const,
      registers,
    }),
    barePods: new Gauge({
      name: 'podvisor_lxcfs_recovery_bare_pods',
      help: 'Pods with stale LXCFS mounts that have no controller, so podvisor reports them and leaves them alone (last pass)',
      registers,
    }),
    bareReports: new Counter({
      name: 'podvisor_lxcfs_recovery_bare_pod_reports_total',
      help: 'Events written for pods with stale LXCFS mounts and no controller',
      registers,
    }),
    leader: new Gauge({
      name: 'podvisor_lxcfs_recovery_leader',
      help: '1 while this replica holds the recovery Lease',
      registers,
    }),
  };
}
