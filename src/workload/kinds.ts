import type { Operation } from '../admission/types.js';

export interface WorkloadKind {
  readonly group: string;
  readonly kind: string;
  /** Where the pod template lives; empty for a Pod, whose own metadata and spec are the "template". */
  readonly templatePath: readonly string[];
  readonly operations: readonly Operation[];
  /** The API resource, as webhook rules name it. */
  readonly resource: string;
  /**
   * The kube-controller-manager controller whose service account creates this workload's Pods (with
   * `--use-service-account-credentials`, the default of kubeadm and managed control planes); absent for a Pod.
   */
  readonly podCreator?: string;
}

const TEMPLATE = ['spec', 'template'] as const;

/**
 * What podvisor mutates, and on which operations:
 * - Pods on CREATE only: a Pod's spec is immutable on UPDATE (kubernetes-rules.md §5.7).
 * - A Job's template is immutable after creation, so a Job UPDATE gets no template patch.
 * - The other workloads on CREATE and UPDATE, so a re-applied manifest gets the same template back.
 */
export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  { group: '', kind: 'Pod', resource: 'pods', templatePath: [], operations: ['CREATE'] },
  { group: 'apps', kind: 'DaemonSet', resource: 'daemonsets', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'], podCreator: 'daemon-set-controller' },
  // A Deployment's Pods come from its ReplicaSets, created by the deployment controller and filled by the replicaset one.
  { group: 'apps', kind: 'Deployment', resource: 'deployments', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'], podCreator: 'replicaset-controller' },
  { group: 'apps', kind: 'StatefulSet', resource: 'statefulsets', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'], podCreator: 'statefulset-controller' },
  { group: 'apps', kind: 'ReplicaSet', resource: 'replicasets', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'], podCreator: 'replicaset-controller' },
  { group: 'batch', kind: 'Job', resource: 'jobs', templatePath: TEMPLATE, operations: ['CREATE'], podCreator: 'job-controller' },
  // A CronJob's Jobs are created by the cronjob controller; their Pods by the job controller.
  { group: 'batch', kind: 'CronJob', resource: 'cronjobs', templatePath: ['spec', 'jobTemplate', 'spec', 'template'], operations: ['CREATE', 'UPDATE'], podCreator: 'job-controller' },
];

export function findWorkloadKind(group: string, version: string, kind: string): WorkloadKind | undefined {
  if (version !== 'v1') return undefined;
  return WORKLOAD_KINDS.find((k) => k.group === group && k.kind === kind);
}

/** `apps/v1` → group "apps", version "v1"; `v1` → core group. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}
