import type { Operation } from '../admission/types.js';

export interface WorkloadKind {
  readonly group: string;
  readonly kind: string;
  /** Where the pod template lives; empty for a Pod, whose own metadata and spec are the "template". */
  readonly templatePath: readonly string[];
  readonly operations: readonly Operation[];
}

const TEMPLATE = ['spec', 'template'] as const;

/**
 * What podvisor mutates, and on which operations:
 * - Pods on CREATE only: a Pod's spec is immutable on UPDATE (kubernetes-rules.md §5.7).
 * - A Job's template is immutable after creation, so a Job UPDATE gets no template patch.
 * - The other workloads on CREATE and UPDATE, so a re-applied manifest gets the same template back.
 */
export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  { group: '', kind: 'Pod', templatePath: [], operations: ['CREATE'] },
  { group: 'apps', kind: 'DaemonSet', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'] },
  { group: 'apps', kind: 'Deployment', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'] },
  { group: 'apps', kind: 'StatefulSet', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'] },
  { group: 'apps', kind: 'ReplicaSet', templatePath: TEMPLATE, operations: ['CREATE', 'UPDATE'] },
  { group: 'batch', kind: 'Job', templatePath: TEMPLATE, operations: ['CREATE'] },
  { group: 'batch', kind: 'CronJob', templatePath: ['spec', 'jobTemplate', 'spec', 'template'], operations: ['CREATE', 'UPDATE'] },
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
