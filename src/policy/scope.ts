import type { UserInfo } from 'kubernetes-types/authentication/v1.js';
import type { Config } from '../config/schema.js';
import type { WorkloadKind } from '../workload/kinds.js';

/**
 * What the policy judges, decided in one place for every path that asks: the validating webhook's registration and
 * its static render (src/k8s/webhook-configurations.ts), `/validate`, `/mutate`'s early refusal, `podvisor check`
 * and the escalation guard.
 *
 * Only `policy.exemptions` and podvisor's own namespace take an object out of the policy. Nothing a workload owner
 * or a namespace admin controls counts: not the `podvisor.io/exclude` label (it opts out of mutation only), not a
 * namespace label, not `excludedNamespaces` (mutation scope). Namespaces are matched by name, which the apiserver
 * selects through the immutable `kubernetes.io/metadata.name` label.
 */

export type Exemption = { readonly by: 'namespace' | 'username' | 'group'; readonly value: string };

/** Namespaces the policy never judges: `policy.exemptions.namespaces` and podvisor's own (so it can always restart). */
export function exemptNamespaces(config: Config): string[] {
  return [...new Set([config.namespace, ...config.policy.exemptions.namespaces])].sort();
}

/** The service account a kube-controller-manager controller acts as, with the groups the apiserver gives it. */
function controllerIdentity(controller: string): UserInfo {
  return {
    username: `system:serviceaccount:kube-system:${controller}`,
    groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
  };
}

/**
 * Who will create the Pods the object describes. A Pod: the requester. A workload template: the controller that
 * creates its Pods, never the requester — an exempt user's Deployment yields Pods created by the replicaset
 * controller, which PSA and podvisor judge at Pod CREATE, so the template is judged (and mutated) as those Pods.
 */
function podCreatorIdentity(kind: WorkloadKind, requester: UserInfo | undefined): UserInfo | undefined {
  return kind.podCreator === undefined ? requester : controllerIdentity(kind.podCreator);
}

/** PSA-style exemptions: the namespace, then the username and groups of whoever creates the Pods. */
export function findExemption(config: Config, namespace: string, kind: WorkloadKind, requester: UserInfo | undefined): Exemption | undefined {
  const { exemptions } = config.policy;
  if (namespace === config.namespace || exemptions.namespaces.includes(namespace)) return { by: 'namespace', value: namespace };
  const userInfo = podCreatorIdentity(kind, requester);
  // userInfo comes from the request body: only well-typed values can exempt.
  const username: unknown = userInfo?.username;
  if (typeof username === 'string' && exemptions.usernames.includes(username)) return { by: 'username', value: username };
  const groups: unknown = userInfo?.groups;
  const group = Array.isArray(groups) ? groups.find((g): g is string => typeof g === 'string' && exemptions.groups.includes(g)) : undefined;
  if (group !== undefined) return { by: 'group', value: group };
  return undefined;
}
