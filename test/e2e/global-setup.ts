// One control plane for the whole end-to-end run, with podvisor's own objects installed as an operator would:
// `kubectl apply -k deploy/overlays/self-managed` (Namespace, ServiceAccount, RBAC, Deployment, ...). No kubelet runs,
// so podvisor's Deployment stays Pending; each test file runs podvisor itself, under that ServiceAccount's token.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { runKubectl, startControlPlane, type ControlPlaneInfo } from '../support/control-plane.js';

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'podvisor-e2e-'));
  const started = Date.now();
  const controlPlane = await startControlPlane({ dir });
  const apply = await runKubectl(controlPlane.adminKubeconfig, ['apply', '-k', 'deploy/overlays/self-managed']);
  if (apply.code !== 0) {
    await controlPlane.stop();
    throw new Error(`kubectl apply -k deploy/overlays/self-managed: ${apply.stderr}`);
  }
  process.stdout.write(`control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${controlPlane.server} (logs: ${dir})\n`);
  const { stop, ...info } = controlPlane;
  project.provide('controlPlane', info);
  return async () => {
    await stop();
    if (process.env['PODVISOR_E2E_KEEP'] === undefined) await rm(dir, { recursive: true, force: true });
  };
}
