import type { PodView } from '../pod-view.js';
import type { Violation } from '../violation.js';

/**
 * One Pod Security Standards check, mirroring a `Check` of pod-security-admission `policy/registry.go`: an ID, a
 * level, the first policy version it exists at, and the baseline checks it replaces under restricted
 * (`OverrideCheckIDs`). `run` receives the policy's minor version and applies the matching VersionedCheck.
 * The check fails (PSA `Allowed: false`) exactly when `run` returns at least one violation.
 */
export interface PssCheck {
  readonly id: string;
  readonly level: 'baseline' | 'restricted';
  readonly since: number;
  readonly overrides?: readonly string[];
  run(pod: PodView, minor: number): Violation[];
}
