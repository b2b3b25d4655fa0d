// The kube-apiserver's audit log of the end-to-end control plane (test/support/control-plane.ts): one JSON line per
// request of a ServiceAccount of podvisor-system, at level Metadata (verb, object, response code; no bodies). Each
// replica runs with a token of its own, and the apiserver records the token's ID with every call, so calls can be told
// apart by replica.
import { readFile } from 'node:fs/promises';
import { loadKubeConfig, type ControlPlaneInfo } from './control-plane.js';

export const PODVISOR_USER = 'system:serviceaccount:podvisor-system:podvisor';

export interface AuditEvent {
  readonly user: { readonly username: string; readonly extra?: Readonly<Record<string, readonly string[]>> };
  readonly verb: string;
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly apiGroup?: string; readonly namespace?: string; readonly name?: string };
  readonly responseStatus?: { readonly code?: number };
  readonly requestReceivedTimestamp: string;
  readonly stage: string;
}

/** podvisor's calls on resources received at or after `sinceMs` (epoch ms), in the order they completed. */
export async function podvisorCalls(info: ControlPlaneInfo, sinceMs: number): Promise<AuditEvent[]> {
  const text = await readFile(info.auditLog, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent)
    .filter((e) => e.user.username === PODVISOR_USER && Date.parse(e.requestReceivedTimestamp) >= sinceMs && e.objectRef?.resource !== undefined);
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
