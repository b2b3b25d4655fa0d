import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { mutateObject, type MutationEnvironment, type MutationOutcome } from '../mutation/pipeline.js';
import { encodePatch } from './patch.js';
import { normalizeWarnings } from './review.js';
import type { AdmissionRequest, AdmissionResponse } from './types.js';

export interface ReviewResult {
  readonly response: AdmissionResponse;
  readonly outcome: MutationOutcome;
}

/** `POST /mutate`: a checked AdmissionRequest in, the AdmissionResponse out. Always allowed: podvisor only adds. */
export function reviewMutation(request: AdmissionRequest, env: MutationEnvironment): ReviewResult {
  const object = request.object ?? {};
  const meta = object['metadata'] as ObjectMeta | undefined;
  const outcome = mutateObject(
    {
      group: request.kind.group,
      version: request.kind.version,
      kind: request.kind.kind,
      operation: request.operation,
      subResource: request.subResource,
      namespace: request.namespace ?? meta?.namespace ?? '',
      object,
    },
    env,
  );
  const response: AdmissionResponse = { uid: request.uid, allowed: true };
  // patch and patchType only for a non-empty patch (kubernetes-rules.md §4).
  if (outcome.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = encodePatch(outcome.patch);
  }
  if (outcome.warnings.length > 0) response.warnings = normalizeWarnings(outcome.warnings);
  return { response, outcome };
}
