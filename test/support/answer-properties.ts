// The properties every answer of the admission server must have, for any body: a valid AdmissionReview (uid echoed,
// allowed boolean, patchType iff patch) or a 4xx with a JSON message; a patch that applies cleanly to the original;
// an empty patch when re-run on the output; no new duplicate volume name or mountPath; no new Kubernetes-rule
// violation. Shared by the pure-pipeline properties and the HTTPS fuzz test.
import jsonpatch from 'fast-json-patch';
import type { AdmissionRequest, KubeObject } from '../../src/admission/types.js';
import { reviewMutation } from '../../src/admission/mutate-review.js';
import { MalformedReviewError, parseAdmissionReview, reviewResponse } from '../../src/admission/review.js';
import type { MutationEnvironment } from '../../src/mutation/pipeline.js';
import { reviewValidation } from '../../src/policy/validate-review.js';
import { findWorkloadKind } from '../../src/workload/kinds.js';
import { MalformedObjectError } from '../../src/workload/pod-shape.js';
import { podOf, violations } from './harness.js';

export type Endpoint = '/mutate' | '/validate';

export interface Answer {
  readonly status: number;
  readonly json: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function answerFor(endpoint: Endpoint, request: AdmissionRequest, env: MutationEnvironment) {
  return endpoint === '/mutate' ? reviewMutation(request, env).response : reviewValidation(request, env).response;
}

/** JSON text of a value, or undefined when it is nested too deeply for JSON.stringify (the check is then skipped). */
function snapshot(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof RangeError) return undefined;
    throw err;
  }
}

/**
 * What the server answers, computed without the network: its JSON parser, envelope check and handler. A thrown
 * error other than MalformedReviewError is what fastify would turn into a 500: it propagates, and the property fails.
 */
export function answerWithoutNetwork(endpoint: Endpoint, text: string, env: MutationEnvironment): Answer {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return { status: 400, json: { error: 'PODVISOR_INVALID_JSON', message: `body: not valid JSON (${(err as Error).message})` } };
  }
  let request: AdmissionRequest;
  try {
    request = parseAdmissionReview(body);
  } catch (err) {
    if (!(err instanceof MalformedReviewError)) throw err;
    return { status: 400, json: { error: 'MalformedAdmissionReview', message: err.message } };
  }
  const before = snapshot(request);
  let json;
  try {
    json = reviewResponse(answerFor(endpoint, request, env));
  } catch (err) {
    // /mutate answers an object with a field of the wrong type with a 400 naming the field (src/workload/pod-shape.ts).
    if (!(endpoint === '/mutate' && err instanceof MalformedObjectError)) throw err;
    return { status: 400, json: { error: 'MalformedAdmissionReview', message: `request.object.${err.message}` } };
  }
  // The handler must not change the request it was given: the patch is computed against it.
  if (before !== undefined && snapshot(request) !== before) throw new Error('the handler modified the request object in place');
  return { status: 200, json };
}

/** Duplicate volume names and duplicate mountPaths per container, as `volume "x"` / `<container> mountPath "/p"`. */
export function duplicates(object: KubeObject): Set<string> {
  const found = new Set<string>();
  // Written for any input, well-typed or not: lists that are not arrays have no duplicates.
  const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
  const spec = podOf(object).spec as unknown as Record<string, unknown>;
  const seen = new Set<unknown>();
  for (const v of list(spec['volumes'])) {
    const name = isRecord(v) ? v['name'] : undefined;
    if (typeof name !== 'string') continue;
    if (seen.has(name)) found.add(`volume ${JSON.stringify(name)}`);
    seen.add(name);
  }
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) {
    list(spec[key]).forEach((c, i) => {
      const paths = new Set<unknown>();
      for (const m of list(isRecord(c) ? c['volumeMounts'] : undefined)) {
        const path = isRecord(m) ? m['mountPath'] : undefined;
        if (typeof path !== 'string') continue;
        if (paths.has(path)) found.add(`${key}[${i}] mountPath ${JSON.stringify(path)}`);
        paths.add(path);
      }
    });
  }
  return found;
}

/**
 * The field a violation is about, `spec.containers[0].resources[squat.ai/fuse]` for both its request and its limit:
 * an input already rejected for a field may be rejected for it with another message after the patch (FUSE completes
 * a request of "100m" with an equal limit, and the apiserver rejects both as non-integer).
 */
function violationField(violation: string): string {
  return violation.slice(0, violation.indexOf(': ')).replace(/\.resources\.(limits|requests)(\[|$)/, '.resources$2');
}

function hasPodTemplate(object: KubeObject, request: AdmissionRequest): boolean {
  const kind = findWorkloadKind(request.kind.group, request.kind.version, request.kind.kind);
  if (kind === undefined || String(object['kind']) !== request.kind.kind) return false;
  let node: unknown = object;
  for (const key of kind.templatePath) node = isRecord(node) ? node[key] : undefined;
  return isRecord(node) && isRecord(node['spec']);
}

export interface CheckOptions {
  /** The request object is well-typed (as the apiserver sends it), so the rules oracle can read it. */
  readonly wellTyped: boolean;
}

/** The request body parsed anew (a deep copy, even of an object nested too deeply for structuredClone), or undefined. */
function parseBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Every problem with `answer` to the request body `text`. Problems are strings, so a failing property shows all of
 * them at once.
 */
export function answerProblems(endpoint: Endpoint, text: string, answer: Answer, env: MutationEnvironment, options: CheckOptions): string[] {
  const body = parseBody(text);
  const problems: string[] = [];
  const { status, json } = answer;
  if (status >= 400 && status < 500) {
    if (!isRecord(json) || typeof json['message'] !== 'string' || json['message'] === '') problems.push(`HTTP ${status} without a JSON message: ${JSON.stringify(json)}`);
    return problems;
  }
  if (status !== 200) return [`HTTP ${status}: ${JSON.stringify(json)}`];
  let request: AdmissionRequest;
  try {
    request = parseAdmissionReview(body);
  } catch (err) {
    return [`HTTP 200 for a body the envelope check refuses (${(err as Error).message})`];
  }
  if (!isRecord(json) || json['apiVersion'] !== 'admission.k8s.io/v1' || json['kind'] !== 'AdmissionReview' || !isRecord(json['response'])) {
    return [`not an AdmissionReview: ${JSON.stringify(json)}`];
  }
  const response = json['response'];
  if (response['uid'] !== request.uid) problems.push(`uid ${JSON.stringify(response['uid'])}, expected ${JSON.stringify(request.uid)}`);
  if (typeof response['allowed'] !== 'boolean') problems.push(`allowed is ${JSON.stringify(response['allowed'])}`);
  if ((response['patch'] === undefined) !== (response['patchType'] === undefined)) problems.push('patchType without patch, or patch without patchType');
  if (response['patchType'] !== undefined && response['patchType'] !== 'JSONPatch') problems.push(`patchType ${JSON.stringify(response['patchType'])}`);
  if (response['allowed'] === false) {
    if (response['patch'] !== undefined) problems.push('a denial carries a patch');
    const code = isRecord(response['status']) ? response['status']['code'] : undefined;
    if (typeof code !== 'number' || code < 400) problems.push(`a denial without an HTTP error code in status: ${JSON.stringify(response['status'])}`);
  }
  if (endpoint === '/validate' && response['patch'] !== undefined) problems.push('/validate answered with a patch');
  const warnings = response['warnings'];
  if (warnings !== undefined && (!Array.isArray(warnings) || warnings.some((w) => typeof w !== 'string' || w.length > 120))) {
    problems.push(`warnings not strings of at most 120 characters: ${JSON.stringify(warnings)}`);
  }
  if (typeof response['patch'] !== 'string') return problems;

  let patch: jsonpatch.Operation[];
  try {
    patch = JSON.parse(Buffer.from(response['patch'], 'base64').toString('utf8'));
  } catch {
    return [...problems, 'patch is not base64 JSON'];
  }
  if (!Array.isArray(patch) || patch.length === 0) return [...problems, `patch is not a non-empty JSON array: ${JSON.stringify(patch)}`];
  const original = request.object;
  if (!isRecord(original)) return [...problems, `a patch for a request without an object (${request.operation})`];
  // Applied with validation (every operation checked against the document first) to a fresh copy of the original.
  const copy = (parseBody(text) as { request: { object: KubeObject } }).request.object;
  let result: KubeObject;
  try {
    result = jsonpatch.applyPatch(copy, patch, true, true).newDocument as KubeObject;
  } catch (err) {
    return [...problems, `patch does not apply to the original: ${(err as Error).name} ${(err as Error).message}`];
  }

  const again = answerFor(endpoint, { ...request, object: result }, env);
  if (again.patch !== undefined) {
    problems.push(`re-run on the output is not empty: ${Buffer.from(again.patch, 'base64').toString('utf8')}`);
  }
  if (hasPodTemplate(original, request)) {
    const newDuplicates = [...duplicates(result)].filter((d) => !duplicates(original).has(d));
    if (newDuplicates.length > 0) problems.push(`new duplicates in the output: ${newDuplicates.join('; ')}`);
    if (options.wellTyped) {
      const known = new Set(violations(original).map(violationField));
      const added = violations(result).filter((v) => !known.has(violationField(v)));
      if (added.length > 0) problems.push(`new Kubernetes-rule violations in the output: ${added.join('; ')}`);
    }
  }
  return problems;
}
