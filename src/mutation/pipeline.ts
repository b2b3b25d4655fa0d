import type { PodSpec } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { ObjectInput } from '../admission/object-input.js';
import { diff, type PatchOperation } from '../admission/patch.js';
import { ANNOTATION, ANNOTATION_PREFIX, EXCLUDE_LABEL, KNOWN_ANNOTATIONS, PSA_ENFORCE_LABEL } from '../annotations.js';
import { didYouMean } from '../closest-name.js';
import type { Config } from '../config/schema.js';
import type { Feature, FeatureName } from '../features/feature.js';
import { draftPod } from './draft.js';
import { FEATURES } from '../features/index.js';
import { renderStatus, type AppliedFeature } from '../features/status.js';
import { selectTargets } from '../features/targets.js';
import { decideOptIn, type OptInDecision } from '../optin/opt-in.js';
import { createEscalationGuard } from '../policy/guard.js';
import { hasController, isExcludedByLabel, isMirrorPod, isWindowsPod } from '../workload/exclusions.js';
import { findWorkloadKind } from '../workload/kinds.js';
import { checkPodShape } from '../workload/pod-shape.js';
import { podSecurityWarnings } from './pod-security-warnings.js';
import { isRecord } from '../json-value.js';

export type SkipReason =
  | 'unsupported_kind'
  | 'unsupported_operation'
  | 'subresource'
  | 'excluded_namespace'
  | 'excluded_label'
  | 'controller_owned'
  | 'mirror_pod'
  | 'no_pod_spec'
  | 'windows'
  | 'not_opted_in'
  | 'opted_out'
  | 'invalid_value';

export type MutationInput = ObjectInput;

export interface MutationEnvironment {
  readonly config: Config;
  /**
   * Labels of a namespace, from the namespace cache when podvisor runs in a cluster. Never an API call: the handler
   * reads caches only. Labels given in config (`namespaces.<name>.labels`) apply underneath.
   */
  readonly namespaceLabels?: (namespace: string) => Readonly<Record<string, string>> | undefined;
}

/** A namespace's labels: config `namespaces.<name>.labels`, overridden by the live labels when known. */
export function namespaceLabels(env: MutationEnvironment, namespace: string): Readonly<Record<string, string>> {
  const configured = env.config.namespaces[namespace]?.labels;
  const live = env.namespaceLabels?.(namespace);
  return live === undefined ? (configured ?? {}) : configured === undefined ? live : { ...configured, ...live };
}

export interface MutationOutcome {
  /** RFC 6902 operations against the input object; empty when nothing changes. */
  readonly patch: PatchOperation[];
  readonly warnings: string[];
  /** Features applied (requested and in force), in pipeline order. */
  readonly features: FeatureName[];
  /** Features whose application changed the object. */
  readonly injected: FeatureName[];
  /** Why nothing was applied, when nothing was. */
  readonly skip?: SkipReason;
  /** Set when a feature would add what the namespace policy forbids in enforce mode: the request is denied (403). */
  readonly denial?: { readonly policy: string; readonly lines: string[] };
}

function skipped(skip: SkipReason, warnings: string[] = []): MutationOutcome {
  return { patch: [], warnings, features: [], injected: [], skip };
}

function at(object: unknown, path: readonly string[]): unknown {
  let node = object;
  for (const key of path) node = isRecord(node) ? node[key] : undefined;
  return node;
}

/**
 * The pure core: one object in, the patch that injects what it opted into out. No I/O; the HTTP server and the
 * CLI are shells around it.
 */
export function mutateObject(input: MutationInput, env: MutationEnvironment): MutationOutcome {
  const { config } = env;
  const workload = findWorkloadKind(input.group, input.version, input.kind);
  if (workload === undefined) return skipped('unsupported_kind');
  if (!workload.operations.includes(input.operation)) return skipped('unsupported_operation');
  if (input.subResource !== undefined && input.subResource !== '') return skipped('subresource');
  if (config.excludedNamespaces.includes(input.namespace)) return skipped('excluded_namespace');

  checkPodShape(input.object['metadata'], undefined, 'metadata', 'spec');
  const meta = input.object['metadata'] as ObjectMeta | undefined;
  if (isExcludedByLabel(meta)) return skipped('excluded_label');
  const isTemplate = workload.templatePath.length > 0;
  if (isTemplate && hasController(meta)) return skipped('controller_owned');
  if (!isTemplate && isMirrorPod(meta)) return skipped('mirror_pod');

  const template = isTemplate ? at(input.object, workload.templatePath) : input.object;
  if (!isRecord(template) || !isRecord(template['spec'])) return skipped('no_pod_spec');
  const specField = isTemplate ? `${workload.templatePath.join('.')}.spec` : 'spec';
  checkPodShape(template['metadata'], template['spec'], isTemplate ? `${workload.templatePath.join('.')}.metadata` : 'metadata', specField);
  const podMeta = template['metadata'] as ObjectMeta | undefined;
  const spec = template['spec'] as unknown as PodSpec;
  // Mutating admission runs before validation: a spec without containers can arrive. Leave it to the apiserver.
  if (!Array.isArray(spec.containers)) return skipped('no_pod_spec');

  // Workloads: the pod template's annotation wins, the workload's own annotation is the fallback.
  const annotation = (key: string): string | undefined => podMeta?.annotations?.[key] ?? (isTemplate ? meta?.annotations?.[key] : undefined);
  const warnings: string[] = unknownKeyWarnings(podMeta, isTemplate ? `${workload.templatePath.join('.')}.metadata` : 'metadata');
  if (isTemplate) warnings.push(...unknownKeyWarnings(meta, 'metadata'));
  const nsLabels = namespaceLabels(env, input.namespace);
  const nsConfig = config.namespaces[input.namespace];
  const decisions = FEATURES.map((feature): [Feature, OptInDecision] => [
    feature,
    decideOptIn(feature, {
      object: annotation(feature.annotation),
      // Namespace default: the config entry, else the namespace label named like the annotation (`podvisor.io/lxcfs=enabled`).
      namespace: settingText(nsConfig?.[feature.name]) ?? nsLabels[feature.annotation],
      cluster: settingText(config.defaults[feature.name]),
    }),
  ]);
  for (const [, decision] of decisions) if (!decision.enabled && decision.warning !== undefined) warnings.push(decision.warning);
  const enabled = decisions.filter((d): d is [Feature, OptInDecision & { enabled: true }] => d[1].enabled);

  if (enabled.length === 0) {
    const reasons = decisions.map(([, d]) => (d.enabled ? undefined : d.reason));
    return skipped(reasons.includes('invalid_value') ? 'invalid_value' : reasons.includes('opted_out') ? 'opted_out' : 'not_opted_in', warnings);
  }
  // LXCFS and FUSE are Linux-only, and the API rejects capabilities and AppArmor on Windows pods.
  if (isWindowsPod(spec)) {
    warnings.push(`${isTemplate ? `${workload.templatePath.join('.')}.spec` : 'spec'}.os: Windows pod; podvisor injects nothing`);
    return skipped('windows', warnings);
  }

  const draft = draftPod(podMeta, spec);
  // Each feature's containers: its own `podvisor.io/<feature>-containers`, else the shared `podvisor.io/containers`.
  const scopeOf = (feature: Feature): [key: string, listed: string | undefined] => {
    const own = annotation(feature.containersAnnotation);
    return own !== undefined ? [feature.containersAnnotation, own] : [ANNOTATION.containers, annotation(ANNOTATION.containers)];
  };
  // Each feature's targets, selected once. A container list shared by several features is reported once, by the
  // first; a feature's reports join the warnings when its turn comes, as they would if it selected them then.
  const warnedScopes = new Set<string>();
  const selection = new Map(
    enabled.map(([feature]) => {
      const [key, listed] = scopeOf(feature);
      const reports: string[] = [];
      const targets = selectTargets(draft.spec, specField, key, listed, warnedScopes.has(key) ? () => undefined : (message) => reports.push(message));
      warnedScopes.add(key);
      return [feature, { targets, reports }];
    }),
  );
  const featureTargets = Object.fromEntries(enabled.map(([feature]) => [feature.name, new Set(selection.get(feature)!.targets.map((t) => t.container.name))]));
  // Escalation guard (src/policy/guard.ts): a feature whose additions the namespace policy forbids is rolled back.
  const guard = createEscalationGuard(
    { config, namespace: input.namespace, namespaceLabels: nsLabels, userInfo: input.userInfo, kind: workload, specField, metaField: isTemplate ? `${workload.templatePath.join('.')}.metadata` : 'metadata' },
    draft,
  );
  let denial: { policy: string; lines: string[] } | undefined;

  const applied: AppliedFeature[] = [];
  const injected: FeatureName[] = [];
  let rolledBack = false;
  for (const [feature, decision] of enabled) {
    const { targets: selected, reports } = selection.get(feature)!;
    warnings.push(...reports);
    // A rollback replaces the draft's containers: the targets are then selected again, in the restored draft.
    const targets = rolledBack ? selectTargets(draft.spec, specField, ...scopeOf(feature), () => undefined) : selected;
    // The rollback copy follows the draft's contract (what a feature may change is copied, the rest shared).
    const before = guard === undefined ? undefined : draftPod(draft.metadata, draft.spec);
    const featureWarnings: string[] = [];
    const result = feature.apply({ config, pod: draft, specField, isTemplate, targets, value: decision.value, warn: (m) => featureWarnings.push(m), featureTargets });
    const refusal = before === undefined ? undefined : guard?.review(feature, draft);
    if (before !== undefined && refusal !== undefined) {
      draft.metadata = before.metadata;
      draft.spec = before.spec;
      rolledBack = true;
      if (refusal.mode === 'enforce') (denial ??= { policy: refusal.policy, lines: [] }).lines.push(...refusal.lines);
      else warnings.push(...refusal.lines);
      continue;
    }
    warnings.push(...featureWarnings);
    // The status records only what is in the object: never a feature without a target or without effect.
    if (result.inForce !== false && targets.length > 0) applied.push({ name: feature.name, containers: targets.map((t) => t.container.name), detail: result.detail });
    if (result.changed) injected.push(feature.name);
  }
  if (denial !== undefined) return { patch: [], warnings, features: [], injected: [], denial };
  warnings.push(...podSecurityWarnings(nsLabels[PSA_ENFORCE_LABEL], { metadata: podMeta, spec }, draft, specField));
  const status = renderStatus(applied);
  const previous = draft.metadata.annotations?.[ANNOTATION.status];
  // Nothing applied and no status yet: nothing to record. An existing status is corrected rather than left claiming.
  if (previous !== status && (applied.length > 0 || previous !== undefined)) (draft.metadata.annotations ??= {})[ANNOTATION.status] = status;

  // A template without metadata gets one `add .../metadata` (fast-json-patch emits the whole map when the parent is missing).
  const original = podMeta === undefined ? { spec } : { metadata: podMeta, spec };
  const patch = diff(original, draft, workload.templatePath);
  return { patch, warnings, features: applied.map((f) => f.name), injected };
}

/**
 * A `podvisor.io/` key podvisor does not know is a typo (`podvisor.io/fuze`, `podvisor.io/LXCFS`: keys are
 * case-sensitive): warn and name the closest known key, rather than ignore it silently.
 */
function unknownKeyWarnings(meta: ObjectMeta | undefined, metaField: string): string[] {
  const warnings: string[] = [];
  for (const key of Object.keys(meta?.annotations ?? {})) {
    if (!key.startsWith(ANNOTATION_PREFIX) || KNOWN_ANNOTATIONS.includes(key)) continue;
    const hint = key === EXCLUDE_LABEL ? ' (podvisor.io/exclude is a label, not an annotation)' : didYouMean(key, KNOWN_ANNOTATIONS);
    warnings.push(`${metaField}.annotations: unknown key ${JSON.stringify(key)} ignored${hint}`);
  }
  return warnings;
}

function settingText(value: boolean | string | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}
