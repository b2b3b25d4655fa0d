// Object helpers for the end-to-end suite, over the admin kubeconfig of the test control plane: create, read, wait for
// the Pods a controller creates, and the podvisor-specific checks on a stored Pod spec.
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from '../../src/admission/types.js';
import { apiRequest } from './control-plane.js';

/** The REST collection of a namespaced kind podvisor handles (the JSON the apiserver stores, no client model in between). */
const RESOURCES: Record<string, string> = { Pod: 'pods', Deployment: 'deployments', ReplicaSet: 'replicasets', StatefulSet: 'statefulsets', DaemonSet: 'daemonsets', Job: 'jobs', CronJob: 'cronjobs' };

function collection(apiVersion: string, kind: string, namespace: string): string {
  const resource = RESOURCES[kind];
  if (resource === undefined) throw new Error(`no REST path for kind ${kind}`);
  return `${apiVersion === 'v1' ? '/api/v1' : `/apis/${apiVersion}`}/namespaces/${namespace}/${resource}`;
}

export async function createObject(kc: KubeConfig, object: KubeObject): Promise<KubeObject> {
  const meta = object['metadata'] as { namespace: string };
  const answer = await apiRequest(kc, 'POST', collection(String(object['apiVersion']), String(object['kind']), meta.namespace), object);
  if (answer.status !== 201) throw new Error(`creating ${String(object['kind'])}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as KubeObject;
}

export async function readObject(kc: KubeConfig, apiVersion: string, kind: string, namespace: string, name: string): Promise<KubeObject> {
  const answer = await apiRequest(kc, 'GET', `${collection(apiVersion, kind, namespace)}/${name}`);
  if (answer.status !== 200) throw new Error(`reading ${kind} ${namespace}/${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as KubeObject;
}

export async function createNamespace(kc: KubeConfig, name: string, labels: Record<string, string> = {}): Promise<void> {
  const answer = await apiRequest(kc, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  if (answer.status !== 201) throw new Error(`creating namespace ${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
}

/** Deleting is asynchronous (the namespace controller empties it); tests use fresh names, so nothing waits. */
export async function deleteNamespace(kc: KubeConfig, name: string): Promise<void> {
  await apiRequest(kc, 'DELETE', `/api/v1/namespaces/${name}`);
}

export async function createServiceAccount(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  const answer = await apiRequest(kc, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  if (answer.status !== 201 && answer.status !== 409) throw new Error(`creating ServiceAccount ${namespace}/${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
}

export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${lastError === undefined ? '' : `: ${(lastError as Error).message}`}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The Pods in `namespace` matching `labels`, once there are at least `count`. */
export async function waitForPods(kc: KubeConfig, namespace: string, labels: Record<string, string>, count = 1, timeoutMs = 60_000): Promise<KubeObject[]> {
  const selector = encodeURIComponent(Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','));
  return eventually(`${count} Pod(s) with ${JSON.stringify(labels)} in ${namespace}`, async () => {
    const answer = await apiRequest(kc, 'GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=${selector}`);
    const items = (answer.body as { items?: KubeObject[] }).items ?? [];
    return items.length >= count ? items : undefined;
  }, timeoutMs);
}

interface Named {
  name: string;
  mountPath?: string;
}
type PodSpecLike = { containers?: (Named & { volumeMounts?: Named[] })[]; initContainers?: (Named & { volumeMounts?: Named[] })[]; volumes?: Named[] };

/** The ServiceAccount admission plugin adds a projected token volume `kube-api-access-*` to every Pod; it is not podvisor's. */
const SERVICE_ACCOUNT_VOLUME = /^kube-api-access-/;

function duplicates(values: string[]): string[] {
  return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}

/** Volume names, and per container mount paths and mount names, that occur more than once (none is the rule). */
export function duplicateMounts(spec: PodSpecLike): string[] {
  const found = duplicates((spec.volumes ?? []).map((v) => v.name)).map((n) => `volume ${n}`);
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    found.push(...duplicates((c.volumeMounts ?? []).map((m) => m.mountPath ?? '')).map((p) => `${c.name}: mountPath ${p}`));
  }
  return found;
}

/** The spec without what the apiserver's own admission adds (the service-account token volume and its mounts). */
export function withoutServiceAccountVolume<T extends PodSpecLike>(spec: T): T {
  const strip = (c: Named & { volumeMounts?: Named[] }) => ({ ...c, volumeMounts: (c.volumeMounts ?? []).filter((m) => !SERVICE_ACCOUNT_VOLUME.test(m.name)) });
  return {
    ...spec,
    volumes: (spec.volumes ?? []).filter((v) => !SERVICE_ACCOUNT_VOLUME.test(v.name)),
    containers: (spec.containers ?? []).map(strip),
    ...(spec.initContainers === undefined ? {} : { initContainers: spec.initContainers.map(strip) }),
  };
}
