import jsonpatch from 'fast-json-patch';
import type { KubeObject } from '../admission/types.js';
import type { Config } from '../config/schema.js';
import { mutateObject, type MutationOutcome, type SkipReason } from '../mutation/pipeline.js';
import { splitApiVersion } from '../workload/kinds.js';
import { MalformedObjectError } from '../workload/pod-shape.js';
import { ManifestError, objectLabel, type ManifestDocument, type ManifestObject } from './manifests.js';

/** What happened to one object, for the summary on stderr. */
export interface InjectReport {
  readonly object: ManifestObject;
  readonly outcome: MutationOutcome;
}

export interface InjectResult {
  /** The output documents (a `kind: List` keeps its shape); empty when any object was denied. */
  readonly documents: KubeObject[];
  readonly reports: InjectReport[];
  readonly denied: number;
}

/** The pure pipeline of `POST /mutate` on one object, as a CREATE; bad shapes become input errors. */
export function mutateManifest(o: ManifestObject, config: Config): MutationOutcome {
  try {
    return mutateObject({ ...splitApiVersion(o.apiVersion), kind: o.kind, operation: 'CREATE', namespace: o.namespace, object: o.object }, { config });
  } catch (err) {
    if (err instanceof MalformedObjectError) throw new ManifestError(`${o.where}: ${o.kind}/${o.name}: ${err.message}`);
    throw err;
  }
}

/**
 * `podvisor inject`: every object through the same pipeline as `POST /mutate`. Kinds podvisor does not handle pass
 * through. When the policy would deny an object (the webhook would answer 403), no document is returned at all, so
 * that `podvisor inject ... | kubectl apply -f -` applies nothing rather than part of the input.
 */
export function injectManifests(input: readonly ManifestDocument[], config: Config): InjectResult {
  const reports: InjectReport[] = [];
  const mutated = (o: ManifestObject): KubeObject => {
    const outcome = mutateManifest(o, config);
    reports.push({ object: o, outcome });
    if (outcome.patch.length === 0) return o.object;
    return jsonpatch.applyPatch(o.object, outcome.patch, true, false).newDocument;
  };
  const documents = input.map((d) => (d.list === undefined ? mutated(d.objects[0]!) : { ...d.list, items: d.objects.map(mutated) }));
  const denied = reports.filter((r) => r.outcome.denial !== undefined).length;
  return { documents: denied > 0 ? [] : documents, reports, denied };
}

const SKIP_TEXT: Record<SkipReason, string> = {
  unsupported_kind: 'kind not mutated by podvisor',
  unsupported_operation: 'operation not mutated',
  subresource: 'subresource',
  excluded_namespace: 'namespace listed in excludedNamespaces',
  excluded_label: 'labelled podvisor.io/exclude=true',
  controller_owned: 'has a controller ownerReference (its controller\'s pods are injected)',
  mirror_pod: 'mirror pod',
  no_pod_spec: 'no pod spec',
  windows: 'Windows pod',
  not_opted_in: 'not opted in by an annotation or a default',
  opted_out: 'opted out',
  invalid_value: 'invalid annotation value',
};

/** One line per object, then its warnings, like `linkerd inject`'s summary; the last line counts. */
export function renderInjectSummary(reports: readonly InjectReport[]): string {
  const lines: string[] = [];
  let injected = 0;
  for (const { object, outcome } of reports) {
    const label = objectLabel(object);
    if (outcome.denial !== undefined) {
      lines.push(`${label}: DENIED by policy ${outcome.denial.policy}`, ...outcome.denial.lines.map((l) => `  ${l}`));
    } else if (outcome.skip !== undefined) {
      lines.push(`${label}: skipped (${SKIP_TEXT[outcome.skip]})`);
    } else if (outcome.injected.length > 0) {
      injected++;
      lines.push(`${label}: injected ${outcome.injected.join(', ')}`);
    } else {
      lines.push(`${label}: unchanged (${outcome.features.length > 0 ? `${outcome.features.join(', ')} already applied` : 'no feature could be applied'})`);
    }
    lines.push(...outcome.warnings.map((w) => `  warning: ${w}`));
  }
  const denied = reports.filter((r) => r.outcome.denial !== undefined).length;
  lines.push(`${reports.length} object(s): ${injected} injected, ${denied} denied${denied > 0 ? ' (nothing written)' : ''}`);
  return `${lines.join('\n')}\n`;
}
