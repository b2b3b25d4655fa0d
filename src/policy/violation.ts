import type { Volume } from 'kubernetes-types/core/v1.js';
import type { ContainerRef } from './pod-view.js';

/** What an allowance may waive. Violations without a subject can never be waived. */
export type ViolationSubject =
  | { readonly kind: 'capability'; readonly ref: ContainerRef; readonly capability: string }
  | { readonly kind: 'hostNamespace'; readonly name: 'hostPID' | 'hostNetwork' | 'hostIPC' }
  | { readonly kind: 'hostPort'; readonly hostPort: number; readonly containerPort: number | undefined }
  | { readonly kind: 'hostPath'; readonly volume: Volume }
  | { readonly kind: 'privileged'; readonly ref: ContainerRef };

export interface Violation {
  /** The Pod Security check ID (as in pod-security-admission), or `podvisor:privileged` for the explicit rule. */
  readonly check: string;
  /** Full field path, e.g. `spec.template.spec.containers[0].securityContext.privileged`. */
  readonly field: string;
  /** The offending value, when there is one worth showing (a capability, a sysctl name, a volume type). */
  readonly value?: string;
  readonly subject?: ViolationSubject;
  /** Why an allowance that seems to cover it does not, for the message. */
  readonly hint?: string;
}

/** Identity for comparing violations before and after a change (escalation guard, ephemeral containers). */
export function violationKey(v: Violation): string {
  return `${v.check}|${v.field}|${v.value ?? ''}`;
}
