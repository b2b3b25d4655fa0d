import { parseAllDocuments, stringify } from 'yaml';
import jsonpatch from 'fast-json-patch';
import type { KubeObject } from '../admission/types.js';
import type { Config } from '../config/schema.js';
import { mutateObject } from '../mutation/pipeline.js';
import { splitApiVersion } from '../workload/kinds.js';
import { MalformedObjectError } from '../workload/pod-shape.js';
import { isRecord } from '../json-value.js';

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

export interface InjectResult {
  readonly yaml: string;
  readonly warnings: string[];
}

/**
 * `podvisor inject`: multi-document YAML in, the same documents mutated out, through the same pipeline as
 * `POST /mutate` (as a CREATE). A `kind: List` is mutated item by item. Kinds podvisor does not handle pass through.
 */
export function injectManifests(text: string, source: string, config: Config, namespace?: string): InjectResult {
  const documents = parseAllDocuments(text);
  const warnings: string[] = [];
  const output: unknown[] = [];
  documents.forEach((document, index) => {
    const where = `${source}: document ${index}`;
    if (document.errors.length > 0) throw new ManifestError(`${where}: invalid YAML: ${document.errors[0]!.message}`);
    const object: unknown = document.toJS();
    if (object === null || object === undefined) return;
    if (!isRecord(object)) throw new ManifestError(`${where}: expected a Kubernetes object (a mapping), got ${Array.isArray(object) ? 'a list' : typeof object}`);
    if (object['kind'] === 'List' && Array.isArray(object['items'])) {
      const items = object['items'].map((item, i) => mutateOne(item, `${where}, item ${i}`, config, namespace, warnings));
      output.push({ ...object, items });
    } else {
      output.push(mutateOne(object, where, config, namespace, warnings));
    }
  });
  return { yaml: output.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'), warnings };
}

function mutateOne(object: unknown, where: string, config: Config, namespace: string | undefined, warnings: string[]): KubeObject {
  if (!isRecord(object)) throw new ManifestError(`${where}: expected a Kubernetes object (a mapping)`);
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new ManifestError(`${where}: apiVersion and kind must be strings`);
  const meta = isRecord(object['metadata']) ? object['metadata'] : {};
  const ns = typeof meta['namespace'] === 'string' ? meta['namespace'] : (namespace ?? 'default');
  const name = typeof meta['name'] === 'string' ? meta['name'] : '?';
  let outcome;
  try {
    outcome = mutateObject({ ...splitApiVersion(apiVersion), kind, operation: 'CREATE', namespace: ns, object }, { config });
  } catch (err) {
    if (err instanceof MalformedObjectError) throw new ManifestError(`${where}: ${kind}/${name}: ${err.message}`);
    throw err;
  }
  // The webhook would answer 403: say so, rather than print a manifest the cluster would reject.
  if (outcome.denial !== undefined) {
    throw new ManifestError(`${where}: ${kind}/${name} denied by policy ${outcome.denial.policy}:\n  ${outcome.denial.lines.join('\n  ')}`);
  }
  warnings.push(...outcome.warnings.map((w) => `${kind}/${name}: ${w}`));
  if (outcome.patch.length === 0) return object;
  return jsonpatch.applyPatch(object, outcome.patch, true, false).newDocument;
}
