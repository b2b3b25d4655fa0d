import { normalizeWarnings } from '../admission/review.js';
import type { AdmissionRequest, AdmissionResponse } from '../admission/types.js';
import type { MutationEnvironment } from '../mutation/pipeline.js';
import { forbiddenStatus } from './answer.js';
import { objectInput } from '../admission/object-input.js';
import { validateObject, type ValidationOutcome } from './validate.js';

/** `POST /validate`: a checked AdmissionRequest in, the AdmissionResponse out (never a patch). */
export function reviewValidation(request: AdmissionRequest, env: MutationEnvironment): { response: AdmissionResponse; outcome: ValidationOutcome } {
  const outcome = validateObject(objectInput(request), env);
  const response: AdmissionResponse = { uid: request.uid, allowed: outcome.allowed };
  if (!outcome.allowed) response.status = forbiddenStatus(outcome.denial);
  if (outcome.warnings.length > 0) response.warnings = normalizeWarnings(outcome.warnings);
  if (Object.keys(outcome.auditAnnotations).length > 0) response.auditAnnotations = outcome.auditAnnotations;
  return { response, outcome };
}
