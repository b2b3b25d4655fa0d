import type { Container, PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { Config } from '../config/schema.js';

export type FeatureName = 'lxcfs';

/** The result of reading a feature's annotation (or default) value. */
export type ParsedSetting = { readonly kind: 'on'; readonly value: string } | { readonly kind: 'off' } | { readonly kind: 'invalid'; readonly expected: string };

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
}

export interface FeatureResult {
  /** Whether the draft was changed (counted in the injections metric). */
  readonly changed: boolean;
  /** Recorded under the feature's name in the status annotation. */
  readonly detail?: unknown;
}

/** Every feature module exports one of these; the pipeline runs them in FEATURES order. */
export interface Feature {
  readonly name: FeatureName;
  /** The opt-in annotation key. */
  readonly annotation: string;
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
