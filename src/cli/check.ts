import jsonpatch from 'fast-json-patch';
import type { KubeObject } from '../admission/types.js';
import type { Config } from '../config/schema.js';
import { validateObject, type ValidationOutcome } from '../policy/validate.js';
import { splitApiVersion } from '../workload/kinds.js';
import { mutateManifest } from './inject.js';
import { objectLabel, type ManifestDocument, type ManifestObject } from './manifests.js';

export interface CheckOptions {
  readonly username?: string | undefined;
  readonly groups?: readonly string[] | undefined;
  /** Judge each object after podvisor's own injection, as the validating webhook sees it in a cluster (default). */
  readonly mutate: boolean;
}

export type Verdict = 'allowed' | 'denied' | 'exempt' | 'skipped';

export interface ObjectVerdict {
  readonly object: ManifestObject;
  readonly verdict: Verdict;
  readonly outcome: ValidationOutcome;
  /** podvisor's own injection feedback (unknown annotation keys, owner values kept, ...). */
  readonly injectionWarnings: readonly string[];
}

/**
 * `podvisor check`: every object through the same validation as `POST /validate`, as a CREATE by the given user.
 * By default each object is first mutated by podvisor's own pipeline (kyverno apply does the same): the cluster
 * judges the mutated object, not the manifest as written.
 */
export function checkManifests(documents: readonly ManifestDocument[], config: Config, options: CheckOptions): ObjectVerdict[] {
  return documents.flatMap((d) => d.objects).map((o) => checkOne(o, config, options));
}

function checkOne(o: ManifestObject, config: Config, options: CheckOptions): ObjectVerdict {
  const userInfo = { username: options.username ?? 'podvisor-check', groups: [...(options.groups ?? []), 'system:authenticated'] };
  let final: KubeObject = o.object;
  let injectionWarnings: string[] = [];
  if (options.mutate) {
    const mutation = mutateManifest(o, config);
    injectionWarnings = mutation.warnings;
    if (mutation.denial !== undefined) {
      const outcome = { allowed: false, denial: mutation.denial.lines, warnings: [], auditAnnotations: {}, decisions: [], policy: mutation.denial.policy };
      return { object: o, verdict: 'denied', outcome, injectionWarnings };
    }
    if (mutation.patch.length > 0) final = jsonpatch.applyPatch(structuredClone(o.object), mutation.patch, false, false).newDocument as KubeObject;
  }
  const outcome = validateObject({ ...splitApiVersion(o.apiVersion), kind: o.kind, operation: 'CREATE', namespace: o.namespace, userInfo, object: final }, { config });
  const verdict: Verdict = outcome.skip !== undefined ? 'skipped' : outcome.exemption !== undefined ? 'exempt' : outcome.allowed ? 'allowed' : 'denied';
  return { object: o, verdict, outcome, injectionWarnings };
}

/** Human-readable report, kyverno-apply style. */
export function renderVerdicts(verdicts: readonly ObjectVerdict[]): string {
  const lines: string[] = [];
  for (const { object, verdict, outcome } of verdicts) {
    const label = objectLabel(object);
    if (verdict === 'skipped') lines.push(`${label}: not checked (${outcome.skip})`);
    else if (verdict === 'exempt') lines.push(`${label}: exempt (${outcome.exemption!.by} ${outcome.exemption!.value})`);
    else {
      lines.push(`${label}: ${verdict === 'allowed' ? 'allowed' : 'DENIED'} by policy ${outcome.policy ?? '?'}`);
      for (const line of outcome.denial) lines.push(`  ${line}`);
      for (const warning of outcome.warnings) lines.push(`  warning: ${warning}`);
      for (const value of Object.values(outcome.auditAnnotations)) lines.push(`  audit: ${value}`);
    }
  }
  lines.push(`${verdicts.length} object(s) checked, ${countDenied(verdicts)} denied`);
  return `${lines.join('\n')}\n`;
}

export function countDenied(verdicts: readonly ObjectVerdict[]): number {
  return verdicts.filter((v) => v.verdict === 'denied').length;
}

export interface ViolationReport {
  /** Full field path, e.g. `spec.template.spec.containers[0].securityContext.privileged`. */
  readonly field: string;
  /** The Pod Security check ID, `podvisor:privileged`, or `escalation` for a feature the policy does not allow. */
  readonly check: string;
  readonly value?: string;
  readonly message: string;
}

/**
 * Denials from podvisor's own injection (escalation guard, early refusal) come as message lines
 * `field: forbidden by policy ...`; explanatory lines without a field path are kept as messages.
 */
function violationsOfLines(lines: readonly string[]): ViolationReport[] {
  return lines.map((line) => {
    const match = /^([\w.[\]"/-]+): (.*)$/.exec(line);
    if (match === null) return { field: '', check: 'escalation', message: line };
    // `forbidden by policy p (check: value, other)`: the first check named, and its value.
    const [check, value] = (/\(([^)]*)\)$/.exec(line)?.[1]?.split(', ')[0] ?? 'escalation').split(': ');
    return { field: match[1]!, check: check!, ...(value !== undefined ? { value } : {}), message: match[2]! };
  });
}

/** `check -o json`: one entry per object, with every violation's field path. */
export function verdictsJson(verdicts: readonly ObjectVerdict[]): unknown {
  const objects = verdicts.map(({ object, verdict, outcome, injectionWarnings }) => {
    const evaluation = outcome.evaluation;
    const violations: ViolationReport[] =
      verdict !== 'denied'
        ? []
        : evaluation === undefined
          ? violationsOfLines(outcome.denial)
          : evaluation.enforce.map((v) => ({ field: v.field, check: v.check, ...(v.value !== undefined ? { value: v.value } : {}), message: `forbidden by policy ${outcome.policy} (${v.check})` }));
    return {
      source: object.where,
      apiVersion: object.apiVersion,
      kind: object.kind,
      name: object.name,
      namespace: object.handled ? object.namespace : undefined,
      verdict,
      ...(outcome.policy !== undefined ? { policy: outcome.policy } : {}),
      ...(outcome.skip !== undefined ? { reason: outcome.skip } : {}),
      ...(outcome.exemption !== undefined ? { exemption: outcome.exemption } : {}),
      violations,
      warnings: outcome.warnings,
      audit: evaluation?.audit.map((v) => ({ field: v.field, check: v.check, ...(v.value !== undefined ? { value: v.value } : {}) })) ?? [],
      injectionWarnings,
    };
  });
  return { objects, checked: verdicts.length, denied: countDenied(verdicts) };
}
