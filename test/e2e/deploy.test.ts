// The manifests in deploy/ against the real kube-apiserver: `kubectl apply --dry-run=server` of every overlay and of
// the base with each component, rendered by the kustomize inside the same kubectl release. The apiserver validates
// every object against its OpenAPI schema (unknown fields refused: --validate=strict) and runs admission.
//
// cert-manager's Issuer and Certificate have no definition in a bare cluster. Minimal CRDs for them are installed
// first (cert-manager.io/v1, schema open: `x-kubernetes-preserve-unknown-fields`), so the overlay's other objects are
// checked for real; the Issuer and Certificate objects themselves are then only checked to be well-formed objects of
// those kinds, not against cert-manager's own schema (that needs cert-manager installed).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { runKubectl } from '../support/control-plane.js';

const info = inject('controlPlane');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OVERLAYS = ['deploy/overlays/self-managed', 'deploy/overlays/cert-manager'];
const COMPONENTS = ['deploy/components/lxcfs', 'deploy/components/fuse-device-plugin', 'deploy/components/apparmor'];

function certManagerCrd(kind: string, plural: string): string {
  return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: ${plural}.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: ${kind}, plural: ${plural}, singular: ${kind.toLowerCase()}, listKind: ${kind}List}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`;
}

beforeAll(async () => {
  // Earlier files' podvisor registered itself in dev mode (clientConfig.url); an apply of the cert-manager overlay's
  // static configurations (clientConfig.service) over those would be a merge of both, which the apiserver refuses.
  for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
    const deleted = await runKubectl(info.adminKubeconfig, ['delete', '--ignore-not-found', kind, 'podvisor']);
    expect(deleted.code, deleted.stderr).toBe(0);
  }
  const crds = await runKubectl(info.adminKubeconfig, ['apply', '-f', '-'], { input: `${certManagerCrd('Issuer', 'issuers')}---\n${certManagerCrd('Certificate', 'certificates')}` });
  expect(crds.code, crds.stderr).toBe(0);
  const established = await runKubectl(info.adminKubeconfig, ['wait', '--for=condition=Established', '--timeout=30s', 'crd/issuers.cert-manager.io', 'crd/certificates.cert-manager.io']);
  expect(established.code, established.stderr).toBe(0);
});

async function dryRun(directory: string): Promise<string> {
  const rendered = await runKubectl(info.adminKubeconfig, ['kustomize', directory]);
  expect(rendered.code, `kubectl kustomize ${directory}: ${rendered.stderr}`).toBe(0);
  const applied = await runKubectl(info.adminKubeconfig, ['apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: rendered.stdout });
  expect(applied.code, `kubectl apply --dry-run=server (${directory}): ${applied.stderr}`).toBe(0);
  expect(applied.stderr, 'no warnings from the apiserver').toBe('');
  return applied.stdout;
}

describe('kubectl apply --dry-run=server of deploy/', () => {
  for (const overlay of OVERLAYS) {
    it(overlay, async () => {
      const out = await dryRun(overlay);
      expect(out).toContain('deployment.apps/podvisor');
    });
  }

  for (const component of COMPONENTS) {
    it(`${component} on its own (kubectl apply -k, as its kustomization.yaml says)`, async () => {
      const out = await dryRun(component);
      expect(out).toMatch(/daemonset\.apps\/\S+ (created|configured|unchanged) \(server dry run\)/);
    });

    it(`${component} (with the base, as an overlay includes it)`, async () => {
      const dir = await mkdtemp(join(ROOT, '.controlplane', 'kustomize-'));
      await writeFile(
        join(dir, 'kustomization.yaml'),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${relative(dir, join(ROOT, 'deploy/base'))}]\ncomponents: [${relative(dir, join(ROOT, component))}]\n`,
      );
      const out = await dryRun(dir);
      expect(out).toMatch(/daemonset\.apps\/\S+ (created|configured|unchanged) \(server dry run\)/);
    });
  }
});
