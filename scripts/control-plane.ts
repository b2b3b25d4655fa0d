// `scripts/controlplane.sh start`: a fresh test control plane on loopback until Ctrl-C, for running
// `podvisor serve --kubeconfig <admin kubeconfig> --register --webhook-url https://127.0.0.1:PORT` against it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../test/support/control-plane.js';

const dir = await mkdtemp(join(tmpdir(), 'podvisor-controlplane-'));
const started = Date.now();
const controlPlane = await startControlPlane({ dir });
process.stdout.write(
  `control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
    `  apiserver:  ${controlPlane.server}\n` +
    `  kubeconfig: ${controlPlane.adminKubeconfig}\n` +
    `  logs:       ${dir}/*.log\n` +
    `Ctrl-C stops it and removes ${dir}\n`,
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () =>
    void controlPlane
      .stop()
      .then(() => rm(dir, { recursive: true, force: true }))
      .then(() => process.exit(0)),
  );
}
