import type { PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { KubeObject } from '../admission/types.js';
import type { WorkloadKind } from '../workload/kinds.js';
import type { PodView } from './pod-view.js';
import { withApiDefaults } from './api-defaults.js';
import { isRecord } from '../json-value.js';

/**
 * The pod of a Pod, or the pod template of a workload (CronJob: spec.jobTemplate.spec.template), with the apiserver's
 * defaults that change a Pod Security verdict (src/policy/api-defaults.ts).
 */
export function podViewOf(object: KubeObject | null | undefined, kind: WorkloadKind): PodView | undefined {
  let node: unknown = object;
  for (const key of kind.templatePath) node = isRecord(node) ? node[key] : undefined;
  if (!isRecord(node) || !isRecord(node['spec'])) return undefined;
  const prefix = kind.templatePath.join('.');
  return {
    metadata: (isRecord(node['metadata']) ? node['metadata'] : {}) as ObjectMeta,
    spec: withApiDefaults(node['spec'] as unknown as PodSpec, prefix === ''),
    specField: prefix === '' ? 'spec' : `${prefix}.spec`,
    metaField: prefix === '' ? 'metadata' : `${prefix}.metadata`,
  };
}

/** Structural equality of two JSON values, whatever their key order; too deep to compare counts as different. */
export function sameJson(a: unknown, b: unknown): boolean {
  try {
    return equal(a, b);
  } catch (err) {
    if (err instanceof RangeError) return false;
    throw err;
  }
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => equal(item, b[i]));
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const keys = Object.keys(a).filter((k) => a[k] !== undefined);
  if (keys.length !== Object.keys(b).filter((k) => b[k] !== undefined).length) return false;
  return keys.every((k) => equal(a[k], b[k]));
}
