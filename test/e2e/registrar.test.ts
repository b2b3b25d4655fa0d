// The registrar (src/k8s/registrar.ts) in this process with podvisor's own ServiceAccount token, against the real
// kube-apiserver, for what the running podvisor of test/e2e/registration.test.ts is never asked to do: its settings
// change while someone else's labels and annotations are on the configuration, and a cert-manager install (no
// caBundle of its own). Only the mutating configuration (failurePolicy Ignore) is written, for the in-cluster Service,
// so no admission in the cluster depends on a podvisor that is not running. Two replicas racing needs an interleaving
// the apiserver cannot be made to produce and stays in test/registrar.test.ts.
import type { KubeConfig } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRegistrar } from '../../src/k8s/registrar.js';
import type { WebhookSettings } from '../../src/k8s/webhook-configurations.js';
import { createLogger } from '../../src/observability/logger.js';
import { generateServingCertificate } from '../../src/server/certificate-authority.js';
import { auditedCalls } from '../support/audit-log.js';
import { apiRequest, loadKubeConfig, serviceAccountKubeconfig } from '../support/control-plane.js';
import { config } from '../support/harness.js';

const info = inject('controlPlane');
const log = createLogger('silent');
const MUTATING = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor';
const VALIDATING = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor';
let admin: KubeConfig;
let podvisorToken: KubeConfig;
let caBundle: string;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  podvisorToken = loadKubeConfig(await serviceAccountKubeconfig(info, 'podvisor-system', 'podvisor'));
  caBundle = Buffer.from((await generateServingCertificate('podvisor', 'podvisor-system')).ca).toString('base64');
  // Earlier files' podvisor registered itself; it is gone, and its validating configuration (Fail) would refuse Pods.
  for (const path of [MUTATING, VALIDATING]) await apiRequest(admin, 'DELETE', path);
});
afterAll(async () => {
  await apiRequest(admin, 'DELETE', MUTATING);
});

function settings(overrides: unknown = {}, bundle: string | undefined = caBundle): WebhookSettings {
  return { config: config(overrides), caBundle: bundle, validating: false };
}

async function live(): Promise<MutatingWebhookConfiguration & { metadata: { resourceVersion: string } }> {
  const answer = await apiRequest(admin, 'GET', MUTATING);
  expect(answer.status).toBe(200);
  return answer.body as MutatingWebhookConfiguration & { metadata: { resourceVersion: string } };
}

/** podvisor's writes (create, update) of webhook configurations since `since` (audit log). */
async function writes(since: string): Promise<string[]> {
  return (await auditedCalls(info, since)).filter((c) => c.objectRef?.resource?.endsWith('webhookconfigurations') && c.verb !== 'get').map((c) => `${c.verb} ${c.objectRef!.resource}/${c.objectRef!.name ?? ''}`);
}

describe('the registrar against the kube-apiserver (podvisor\'s token)', () => {
  it('updates only what changed, keeping the labels and annotations other writers put on the configuration', async () => {
    expect(await createRegistrar(podvisorToken, log, { settings: () => settings() }).reconcile()).toEqual({ mutating: 'created' });
    const created = await live();
    // Someone else's label, and cert-manager's annotation.
    created.metadata.labels = { ...created.metadata.labels, team: 'x' };
    created.metadata.annotations = { 'cert-manager.io/inject-ca-from': 'podvisor-system/podvisor' };
    expect((await apiRequest(admin, 'PUT', MUTATING, created)).status).toBe(200);
    const edited = (await live()).metadata.resourceVersion;

    const since = new Date().toISOString();
    const changed = createRegistrar(podvisorToken, log, { settings: () => settings({ webhook: { timeoutSeconds: 3 } }) });
    expect(await changed.reconcile()).toEqual({ mutating: 'updated' });
    const updated = await live();
    expect(updated.webhooks?.map((w) => w.timeoutSeconds)).toEqual(created.webhooks?.map(() => 3));
    expect(updated.metadata.labels).toMatchObject({ team: 'x', 'app.kubernetes.io/managed-by': 'podvisor' });
    expect(updated.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': 'podvisor-system/podvisor' });
    expect(updated.metadata.resourceVersion).not.toBe(edited);
    expect(await writes(since)).toEqual(['update mutatingwebhookconfigurations/podvisor']);
    // Settled: the next pass reads and writes nothing.
    expect(await changed.reconcile()).toEqual({ mutating: 'unchanged' });
    expect((await live()).metadata.resourceVersion).toBe(updated.metadata.resourceVersion);
  });

  it('without a caBundle of its own (cert-manager mode) it keeps the one in place: nothing to write, or an update that keeps it', async () => {
    const before = await live();
    const since = new Date().toISOString();
    const certManager = createRegistrar(podvisorToken, log, { settings: () => settings({ webhook: { timeoutSeconds: 3 } }, undefined) });
    expect(await certManager.reconcile()).toEqual({ mutating: 'unchanged' });
    expect(await writes(since)).toEqual([]);
    const after = await live();
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    for (const w of after.webhooks ?? []) expect(w.clientConfig.caBundle).toBe(caBundle);

    const retimed = createRegistrar(podvisorToken, log, { settings: () => settings({ webhook: { timeoutSeconds: 4 } }, undefined) });
    expect(await retimed.reconcile()).toEqual({ mutating: 'updated' });
    const updated = await live();
    expect(updated.webhooks?.every((w) => w.timeoutSeconds === 4 && w.clientConfig.caBundle === caBundle)).toBe(true);
  });
});
