import { mutateObject, type MutationEnvironment, type MutationOutcome } from '../mutation/pipeline.js';
import { forbiddenStatus } from '../policy/answer.js';
import { earlyRefusal } from '../policy/early-refusal.js';
import type { PolicyDecision } from '../policy/validate.js';
import { objectInput } from './object-input.js';
import { encodePatch } from './patch.js';
import { normalizeWarnings } from './review.js';
import type { AdmissionRequest, AdmissionResponse } from './types.js';

export interface ReviewResult {
  readonly response: AdmissionResponse;
  readonly outcome: MutationOutcome;
  /** Policy decisions taken on /mutate (escalation guard, early refusal), for the decisions metric. */
  readonly decisions?: PolicyDecision[];
}

/**
 * `POST /mutate`: a checked AdmissionRequest in, the AdmissionResponse out. Allowed unless the namespace policy
 * forbids what a requested feature adds (escalation guard) or the object would be denied even after injection
 * (early refusal); both answer 403 with one line per violation.
 */
export function reviewMutation(request: AdmissionRequest, env: MutationEnvironment): ReviewResult {
  const outcome = mutateObject(objectInput(request), env);
  if (outcome.denial !== undefined) {
    const response: AdmissionResponse = { uid: request.uid, allowed: false, status: forbiddenStatus(outcome.denial.lines) };
    if (outcome.warnings.length > 0) response.warnings = normalizeWarnings(outcome.warnings);
    return { response, outcome, decisions: [{ policy: outcome.denial.policy, rule: 'escalation', mode: 'enforce', decision: 'denied' }] };
  }
  const refused = earlyRefusal(request, outcome.patch, env);
  if (refused !== undefined) {
    const response: AdmissionResponse = { uid: request.uid, allowed: false, status: forbiddenStatus(refused.denial) };
    // The owner still gets podvisor's own explanations (an invalid value, a skipped feature) with the denial.
    if (outcome.warnings.length > 0) response.warnings = normalizeWarnings(outcome.warnings);
    return { response, outcome, decisions: refused.decisions };
  }
  const response: AdmissionResponse = { uid: request.uid, allowed: true };
  // patch and patchType only for a non-empty patch (kubernetes-rules.md §4).
  if (outcome.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = encodePatch(outcome.patch);
  }
  if (outcome.warnings.length > 0) response.warnings = normalizeWarnings(outcome.warnings);
  return { response, outcome };
}
