import { ApiException, CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Lease, type V1Pod } from '@kubernetes/client-node';
import type { LeaseSpec } from 'kubernetes-types/coordination/v1.js';
import type { Pod } from 'kubernetes-types/core/v1.js';
import { startListWatch } from '../k8s/list-watch.js';
import { COMPONENT } from '../k8s/names.js';
import type { PodRef } from './affected-pods.js';
import type { RecoveryOptions } from './options.js';

export type EvictionResult = 'evicted' | 'gone' | 'blocked' | 'error';

export interface StoredLease {
  readonly spec: LeaseSpec | undefined;
  readonly resourceVersion: string | undefined;
}

/**
 * The controller's only contact with the API server. Every call here is allowed by deploy/'s RBAC
 * (test/e2e/recovery.test.ts checks them in the apiserver's audit log).
 */
export interface RecoveryApi {
  /** Watches the lxcfs pods; `onChange` gets every added/updated pod. Returns a stop function. */
  watchLxcfsPods(onChange: (pod: Pod) => void, onError: (err: unknown) => void): Promise<() => Promise<void>>;
  /** Pods scheduled on `node`, every namespace. */
  listPodsOnNode(node: string): Promise<Pod[]>;
  /** POST pods/{name}/eviction (policy/v1): the API server checks PodDisruptionBudgets and answers 429 when one blocks. */
  evict(pod: PodRef): Promise<{ result: EvictionResult; message?: string }>;
  /** A Warning Event on a pod the controller will not evict. */
  reportBarePod(pod: PodRef, node: string, message: string): Promise<void>;
  readLease(): Promise<StoredLease | undefined>;
  /** false when another replica wrote first (409). */
  writeLease(spec: LeaseSpec, previous: StoredLease | undefined): Promise<boolean>;
}

const asPod = (pod: V1Pod): Pod => pod as unknown as Pod;

/**
 * What the controller reads of an lxcfs pod (its labels, and lxcfsStateOf's fields): the watch keeps no more of it
 * (one pod per node; a whole Pod with managedFields is several KB).
 */
function lxcfsPodFields(pod: V1Pod): Pod {
  const { name, namespace, uid, resourceVersion, deletionTimestamp, labels } = pod.metadata ?? {};
  return asPod({
    metadata: { name, namespace, uid, resourceVersion, deletionTimestamp, labels },
    spec: { nodeName: pod.spec?.nodeName, containers: [] },
    status: { containerStatuses: pod.status?.containerStatuses },
  } as V1Pod);
}

export function kubeRecoveryApi(kubeConfig: KubeConfig, options: RecoveryOptions): RecoveryApi {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  const { namespace, lxcfsSelector, leaseName, identity } = options;
  return {
    async watchLxcfsPods(onChange, onError) {
      const pods = startListWatch<V1Pod, Pod>(kubeConfig, {
        path: `/api/v1/namespaces/${namespace}/pods`,
        list: () => core.listNamespacedPod({ namespace, labelSelector: lxcfsSelector }),
        labelSelector: lxcfsSelector,
        keep: lxcfsPodFields,
        onUpsert: onChange,
        onError,
      });
      // Returns without waiting for the first list: an unreachable API server must not stop podvisor from serving
      // admission requests.
      return () => pods.stop();
    },
    async listPodsOnNode(node) {
      const list = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` });
      return list.items.map(asPod);
    },
    async evict(pod) {
      try {
        await core.createNamespacedPodEviction({
          name: pod.name,
          namespace: pod.namespace,
          // The UID precondition: never the pod that replaced it under the same name (a StatefulSet's), which already
          // has live LXCFS mounts. A mismatch answers 409.
          body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.name, namespace: pod.namespace }, deleteOptions: { preconditions: { uid: pod.uid } } },
        });
        return { result: 'evicted' };
      } catch (err) {
        if (!(err instanceof ApiException)) throw err;
        const message = statusMessage(err);
        if (err.code === 404 || err.code === 409) return { result: 'gone', message };
        // 429: a PodDisruptionBudget allows no disruption right now.
        if (err.code === 429) return { result: 'blocked', message };
        return { result: 'error', message: `HTTP ${err.code}: ${message}` };
      }
    },
    async reportBarePod(pod, node, message) {
      const now = new Date();
      await core.createNamespacedEvent({
        namespace: pod.namespace,
        body: {
          metadata: { generateName: `${pod.name}.`, namespace: pod.namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.name, namespace: pod.namespace, uid: pod.uid },
          type: 'Warning',
          reason: 'LxcfsRestarted',
          message,
          source: { component: COMPONENT, host: node },
          reportingComponent: COMPONENT,
          reportingInstance: identity,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    },
    async readLease() {
      try {
        const lease: V1Lease = await coordination.readNamespacedLease({ name: leaseName, namespace });
        return { spec: lease.spec as LeaseSpec | undefined, resourceVersion: lease.metadata?.resourceVersion };
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return undefined;
        throw err;
      }
    },
    async writeLease(spec, previous) {
      const body = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: leaseName, namespace, ...(previous?.resourceVersion !== undefined ? { resourceVersion: previous.resourceVersion } : {}) },
        spec: spec as V1Lease['spec'],
      };
      try {
        if (previous === undefined) await coordination.createNamespacedLease({ namespace, body });
        else await coordination.replaceNamespacedLease({ name: leaseName, namespace, body });
        return true;
      } catch (err) {
        if (err instanceof ApiException && err.code === 409) return false;
        throw err;
      }
    },
  };
}

function statusMessage(err: ApiException<unknown>): string {
  try {
    return (JSON.parse(String(err.body)) as { message?: string }).message ?? String(err.body);
  } catch {
    return String(err.body);
  }
}

