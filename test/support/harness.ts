// Shared test plumbing: fixtures, the pure pipeline with patch application, and Kubernetes-rule checks.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import jsonpatch from 'fast-json-patch';
import { parse, parseAllDocuments } from 'yaml';
import type { KubeObject, Operation } from '../../src/admission/types.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { mutateObject, type MutationEnvironment, type MutationOutcome } from '../../src/mutation/pipeline.js';
import { findWorkloadKind, splitApiVersion } from '../../src/workload/kinds.js';
import { validatePod, type PodLike } from './kubernetes-rules.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export function fixtureText(name: string): string {
  return readFileSync(FIXTURES + name, 'utf8');
}

/** A fixture manifest (the first document, or document `index`) as a plain JSON object. */
export function fixture(name: string, index = 0): KubeObject {
  const docs = parseAllDocuments(fixtureText(name)).map((d) => d.toJS() as KubeObject);
  return structuredClone(docs[index]!);
}

export function fixtureReview(name: string): { request: Record<string, unknown> } & KubeObject {
  return JSON.parse(fixtureText(name));
}

export function config(overrides: unknown = {}): Config {
  return parseConfig(typeof overrides === 'string' ? parse(overrides) : overrides);
}

export interface MutationRun {
  readonly outcome: MutationOutcome;
  /** The object after applying the patch with fast-json-patch (RFC 6902). */
  readonly result: KubeObject;
  /** The pipeline run again on `result`: must be empty for idempotency. */
  readonly rerun: MutationOutcome;
}

/** Freezes the input, so a feature that writes to data the draft shares with the original throws. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export function run(object: KubeObject, options: { env?: Partial<MutationEnvironment>; operation?: Operation; namespace?: string } = {}): MutationRun {
  const env: MutationEnvironment = { config: config(), ...options.env };
  const { group, version } = splitApiVersion(String(object['apiVersion']));
  const namespace = options.namespace ?? ((object['metadata'] as { namespace?: string } | undefined)?.namespace ?? 'default');
  const input = { group, version, kind: String(object['kind']), operation: options.operation ?? 'CREATE', namespace };
  const outcome = mutateObject({ ...input, object: deepFreeze(structuredClone(object)) }, env);
  const result = jsonpatch.applyPatch(structuredClone(object), outcome.patch, true, false).newDocument as KubeObject;
  const rerun = mutateObject({ ...input, object: deepFreeze(structuredClone(result)) }, env);
  return { outcome, result, rerun };
}

/** The pod (template) of any handled kind, as the rules checker wants it. */
export function podOf(object: KubeObject): PodLike & { field: string } {
  const { group, version } = splitApiVersion(String(object['apiVersion']));
  const kind = findWorkloadKind(group, version, String(object['kind']));
  if (kind === undefined) throw new Error(`not a workload: ${String(object['kind'])}`);
  let node: unknown = object;
  for (const key of kind.templatePath) node = (node as Record<string, unknown>)[key];
  const field = kind.templatePath.length > 0 ? `${kind.templatePath.join('.')}.spec` : 'spec';
  const claims = (object['spec'] as { volumeClaimTemplates?: { metadata?: { name?: string } }[] } | undefined)?.volumeClaimTemplates;
  return { ...(node as PodLike), field, claimTemplateNames: (claims ?? []).map((c) => c.metadata?.name ?? '') };
}

/** Violations of the Kubernetes rules in the object's pod (template). */
export function violations(object: KubeObject): string[] {
  const pod = podOf(object);
  return validatePod(pod, pod.field);
}

export function annotationsOf(object: KubeObject): Record<string, string> {
  return podOf(object).metadata?.annotations ?? {};
}
