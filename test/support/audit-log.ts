// The kube-apiserver's audit log of the end-to-end control plane (test/support/control-plane.ts audits every request of
// a ServiceAccount of podvisor-system, at Metadata level, once the response is complete), and what the shipped RBAC
// grants podvisor's ServiceAccount, in the same one-line form, so a test compares what podvisor called with what it may.
// Each replica runs with a token of its own, and the apiserver records the token's ID with every call, so calls can be
// told apart by replica.
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { loadKubeConfig, runKubectl, type ControlPlaneInfo } from './control-plane.js';

/** podvisor's own identity (deploy/base/serviceaccount.yaml). */
export const PODVISOR_USER = 'system:serviceaccount:podvisor-system:podvisor';

export interface AuditEvent {
  readonly user: { readonly username: string; readonly extra?: Readonly<Record<string, readonly string[]>> };
  readonly verb: string;
  /** Path and query as sent, e.g. `/api/v1/namespaces?allowWatchBookmarks=true&resourceVersion=12&watch=true`. */
  readonly requestURI: string;
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly apiGroup?: string; readonly namespace?: string; readonly name?: string };
  readonly responseStatus?: { readonly code?: number };
  readonly requestReceivedTimestamp: string;
  readonly stage: string;
}

/**
 * The API calls of `user` (podvisor by default) received at or after `since` (an ISO timestamp), in the order they
 * completed. (Compared as times: the log's timestamps have microseconds, `toISOString()` milliseconds.)
 */
export async function auditedCalls(info: ControlPlaneInfo, since: string, user = PODVISOR_USER): Promise<AuditEvent[]> {
  const text = await readFile(info.auditLog, 'utf8');
  const sinceMs = Date.parse(since);
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent)
    .filter((e) => e.user.username === user && Date.parse(e.requestReceivedTimestamp) >= sinceMs && e.objectRef?.resource !== undefined);
}

export function permission(group: string, resource: string, verb: string, namespace: string | undefined): string {
  return `${verb} ${group === '' ? 'core' : group}/${resource}${namespace === undefined ? '' : ` in ${namespace}`}`;
}

interface RenderedObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/**
 * What `overlay`'s RBAC, as kustomize renders it, grants podvisor's ServiceAccount: one line per verb and resource
 * (Roles: with their namespace). resourceNames are not kept: a line says the verb is granted on some objects.
 */
export async function grantedBy(info: ControlPlaneInfo, overlay: string): Promise<Set<string>> {
  const rendered = await runKubectl(info.adminKubeconfig, ['kustomize', overlay]);
  if (rendered.code !== 0) throw new Error(`kubectl kustomize ${overlay}: ${rendered.stderr}`);
  const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as RenderedObject);
  const bound = docs.filter((d) => (d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding') && d.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === 'podvisor' && s.namespace === 'podvisor-system'));
  const out = new Set<string>();
  for (const binding of bound) {
    const role = docs.find((d) => d.kind === binding.roleRef!.kind && d.metadata.name === binding.roleRef!.name && (d.kind === 'ClusterRole' || d.metadata.namespace === binding.metadata.namespace))!;
    const namespace = binding.kind === 'RoleBinding' ? binding.metadata.namespace : undefined;
    for (const rule of role.rules ?? []) for (const group of rule.apiGroups) for (const resource of rule.resources) for (const verb of rule.verbs) out.add(permission(group, resource, verb, namespace));
  }
  return out;
}

/** The permission an audited call needed: a namespaced Role line when a Role grants it there, else the cluster line. */
export function neededFor(event: AuditEvent, grants: Set<string>): string {
  const ref = event.objectRef!;
  const resource = ref.subresource === undefined ? ref.resource! : `${ref.resource}/${ref.subresource}`;
  const scoped = permission(ref.apiGroup ?? '', resource, event.verb, ref.namespace);
  return ref.namespace !== undefined && grants.has(scoped) ? scoped : permission(ref.apiGroup ?? '', resource, event.verb, undefined);
}

/** The query of an audited request, e.g. `{ watch: 'true', resourceVersion: '12' }`. */
export function queryOf(event: AuditEvent): Record<string, string> {
  return Object.fromEntries(new URL(event.requestURI, 'https://apiserver').searchParams);
}

/** How the apiserver names the token of `kubeconfigFile` in the audit log (`user.extra` credential-id: `JTI=<jti>`). */
export function credentialId(kubeconfigFile: string): string {
  const token = loadKubeConfig(kubeconfigFile).getCurrentUser()?.token ?? '';
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti?: string };
  if (payload.jti === undefined) throw new Error(`the token of ${kubeconfigFile} has no jti`);
  return `JTI=${payload.jti}`;
}

/** The token (see credentialId) an audited call was made with. */
export function callerOf(event: AuditEvent): string | undefined {
  return event.user.extra?.['authentication.kubernetes.io/credential-id']?.[0];
}

/** `verb code` of each call on `resource/name`, e.g. `create 201`. */
export function callsOn(events: readonly AuditEvent[], resource: string, name: string): string[] {
  return events.filter((e) => e.objectRef?.resource === resource && e.objectRef.name === name && e.objectRef.subresource === undefined).map((e) => `${e.verb} ${e.responseStatus?.code ?? '?'}`);
}
