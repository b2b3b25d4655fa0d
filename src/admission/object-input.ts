import type { UserInfo } from 'kubernetes-types/authentication/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { AdmissionRequest, KubeObject, Operation } from './types.js';

/** What the mutation pipeline and the policy judge of a review: the object, its kind and where it goes. */
export interface ObjectInput {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly operation: Operation;
  readonly subResource?: string | undefined;
  readonly namespace: string;
  readonly object: KubeObject;
  /** The previous object, on UPDATE. */
  readonly oldObject?: KubeObject | null | undefined;
  /** The requester, for policy exemptions by username and group. */
  readonly userInfo?: UserInfo | undefined;
}

/** The one mapping from an AdmissionRequest; the namespace falls back to the object's own (CLI and direct POSTs). */
export function objectInput(request: AdmissionRequest, object: KubeObject = request.object ?? {}): ObjectInput {
  const meta = object['metadata'] as ObjectMeta | undefined;
  return {
    group: request.kind.group,
    version: request.kind.version,
    kind: request.kind.kind,
    operation: request.operation,
    subResource: request.subResource,
    namespace: request.namespace ?? meta?.namespace ?? '',
    object,
    oldObject: request.oldObject,
    userInfo: request.userInfo,
  };
}
