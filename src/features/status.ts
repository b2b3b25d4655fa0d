import type { FeatureName } from './feature.js';

/** Version of the status format. Not podvisor's release: a release number would change every template on upgrade. */
export const STATUS_VERSION = 1;

export interface AppliedFeature {
  readonly name: FeatureName;
  readonly containers: readonly string[];
  readonly detail?: unknown;
}

/**
 * The `podvisor.io/status` annotation: which features podvisor applied to which containers (`targets` names each
 * feature's containers when per-feature scopes make them differ; `containers` is always their union). It lists only
 * features that are in force in the object. It is computed from
 * the request alone (never a timestamp or request UID), so re-running on the output yields the same string and an
 * empty patch, and a Pod created from an injected template inherits it unchanged.
 */
export function renderStatus(applied: readonly AppliedFeature[]): string {
  const lists = applied.map((f) => (f.containers.length > 1 ? [...f.containers].sort() : f.containers));
  // The union, de-duplicated and sorted; one feature on one container is that container.
  const containers = lists.length === 1 && lists[0]!.length <= 1 ? lists[0]! : [...new Set(lists.flat())].sort();
  const status: Record<string, unknown> = { version: STATUS_VERSION, features: applied.map((f) => f.name), containers };
  if (lists.length > 1) {
    const first = lists[0]!.join();
    if (lists.some((l) => l.join() !== first)) status['targets'] = Object.fromEntries(applied.map((f, i) => [f.name, lists[i]]));
  }
  for (const feature of applied) if (feature.detail !== undefined) status[feature.name] = feature.detail;
  return JSON.stringify(status);
}
