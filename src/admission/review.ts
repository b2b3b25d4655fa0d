import type { AdmissionRequest, AdmissionResponse, AdmissionReviewResponse, Operation } from './types.js';
import { isRecord, describeValue } from '../json-value.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
const OPERATIONS: readonly string[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] satisfies Operation[];

/** An envelope podvisor cannot answer: the server turns it into HTTP 400 with this message. */
export class MalformedReviewError extends Error {
  override readonly name = 'MalformedReviewError';
}

function requireString(parent: Record<string, unknown>, key: string, field: string, allowEmpty = false): string {
  const value = parent[key];
  if (typeof value !== 'string') throw new MalformedReviewError(`${field}: expected a string, got ${describeValue(value)}`);
  if (!allowEmpty && value.length === 0) throw new MalformedReviewError(`${field}: must not be empty`);
  return value;
}

function requireGroupVersion(parent: Record<string, unknown>, key: string, field: string, last: 'kind' | 'resource'): void {
  const value = parent[key];
  if (!isRecord(value)) throw new MalformedReviewError(`${field}: expected an object, got ${describeValue(value)}`);
  requireString(value, 'group', `${field}.group`, true);
  requireString(value, 'version', `${field}.version`);
  requireString(value, last, `${field}.${last}`);
}

/**
 * Checks the AdmissionReview envelope the apiserver sends (admission.k8s.io/v1) and returns its request.
 * Only the fields podvisor relies on are checked; the object itself is judged by the mutation pipeline.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw new MalformedReviewError(`body: expected an AdmissionReview object, got ${describeValue(body)}`);
  if (body['apiVersion'] !== ADMISSION_API_VERSION) {
    throw new MalformedReviewError(`apiVersion: expected "${ADMISSION_API_VERSION}", got ${JSON.stringify(body['apiVersion']) ?? 'nothing'}`);
  }
  if (body['kind'] !== 'AdmissionReview') {
    throw new MalformedReviewError(`kind: expected "AdmissionReview", got ${JSON.stringify(body['kind']) ?? 'nothing'}`);
  }
  const request = body['request'];
  if (!isRecord(request)) throw new MalformedReviewError(`request: expected an object, got ${describeValue(request)}`);
  requireString(request, 'uid', 'request.uid');
  requireGroupVersion(request, 'kind', 'request.kind', 'kind');
  requireGroupVersion(request, 'resource', 'request.resource', 'resource');
  const operation = requireString(request, 'operation', 'request.operation');
  if (!OPERATIONS.includes(operation)) {
    throw new MalformedReviewError(`request.operation: expected one of ${OPERATIONS.join(', ')}, got "${operation}"`);
  }
  for (const key of ['subResource', 'namespace', 'name'] as const) {
    if (request[key] !== undefined && typeof request[key] !== 'string') {
      throw new MalformedReviewError(`request.${key}: expected a string, got ${describeValue(request[key])}`);
    }
  }
  if ((operation === 'CREATE' || operation === 'UPDATE') && !isRecord(request['object'])) {
    throw new MalformedReviewError(`request.object: expected the ${operation} object, got ${describeValue(request['object'])}`);
  }
  return request as unknown as AdmissionRequest;
}

/** Warnings: at most 120 characters each (kube-apiserver truncates longer ones); no duplicates. */
export function normalizeWarnings(warnings: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const warning of warnings) seen.add(warning.length > 120 ? `${warning.slice(0, 119)}…` : warning);
  return [...seen];
}

export function reviewResponse(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** What fastify would send for the serialized object. */
export const REVIEW_CONTENT_TYPE = 'application/json; charset=utf-8';

const REVIEW_PREFIX = `{"apiVersion":"${ADMISSION_API_VERSION}","kind":"AdmissionReview","response":{`;

/**
 * `JSON.stringify(reviewResponse(response))`, the same text, without scanning the patch for characters to escape:
 * `patch` is always encodePatch's base64 (src/admission/patch.ts), which has none. It is most of an answer's bytes.
 */
export function serializeReviewResponse(response: AdmissionResponse): string {
  let text = REVIEW_PREFIX;
  let first = true;
  for (const key in response) {
    const value = (response as unknown as Record<string, unknown>)[key];
    const json = key === 'patch' && typeof value === 'string' ? `"${value}"` : JSON.stringify(value);
    if (json === undefined) continue;
    text += `${first ? '' : ','}${JSON.stringify(key)}:${json}`;
    first = false;
  }
  return `${text}}}`;
}
