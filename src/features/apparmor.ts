import type { AppArmorProfile } from 'kubernetes-types/core/v1.js';
import { ANNOTATION, APPARMOR_ANNOTATION_PREFIX } from '../annotations.js';
import type { Config } from '../config/schema.js';
import { closestName } from '../closest-name.js';
import type { Feature, FeatureContext, FeatureResult, ParsedSetting, PodDraft, TargetContainer } from './feature.js';

/**
 * AppArmor for selected containers, `podvisor.io/apparmor: runtime/default | localhost/<name> | unconfined`, written in
 * the form the target apiserver accepts (kubernetes-rules.md §6):
 * - ≥ 1.30: the container-level `securityContext.appArmorProfile` field only;
 * - ≤ 1.29: the annotation `container.apparmor.security.beta.kubernetes.io/<container>` only (the field does not exist
 *   there and the apiserver's non-strict decoder drops it silently).
 * Never both, never against the owner: the apiserver rejects an annotation that disagrees with the field.
 */

const EXPECTED = 'runtime/default, localhost/<profile> or unconfined';
/** `localhostProfile`: no surrounding whitespace, at most 4095 characters (ValidateAppArmorProfileField). */
const MAX_PROFILE_LENGTH = 4095;

/** An annotation-form value (`runtime/default`, `localhost/<name>`, `unconfined`) as the field's shape. */
export function parseAppArmorValue(value: string): AppArmorProfile | undefined {
  const trimmed = value.trim();
  const lower = trimmed.toLowerCase();
  if (lower === 'runtime/default') return { type: 'RuntimeDefault' };
  if (lower === 'unconfined') return { type: 'Unconfined' };
  if (lower.startsWith('localhost/')) {
    const name = trimmed.slice('localhost/'.length);
    if (name.length === 0 || name !== name.trim() || name.length > MAX_PROFILE_LENGTH) return undefined;
    return { type: 'Localhost', localhostProfile: name };
  }
  return undefined;
}

/** The owner's annotation value as the field's shape; `""` means the runtime default. Unknown values stay unknown. */
function annotationProfile(value: string): AppArmorProfile | undefined {
  return value === '' ? { type: 'RuntimeDefault' } : parseAppArmorValue(value);
}

export function appArmorAnnotationValue(profile: AppArmorProfile): string {
  if (profile.type === 'Localhost') return `localhost/${profile.localhostProfile ?? ''}`;
  return profile.type === 'Unconfined' ? 'unconfined' : 'runtime/default';
}

export function sameAppArmorProfile(a: AppArmorProfile, b: AppArmorProfile): boolean {
  return a.type === b.type && (a.type !== 'Localhost' || a.localhostProfile === b.localhostProfile);
}

function parse(value: string): ParsedSetting {
  const normalized = value.trim().toLowerCase();
  if (normalized === 'false' || normalized === 'disabled') return { kind: 'off' };
  const profile = parseAppArmorValue(value);
  if (profile !== undefined) return { kind: 'on', value: appArmorAnnotationValue(profile) };
  const hint = likelyAppArmorValue(value);
  return { kind: 'invalid', expected: EXPECTED, ...(hint !== undefined ? { problem: `invalid value ${JSON.stringify(value)} (did you mean "${hint}"?)` } : {}) };
}

/** What a malformed value most likely meant: `RuntimeDefault`, `runtime-default` → runtime/default; `localhost:x` → localhost/x. */
function likelyAppArmorValue(value: string): string | undefined {
  const local = /^\s*localhost\s*[:=_\-\s]\s*(\S.*?)\s*$/i.exec(value);
  if (local !== null) return `localhost/${local[1]}`;
  return closestName(value.trim(), ['runtime/default', 'unconfined'], (s) => s.toLowerCase().replace(/[^a-z]/g, ''));
}

/** `kubernetesVersion` "1.32" → 32. The schema only accepts 1.x versions. */
export function kubernetesMinor(config: Config): number {
  return Number(/^v?1\.(\d+)/.exec(config.kubernetesVersion)?.[1] ?? '0');
}

/** `securityContext.appArmorProfile` exists from 1.30 (gate AppArmorFields, beta 1.30, GA 1.31). */
export function usesAppArmorField(config: Config): boolean {
  return kubernetesMinor(config) >= 30;
}

export interface OwnerProfile {
  readonly profile: AppArmorProfile | undefined;
  /** The raw value when it came from an annotation (it may not parse). */
  readonly raw: string;
  readonly source: 'container field' | 'annotation' | 'pod field';
}

/**
 * The profile the owner set for a container: its own field, else its annotation, else the pod-level field (which
 * the container-level field overrides).
 */
export function ownerAppArmorProfile(pod: PodDraft, target: TargetContainer, includePodLevel: boolean): OwnerProfile | undefined {
  const field = target.container.securityContext?.appArmorProfile;
  if (field !== undefined) return { profile: field, raw: appArmorAnnotationValue(field), source: 'container field' };
  const annotation = pod.metadata.annotations?.[APPARMOR_ANNOTATION_PREFIX + target.container.name];
  if (annotation !== undefined) return { profile: annotationProfile(annotation), raw: annotation, source: 'annotation' };
  const podField = pod.spec.securityContext?.appArmorProfile;
  if (includePodLevel && podField !== undefined) return { profile: podField, raw: appArmorAnnotationValue(podField), source: 'pod field' };
  return undefined;
}

export type ProfileOutcome = 'written' | 'present' | 'kept-owner';

/**
 * Gives one target container `desired`, in the form the apiserver version takes. The owner's container field or
 * annotation always wins (keep theirs, warn). Annotations are only written for containers that exist (targets are
 * containers of this pod), and in annotation mode never when a pod-level field disagrees: templates get no skew step,
 * so the apiserver would reject the pair.
 */
export function writeAppArmorProfile(ctx: FeatureContext, target: TargetContainer, desired: AppArmorProfile, requestedBy: string): ProfileOutcome {
  const wanted = appArmorAnnotationValue(desired);
  const owner = ownerAppArmorProfile(ctx.pod, target, false);
  if (owner !== undefined) {
    if (owner.profile !== undefined && sameAppArmorProfile(owner.profile, desired)) return 'present';
    ctx.warn(`${target.field}: owner's AppArmor ${owner.source} "${owner.raw}" kept; ${requestedBy} wanted "${wanted}"`);
    return 'kept-owner';
  }
  if (usesAppArmorField(ctx.config)) {
    (target.container.securityContext ??= {}).appArmorProfile = { ...desired };
    return 'written';
  }
  const podField = ctx.pod.spec.securityContext?.appArmorProfile;
  if (podField !== undefined && !sameAppArmorProfile(podField, desired)) {
    ctx.warn(`${ctx.specField}.securityContext.appArmorProfile: "${appArmorAnnotationValue(podField)}" kept; no "${wanted}" annotation for ${target.container.name}`);
    return 'kept-owner';
  }
  (ctx.pod.metadata.annotations ??= {})[APPARMOR_ANNOTATION_PREFIX + target.container.name] = wanted;
  return 'written';
}

function apply(ctx: FeatureContext): FeatureResult {
  const desired = parseAppArmorValue(ctx.value);
  if (desired === undefined) return { changed: false };
  const outcomes = ctx.targets.map((target) => writeAppArmorProfile(ctx, target, desired, ANNOTATION.apparmor));
  const changed = outcomes.includes('written');
  // Every target kept a different profile of the owner's: the requested profile is in force nowhere.
  return outcomes.length > 0 && outcomes.every((o) => o === 'kept-owner') ? { changed, inForce: false } : { changed };
}

export const apparmor: Feature = {
  name: 'apparmor',
  annotation: ANNOTATION.apparmor,
  containersAnnotation: ANNOTATION.apparmorContainers,
  parse,
  apply,
};
