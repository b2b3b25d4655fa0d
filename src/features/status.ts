import type { FeatureName } from './feature.js';

/** Version of the status format. Not podvisor's release: a release number would change every template on upgrade. */
export const STATUS_VERSION = 1;

export interface AppliedFeature {
  readonly name: FeatureName;
  readonly containers: readonly string[];
  readonly detail?: unknown;
}

/**
 * The `podvisor.io/status` annotation: which features podvisor applied to which containers. It is computed from
 * the request alone (never a timestamp or request UID), so re-running on the output yields the same string and an
 * empty patch, and a Pod created from an injected template inherits it unchanged.
 */
export function renderStatus(applied: readonly AppliedFeature[]): string {
  const status: Record<string, unknown> = {
    version: STATUS_VERSION,
    features: applied.map((f) => f.name),
    containers: [...new Set(applied.flatMap((f) => f.containers))].sort(),
  };
  for (const feature of applied) if (feature.detail !== undefined) status[feature.name] = feature.detail;
  return JSON.stringify(status);
}
