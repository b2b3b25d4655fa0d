import { allowancesFor, isWaived, readOnlyHint, type AllowanceContext } from './allowances.js';
import { checksFor } from './checks/index.js';
import { containersOf, type PodView } from './pod-view.js';
import type { ModeName, NamedPolicy } from './schema.js';
import { policyMinor, type Level } from './version.js';
import type { Violation } from './violation.js';

export const PRIVILEGED_RULE = 'podvisor:privileged';

/** The Pod Security Standards verdict alone, as PSA would give it: no allowances. Empty means allowed. */
export function pssViolations(pod: PodView, level: Level, version: string): Violation[] {
  const minor = policyMinor(version);
  return checksFor(level, minor).flatMap((check) => check.run(pod, minor));
}

/** The explicit `privileged: deny` rule: every privileged container, whatever the level. */
export function privilegedRuleViolations(pod: PodView): Violation[] {
  return containersOf(pod)
    .filter((ref) => ref.container.securityContext?.privileged === true)
    .map((ref) => ({ check: PRIVILEGED_RULE, field: `${ref.field}.securityContext.privileged`, subject: { kind: 'privileged' as const, ref } }));
}

export interface PolicyEvaluation {
  readonly policy: NamedPolicy;
  readonly enforce: Violation[];
  readonly warn: Violation[];
  readonly audit: Violation[];
}

export const MODES: readonly ModeName[] = ['enforce', 'warn', 'audit'];

/** A pod (template) against a namespace policy: each mode's level and version, minus what the allowances waive. */
export function evaluatePod(pod: PodView, policy: NamedPolicy, ctx: AllowanceContext, modes: readonly ModeName[] = MODES): PolicyEvaluation {
  const allowances = allowancesFor(policy, pod);
  const result: PolicyEvaluation = { policy, enforce: [], warn: [], audit: [] };
  for (const mode of modes) {
    const { level, version } = policy[mode];
    const found = pssViolations(pod, level, version);
    if (mode === 'enforce' && policy.privileged === 'deny') found.push(...privilegedRuleViolations(pod));
    for (const v of found) {
      if (isWaived(v, policy, allowances, pod, ctx)) continue;
      const hint = readOnlyHint(v, allowances);
      result[mode].push(hint === undefined ? v : { ...v, hint });
    }
  }
  return result;
}
