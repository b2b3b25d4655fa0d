import type { Container, PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { Config } from '../config/schema.js';

export type FeatureName = 'lxcfs' | 'agent' | 'apparmor' | 'fuse';

/** The result of reading a feature's annotation (or default) value. */
export type ParsedSetting =
  | { readonly kind: 'on'; readonly value: string }
  | { readonly kind: 'off' }
  /** `problem` replaces the generic "invalid value ..., expected ..." text when the parser can say more (a typo's likely meaning). */
  | { readonly kind: 'invalid'; readonly expected: string; readonly problem?: string };

/** A pod, or a workload's pod template, as a mutable draft. */
export interface PodDraft {
  metadata: ObjectMeta;
  spec: PodSpec;
}

export interface TargetContainer {
  readonly container: Container;
  /** Field path for messages, e.g. `spec.template.spec.containers[0]`. */
  readonly field: string;
}

export interface FeatureContext {
  readonly config: Config;
  /**
   * The draft (src/mutation/draft.ts). A feature may change annotations and labels, top-level spec fields, the pod
   * securityContext, anything inside containers and init containers, and append to `spec.volumes` — never edit an
   * existing volume entry nor anything else: that data is shared with the original object.
   */
  readonly pod: PodDraft;
  /** Field path of the pod spec, e.g. `spec` or `spec.template.spec`. */
  readonly specField: string;
  /** Templates are not defaulted like Pods (no request-from-limit, no AppArmor skew step). */
  readonly isTemplate: boolean;
  readonly targets: readonly TargetContainer[];
  /** The parsed value of the feature's setting (`true` for boolean features). */
  readonly value: string;
  /** A warning for the user, written `field.path: message`. */
  warn(message: string): void;
  /**
   * The names of the containers each enabled feature targets on this object: features that share a field (FUSE's
   * SYS_ADMIN in the agent's capability list) coordinate per container through it.
   */
  readonly featureTargets?: Readonly<Partial<Record<FeatureName, ReadonlySet<string>>>>;
}

export interface FeatureResult {
  /** Whether the draft was changed (counted in the injections metric). */
  readonly changed: boolean;
  /** Recorded under the feature's name in the status annotation. */
  readonly detail?: unknown;
  /**
   * False when the feature takes effect on no target (each kept a conflicting owner value): it is then not recorded
   * as applied, so the status never claims what is not in the object, and a re-run gives the same status. A feature
   * with no target at all is never recorded either.
   */
  readonly inForce?: false;
}

/** Every feature module exports one of these; the pipeline runs them in FEATURES order. */
export interface Feature {
  readonly name: FeatureName;
  /** The opt-in annotation key. */
  readonly annotation: string;
  /** The key that scopes this feature to some containers; `podvisor.io/containers` is the shared fallback. */
  readonly containersAnnotation: string;
  parse(value: string): ParsedSetting;
  apply(ctx: FeatureContext): FeatureResult;
}

const TRUE_VALUES = new Set(['true', 'enabled']);
const FALSE_VALUES = new Set(['false', 'disabled']);

/** Boolean features accept true/false and enabled/disabled, case-insensitively. */
export function parseBooleanSetting(value: string): ParsedSetting {
  const normalized = value.trim().toLowerCase();
  if (TRUE_VALUES.has(normalized)) return { kind: 'on', value: 'true' };
  if (FALSE_VALUES.has(normalized)) return { kind: 'off' };
  return { kind: 'invalid', expected: 'true or false' };
}
