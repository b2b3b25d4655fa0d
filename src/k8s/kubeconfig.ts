import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeConfigSource {
  readonly kubeConfig: KubeConfig;
  /** 'flag' (--kubeconfig), 'env' (KUBECONFIG), or 'in-cluster' (the pod's service account). */
  readonly origin: 'flag' | 'env' | 'in-cluster';
}

/**
 * The cluster to talk to, or undefined when there is none: no `--kubeconfig`, no `KUBECONFIG` and not in a pod. Never
 * falls back to ~/.kube/config or http://localhost:8080 (client-node's loadFromDefault does), so `podvisor serve` on a
 * laptop stays offline unless asked.
 */
export function findKubeConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, tokenFile = SERVICE_ACCOUNT_TOKEN): KubeConfigSource | undefined {
  const kubeConfig = new KubeConfig();
  if (flag !== undefined) {
    kubeConfig.loadFromFile(flag);
    return { kubeConfig, origin: 'flag' };
  }
  if (env['KUBECONFIG'] !== undefined && env['KUBECONFIG'] !== '') {
    // Merges ':'-separated files, like kubectl.
    kubeConfig.loadFromDefault();
    return { kubeConfig, origin: 'env' };
  }
  if (env['KUBERNETES_SERVICE_HOST'] !== undefined && existsSync(tokenFile)) {
    // The bound token is re-read from the file, so token rotation needs nothing from podvisor.
    kubeConfig.loadFromCluster();
    return { kubeConfig, origin: 'in-cluster' };
  }
  return undefined;
}
