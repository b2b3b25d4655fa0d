import jsonpatch from 'fast-json-patch';
import { parseAllDocuments } from 'yaml';
import type { KubeObject } from '../admission/types.js';
import type { Config } from '../config/schema.js';
import { mutateObject } from '../mutation/pipeline.js';
import { validateObject, type ValidationOutcome } from '../policy/validate.js';
import { splitApiVersion } from '../workload/kinds.js';
import { MalformedObjectError } from '../workload/pod-shape.js';
import { ManifestError } from './inject.js';
import { isRecord } from '../json-value.js';

export interface CheckOptions {
  /** For objects that name no namespace. */
  readonly namespace: string;
  readonly username?: string | undefined;
  readonly groups?: readonly string[] | undefined;
  /** Evaluate the object after podvisor's own injection (what the validating webhook sees in a cluster). */
  readonly mutated?: boolean | undefined;
}

export interface ObjectVerdict {
  /** `Kind/name` (namespace). */
  readonly object: string;
  readonly outcome: ValidationOutcome;
}

/**
 * `podvisor check`: every object of a multi-document manifest through the same validation as `POST /validate`, as a
 * CREATE by the given user. Kinds podvisor does not handle are skipped.
 */
export function checkManifests(text: string, source: string, config: Config, options: CheckOptions): ObjectVerdict[] {
  const verdicts: ObjectVerdict[] = [];
  parseAllDocuments(text).forEach((document, index) => {
    const where = `${source}: document ${index}`;
    if (document.errors.length > 0) throw new ManifestError(`${where}: invalid YAML: ${document.errors[0]!.message}`);
    const object: unknown = document.toJS();
    if (object === null || object === undefined) return;
    if (!isRecord(object)) throw new ManifestError(`${where}: expected a Kubernetes object (a mapping)`);
    const items = object['kind'] === 'List' && Array.isArray(object['items']) ? object['items'] : [object];
    items.forEach((item, i) => verdicts.push(checkOne(item, items.length > 1 || item !== object ? `${where}, item ${i}` : where, config, options)));
  });
  return verdicts;
}

function checkOne(object: unknown, where: string, config: Config, options: CheckOptions): ObjectVerdict {
  if (!isRecord(object)) throw new ManifestError(`${where}: expected a Kubernetes object (a mapping)`);
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new ManifestError(`${where}: apiVersion and kind must be strings`);
  const meta = isRecord(object['metadata']) ? object['metadata'] : {};
  const namespace = typeof meta['namespace'] === 'string' ? meta['namespace'] : options.namespace;
  const name = typeof meta['name'] === 'string' ? meta['name'] : '?';
  const userInfo = { username: options.username ?? 'podvisor-check', groups: [...(options.groups ?? []), 'system:authenticated'] };
  const input = { ...splitApiVersion(apiVersion), kind, operation: 'CREATE' as const, namespace, userInfo };
  let final: KubeObject = object;
  if (options.mutated === true) {
    let mutation;
    try {
      mutation = mutateObject({ ...input, object }, { config });
    } catch (err) {
      if (err instanceof MalformedObjectError) throw new ManifestError(`${where}: ${kind}/${name}: ${err.message}`);
      throw err;
    }
    if (mutation.denial !== undefined) {
      return { object: `${kind}/${name} (namespace ${namespace})`, outcome: { allowed: false, denial: mutation.denial.lines, warnings: mutation.warnings, auditAnnotations: {}, decisions: [], policy: mutation.denial.policy } };
    }
    if (mutation.patch.length > 0) final = jsonpatch.applyPatch(structuredClone(object), mutation.patch, false, false).newDocument as KubeObject;
  }
  return { object: `${kind}/${name} (namespace ${namespace})`, outcome: validateObject({ ...input, object: final }, { config }) };
}

/** Human-readable report, kyverno-apply style; `denied` tells the caller to exit non-zero. */
export function renderVerdicts(verdicts: readonly ObjectVerdict[]): { text: string; denied: number } {
  const lines: string[] = [];
  let denied = 0;
  for (const { object, outcome } of verdicts) {
    if (outcome.skip !== undefined) {
      lines.push(`${object}: not checked (${outcome.skip})`);
      continue;
    }
    if (outcome.exemption !== undefined) {
      lines.push(`${object}: exempt (${outcome.exemption.by} ${outcome.exemption.value})`);
      continue;
    }
    if (!outcome.allowed) denied++;
    lines.push(`${object}: ${outcome.allowed ? 'allowed' : 'DENIED'} by policy ${outcome.policy ?? '?'}`);
    for (const line of outcome.denial) lines.push(`  ${line}`);
    for (const warning of outcome.warnings) lines.push(`  warning: ${warning}`);
    for (const value of Object.values(outcome.auditAnnotations)) lines.push(`  audit: ${value}`);
  }
  lines.push(`${verdicts.length} object(s) checked, ${denied} denied`);
  return { text: `${lines.join('\n')}\n`, denied };
}
