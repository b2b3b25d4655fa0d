import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { namespaceLabels, type MutationEnvironment } from '../mutation/pipeline.js';
import { isKubeletMirrorPod } from '../workload/exclusions.js';
import { findWorkloadKind } from '../workload/kinds.js';
import { judgedRequest } from './judged-requests.js';
import { auditValue, AUDIT_ANNOTATION, denialLines, warningLines } from './answer.js';
import { allowanceContext } from './allowances.js';
import { evaluatePod, MODES, type PolicyEvaluation } from './evaluate.js';
import { podViewOf, sameJson } from './pod-view-of.js';
import type { ObjectInput } from '../admission/object-input.js';
import type { ModeName } from './schema.js';
import { findExemption, type Exemption } from './scope.js';
import { selectPolicy } from './select.js';
import { violationKey, type Violation } from './violation.js';

export type ValidationInput = ObjectInput;

export type ValidationSkip =
  | 'unsupported_kind'
  | 'unsupported_operation'
  | 'subresource'
  | 'workloads_ignored'
  | 'mirror_pod'
  | 'no_pod_spec'
  | 'template_unchanged';

/** One counted decision: `podvisor_policy_decisions_total{policy,rule,mode,decision}`. */
export interface PolicyDecision {
  readonly policy: string;
  readonly rule: string;
  readonly mode: ModeName | 'exempt';
  readonly decision: 'allowed' | 'denied' | 'warned' | 'audited' | 'exempt';
}

export interface ValidationOutcome {
  readonly allowed: boolean;
  /** The 403 message lines when denied. */
  readonly denial: string[];
  readonly warnings: string[];
  readonly auditAnnotations: Record<string, string>;
  readonly decisions: PolicyDecision[];
  readonly policy?: string;
  readonly exemption?: Exemption;
  readonly skip?: ValidationSkip;
  /** Violations per mode after allowances (and, for ephemeral containers, only those the update adds). */
  readonly evaluation?: PolicyEvaluation;
}

function skipped(skip: ValidationSkip): ValidationOutcome {
  return { allowed: true, denial: [], warnings: [], auditAnnotations: {}, decisions: [], skip };
}

/**
 * The pure core of `POST /validate`, `podvisor check` and `/mutate`'s early refusal, for the requests of
 * JUDGED_REQUESTS (src/policy/judged-requests.ts):
 * - Pods on CREATE; Pods and `pods/ephemeralcontainers` on UPDATE, judging what the update adds (so
 *   `kubectl debug --profile=sysadmin` cannot bypass the policy, kubernetes-rules.md §5.5);
 * - workloads on CREATE and UPDATE (UPDATE only when the pod template changed), enforced unless
 *   `policy.workloads` says `warn` (PSA's behaviour) or `ignore`; their templates are judged as the controller that
 *   creates their Pods (src/policy/scope.ts);
 * - never mirror pods: the kubelet would retry a denied one for ever (§11).
 */
export function validateObject(input: ValidationInput, env: MutationEnvironment): ValidationOutcome {
  const { config } = env;
  const policyConfig = config.policy;
  const kind = findWorkloadKind(input.group, input.version, input.kind);
  if (kind === undefined) return skipped('unsupported_kind');
  const isPod = kind.templatePath.length === 0;
  const judged = judgedRequest(kind, input.subResource, input.operation);
  if (judged === undefined) return skipped((input.subResource ?? '') === '' ? 'unsupported_operation' : 'subresource');
  if (!isPod && policyConfig.workloads === 'ignore') return skipped('workloads_ignored');
  // Never deny a mirror pod (the kubelet would retry for ever), but only the kubelet's: the annotation alone is no proof.
  if (isPod && isKubeletMirrorPod(input.object['metadata'] as ObjectMeta | undefined, input.userInfo)) return skipped('mirror_pod');

  const exemption = findExemption(config, input.namespace, kind, input.userInfo);
  if (exemption !== undefined) {
    return { allowed: true, denial: [], warnings: [], auditAnnotations: {}, decisions: [{ policy: '-', rule: 'none', mode: 'exempt', decision: 'exempt' }], exemption };
  }

  const pod = podViewOf(input.object, kind);
  if (pod === undefined) return skipped('no_pod_spec');
  const oldPod = input.operation === 'UPDATE' ? podViewOf(input.oldObject, kind) : undefined;
  if (!isPod && oldPod !== undefined && sameJson({ m: oldPod.metadata, s: oldPod.spec }, { m: pod.metadata, s: pod.spec })) return skipped('template_unchanged');

  const policy = selectPolicy(policyConfig, input.namespace, namespaceLabels(env, input.namespace));
  const ctx = allowanceContext(config);
  let evaluation = evaluatePod(pod, policy, ctx);
  if (judged.addedOnly && oldPod !== undefined) {
    // Only what the update adds: the rest of a running pod was judged when it was created and cannot be undone.
    const before = evaluatePod(oldPod, policy, ctx);
    const added = (mode: ModeName) => {
      const old = new Set(before[mode].map(violationKey));
      return evaluation[mode].filter((v) => !old.has(violationKey(v)));
    };
    evaluation = { policy, enforce: added('enforce'), warn: added('warn'), audit: added('audit') };
  }
  return answer(evaluation, isPod || policyConfig.workloads === 'enforce');
}

function answer(evaluation: PolicyEvaluation, enforce: boolean): ValidationOutcome {
  const { policy } = evaluation;
  const decisions: PolicyDecision[] = [];
  const count = (mode: ModeName, violations: readonly Violation[], decision: PolicyDecision['decision']) => {
    for (const rule of new Set(violations.map((v) => v.check))) decisions.push({ policy: policy.name, rule, mode, decision });
  };
  const denied = enforce && evaluation.enforce.length > 0;
  const warnings: string[] = [];
  if (denied) count('enforce', evaluation.enforce, 'denied');
  else if (evaluation.enforce.length > 0) {
    warnings.push(...warningLines(policy.name, evaluation.enforce));
    count('enforce', evaluation.enforce, 'warned');
  }
  warnings.push(...warningLines(policy.name, evaluation.warn));
  count('warn', evaluation.warn, 'warned');
  const auditAnnotations: Record<string, string> = {};
  if (evaluation.audit.length > 0) {
    auditAnnotations[AUDIT_ANNOTATION] = auditValue(policy.name, policy.audit.level, policy.audit.version, evaluation.audit);
    count('audit', evaluation.audit, 'audited');
  }
  if (decisions.length === 0) decisions.push({ policy: policy.name, rule: 'none', mode: MODES[0]!, decision: 'allowed' });
  return {
    allowed: !denied,
    denial: denied ? denialLines(policy.name, evaluation.enforce) : [],
    warnings,
    auditAnnotations,
    decisions,
    policy: policy.name,
    evaluation,
  };
}
