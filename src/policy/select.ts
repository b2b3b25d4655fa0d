import type { NamedPolicy, PolicyConfig } from './schema.js';
import { matchesSelector, selectorSpecificity } from './selector.js';

/**
 * The policy of a namespace, most specific first:
 * 1. a policy that names the namespace in `match.names` (a namespace may be named by one policy only: the config
 *    refuses duplicates);
 * 2. else the policy whose `match.selector` matches the namespace labels with the most requirements
 *    (matchLabels entries + matchExpressions); on a tie, the one listed first in the config;
 * 3. else the cluster default.
 */
export function selectPolicy(policy: PolicyConfig, namespace: string, labels: Readonly<Record<string, string>>): NamedPolicy {
  const named = policy.namespaces.find((p) => p.match.names?.includes(namespace));
  if (named !== undefined) return named;
  let best: { policy: NamedPolicy; specificity: number } | undefined;
  for (const p of policy.namespaces) {
    if (p.match.selector === undefined || !matchesSelector(p.match.selector, labels)) continue;
    const specificity = selectorSpecificity(p.match.selector);
    if (best === undefined || specificity > best.specificity) best = { policy: p, specificity };
  }
  return best?.policy ?? policy.default;
}

/** Whether a policy can deny anything: only enforce mode denies, and at level privileged only `privileged: deny`. */
export function canDeny(policy: NamedPolicy): boolean {
  return policy.enforce.level !== 'privileged' || policy.privileged === 'deny';
}
