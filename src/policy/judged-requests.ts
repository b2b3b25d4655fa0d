import type { Operation } from '../admission/types.js';
import { WORKLOAD_KINDS, type WorkloadKind } from '../workload/kinds.js';

/**
 * Every admission request through which what runs in a Pod can gain privileges. The validating webhook registers
 * exactly these (src/k8s/webhook-configurations.ts) and `/validate` judges exactly these (src/policy/validate.ts).
 */
export interface JudgedRequest {
  readonly kind: WorkloadKind;
  /** `ephemeralcontainers` for `pods/ephemeralcontainers`; absent for the resource itself. */
  readonly subResource?: string;
  readonly operations: readonly Operation[];
  /** On UPDATE, only violations the new object adds to the old one count (a running Pod's spec cannot be undone). */
  readonly addedOnly: boolean;
  readonly reason: string;
}

const POD = WORKLOAD_KINDS.find((k) => k.templatePath.length === 0)!;

export const JUDGED_REQUESTS: readonly JudgedRequest[] = [
  { kind: POD, operations: ['CREATE'], addedOnly: false, reason: 'every Pod, whoever creates it (a user, a controller, an operator), is judged where it is created' },
  {
    kind: POD,
    operations: ['UPDATE'],
    addedOnly: true,
    reason: 'mutable Pod fields (image, tolerations, scheduling gates, annotations read by older policy versions) can change on a running Pod',
  },
  {
    kind: POD,
    subResource: 'ephemeralcontainers',
    operations: ['UPDATE'],
    addedOnly: true,
    reason: '`kubectl debug` adds containers with their own securityContext (`--profile=sysadmin` asks for privileged)',
  },
  ...WORKLOAD_KINDS.filter((k) => k.templatePath.length > 0).map(
    (kind): JudgedRequest => ({
      kind,
      operations: ['CREATE', 'UPDATE'],
      addedOnly: false,
      // A Job's template is immutable but for a suspended Job's scheduling directives, labels and annotations.
      reason: `the pod template of a ${kind.kind} becomes Pods created by a controller: judged at apply time so the owner is told, not a controller looping on denials`,
    }),
  ),
];

/** The judged request matching a review, or undefined when nothing it can change is judged. */
export function judgedRequest(kind: WorkloadKind, subResource: string | undefined, operation: Operation): JudgedRequest | undefined {
  const sub = subResource ?? '';
  return JUDGED_REQUESTS.find((r) => r.kind === kind && (r.subResource ?? '') === sub && r.operations.includes(operation));
}
