// The end-to-end control plane runs no scheduler and no kubelet (test/support/control-plane.ts). What they would write,
// the tests write themselves with the admin kubeconfig, through the same subresources: the scheduler's Binding
// (pods/binding) and the kubelet's pod status (pods/status). Everything else (admission, controllers, evictions,
// PodDisruptionBudgets) is the real control plane's.
import type { KubeConfig } from '@kubernetes/client-node';
import { apiRequest } from './control-plane.js';

/** Binds a Pod to a Node, as the scheduler does (the Pod must not be bound yet). */
export async function bindPod(admin: KubeConfig, namespace: string, name: string, node: string): Promise<void> {
  const answer = await apiRequest(admin, 'POST', `/api/v1/namespaces/${namespace}/pods/${name}/binding`, {
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name, namespace },
    target: { apiVersion: 'v1', kind: 'Node', name: node },
  });
  if (answer.status !== 201) throw new Error(`binding ${namespace}/${name} to ${node}: ${answer.status} ${JSON.stringify(answer.body)}`);
}

export interface RunningStatus {
  /** When every listed container (re)started: RFC 3339, as the kubelet reports it (the API keeps whole seconds). */
  readonly startedAt: Date;
  readonly ready: boolean;
  readonly restartCount?: number;
}

/**
 * The status the kubelet reports for a Pod whose containers run: phase Running, the Ready condition, and one
 * containerStatus per container of the spec. The Eviction API checks PodDisruptionBudgets only for Running Pods and
 * counts a Pod healthy by its Ready condition, so both are set as a kubelet sets them.
 */
export async function reportRunning(admin: KubeConfig, namespace: string, name: string, status: RunningStatus): Promise<void> {
  const current = await apiRequest(admin, 'GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
  if (current.status !== 200) throw new Error(`reading ${namespace}/${name}: ${current.status} ${JSON.stringify(current.body)}`);
  const containers = (current.body as { spec: { containers: { name: string; image: string }[] } }).spec.containers;
  const at = status.startedAt.toISOString();
  const ready = status.ready ? 'True' : 'False';
  const patch = {
    status: {
      phase: 'Running',
      startTime: at,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
        { type: 'Initialized', status: 'True', lastTransitionTime: at },
        { type: 'ContainersReady', status: ready, lastTransitionTime: at },
        { type: 'Ready', status: ready, lastTransitionTime: at },
      ],
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: status.ready,
        started: true,
        restartCount: status.restartCount ?? 0,
        state: { running: { startedAt: at } },
      })),
    },
  };
  const answer = await apiRequest(admin, 'PATCH', `/api/v1/namespaces/${namespace}/pods/${name}/status`, patch, 'application/merge-patch+json');
  if (answer.status !== 200) throw new Error(`status of ${namespace}/${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
}
