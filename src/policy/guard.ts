import type { UserInfo } from 'kubernetes-types/authentication/v1.js';
import type { Config } from '../config/schema.js';
import type { Feature, PodDraft } from '../features/feature.js';
import { denialLines, warningLines } from './answer.js';
import { allowanceContext } from './allowances.js';
import { evaluatePod, type PolicyEvaluation } from './evaluate.js';
import type { PodView } from './pod-view.js';
import type { ModeName, NamedPolicy } from './schema.js';
import { findExemption } from './scope.js';
import { selectPolicy } from './select.js';
import type { WorkloadKind } from '../workload/kinds.js';
import { violationKey, type Violation } from './violation.js';

export interface GuardRefusal {
  /** `enforce`: the request is denied; `warn`: the feature is skipped with a warning. */
  readonly mode: 'enforce' | 'warn';
  readonly policy: string;
  readonly lines: string[];
}

export interface EscalationGuard {
  /**
   * Called after `feature` changed the draft: the violations it introduced that the policy does not allow, or
   * undefined when it introduced none. The caller rolls the feature back on a refusal.
   */
  review(feature: Feature, draft: PodDraft): GuardRefusal | undefined;
}

export interface GuardInput {
  readonly config: Config;
  readonly namespace: string;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly userInfo?: UserInfo | undefined;
  readonly kind: WorkloadKind;
  readonly specField: string;
  readonly metaField: string;
}

const GUARDED_MODES: readonly ModeName[] = ['enforce', 'warn'];

function cannotViolate(policy: NamedPolicy): boolean {
  return policy.enforce.level === 'privileged' && policy.warn.level === 'privileged' && policy.privileged === 'allow';
}

/**
 * The escalation guard: features that grant privileges (LXCFS hostPath files, FUSE's SYS_ADMIN, agent capabilities
 * and host namespaces, whatever a future feature adds) apply only where the namespace policy allows what they add.
 * Generic over the Feature interface: the draft is evaluated against the policy's enforce and warn levels after
 * every feature, and only violations that were not there before the feature count. Undefined when nothing can be
 * refused (exempt request, or a policy that checks nothing).
 */
export function createEscalationGuard(input: GuardInput, initial: PodDraft): EscalationGuard | undefined {
  const { config } = input;
  // A template is judged as the controller that will create its Pods, not as the (maybe exempt) requester.
  if (findExemption(config, input.namespace, input.kind, input.userInfo) !== undefined) return undefined;
  const policy = selectPolicy(config.policy, input.namespace, input.namespaceLabels);
  if (cannotViolate(policy)) return undefined;
  const ctx = allowanceContext(config);
  const evaluate = (draft: PodDraft): PolicyEvaluation => {
    const view: PodView = { metadata: draft.metadata, spec: draft.spec, specField: input.specField, metaField: input.metaField };
    return evaluatePod(view, policy, ctx, GUARDED_MODES);
  };
  const keys = (e: PolicyEvaluation) => ({ enforce: new Set(e.enforce.map(violationKey)), warn: new Set(e.warn.map(violationKey)) });
  let known = keys(evaluate(initial));
  // Workload templates follow `policy.workloads`: only `enforce` turns a refusal into a denial.
  const enforceDenies = input.kind.templatePath.length === 0 || config.policy.workloads === 'enforce';

  return {
    review(feature, draft) {
      const after = evaluate(draft);
      const added = (mode: 'enforce' | 'warn'): Violation[] => after[mode].filter((v) => !known[mode].has(violationKey(v)));
      const enforce = added('enforce');
      const warn = added('warn');
      if (enforce.length === 0 && warn.length === 0) {
        known = keys(after);
        return undefined;
      }
      const why = `${feature.annotation}: not applied, policy ${policy.name} does not allow what it adds`;
      if (enforce.length > 0 && enforceDenies) return { mode: 'enforce', policy: policy.name, lines: [...denialLines(policy.name, enforce), why] };
      return { mode: 'warn', policy: policy.name, lines: [why, ...warningLines(policy.name, enforce.length > 0 ? enforce : warn)] };
    },
  };
}
