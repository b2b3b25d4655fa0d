// AdmissionReview admission.k8s.io/v1, from k8s.io/api/admission/v1/types.go. Neither @kubernetes/client-node nor
// kubernetes-types ships these (the API is not served, so it is not in the OpenAPI spec).
import type { Status } from 'kubernetes-types/meta/v1.js';
import type { UserInfo } from 'kubernetes-types/authentication/v1.js';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

/** A Kubernetes object as JSON: only what podvisor reads is typed, the rest is carried through untouched. */
export type KubeObject = Record<string, unknown>;

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
  options?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  /** The Go field is `Result`; its JSON name is `status`. */
  status?: Status;
  /** base64 of the JSON Patch array. */
  patch?: string;
  patchType?: 'JSONPatch';
  auditAnnotations?: Record<string, string>;
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}
