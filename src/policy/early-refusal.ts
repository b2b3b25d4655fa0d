import jsonpatch from 'fast-json-patch';
import type { PatchOperation } from '../admission/patch.js';
import type { AdmissionRequest, KubeObject } from '../admission/types.js';
import { namespaceLabels, type MutationEnvironment } from '../mutation/pipeline.js';
import { canDeny, selectPolicy } from './select.js';
import { objectInput } from '../admission/object-input.js';
import { validateObject, type ValidationOutcome } from './validate.js';

/**
 * `/mutate` refuses early an object that the validating webhook would deny even after podvisor's own patch: nothing
 * podvisor injects would fix it, and the owner gets the reason at `kubectl apply` from the first webhook that sees
 * it. Returns the denying outcome, or undefined when the object (as mutated) passes.
 */
export function earlyRefusal(request: AdmissionRequest, patch: readonly PatchOperation[], env: MutationEnvironment): ValidationOutcome | undefined {
  if (!env.config.policy.refuseEarly || request.object === undefined || request.object === null) return undefined;
  // A policy that cannot deny (the default is one) costs the hot path neither the copy nor the evaluation.
  const { namespace } = objectInput(request);
  if (!canDeny(selectPolicy(env.config.policy, namespace, namespaceLabels(env, namespace)))) return undefined;
  let object: KubeObject = request.object;
  try {
    // mutateDocument false: fast-json-patch copies through JSON, which copes with deeper objects than structuredClone.
    if (patch.length > 0) object = jsonpatch.applyPatch(request.object, [...patch], false, false).newDocument as KubeObject;
  } catch (err) {
    // An object too deep to copy: leave the decision to the validating webhook rather than answer 500.
    if (err instanceof RangeError) return undefined;
    throw err;
  }
  const outcome = validateObject(objectInput(request, object), env);
  return outcome.allowed ? undefined : outcome;
}
