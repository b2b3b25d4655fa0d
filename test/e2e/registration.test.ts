// Self-registration against the real kube-apiserver: podvisor (its own ServiceAccount token, shipped RBAC) creates
// both configurations with the in-cluster names, rules, selectors, CEL matchConditions and failure policies (with
// `--webhook-url` as the only difference), the apiserver accepts and compiles them, a pass with nothing to do writes
// nothing, and an edit or a deletion by someone else is repaired at the next check.
import { X509Certificate } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { containsDesired } from '../../src/k8s/registrar.js';
import { mutatingWebhookConfiguration, parseWebhookUrl, validatingWebhookConfiguration } from '../../src/k8s/webhook-configurations.js';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { eventually } from '../support/cluster-objects.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const MUTATING = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor';
const VALIDATING = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  // Start from nothing: an earlier file's podvisor registered the same names.
  await apiRequest(admin, 'DELETE', MUTATING);
  await apiRequest(admin, 'DELETE', VALIDATING);
  podvisor = await startPodvisorOnCluster(info, { config: { certificates: { checkIntervalSeconds: 1 } } });
});
afterAll(async () => {
  await podvisor?.stop();
});

async function live<T>(path: string): Promise<T & { metadata: { resourceVersion: string } }> {
  const answer = await apiRequest(admin, 'GET', path);
  expect(answer.status).toBe(200);
  return answer.body as T & { metadata: { resourceVersion: string } };
}

/** What podvisor's code says the configurations are, for its config, URL and the caBundle it registered. */
async function desired(caBundle: string): Promise<{ mutating: MutatingWebhookConfiguration; validating: ValidatingWebhookConfiguration }> {
  const settings = { config: await loadConfig(podvisor.configFile), caBundle, validating: true, webhookUrl: parseWebhookUrl(podvisor.url) };
  return { mutating: mutatingWebhookConfiguration(settings), validating: validatingWebhookConfiguration(settings) };
}

async function registrationCount(result: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${podvisor.process.opsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('podvisor_webhook_registrations_total{') && l.includes('configuration="mutating"') && l.includes(`result="${result}"`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('self-registration against the kube-apiserver', () => {
  it('creates both configurations exactly as built in-cluster, calling the --webhook-url', async () => {
    const mutating = await live<MutatingWebhookConfiguration>(MUTATING);
    const validating = await live<ValidatingWebhookConfiguration>(VALIDATING);
    const want = await desired(mutating.webhooks![0]!.clientConfig.caBundle!);
    expect(containsDesired(mutating.webhooks, want.mutating.webhooks)).toBe(true);
    expect(containsDesired(validating.webhooks, want.validating.webhooks)).toBe(true);
    expect(mutating.webhooks!.map((w) => w.name)).toEqual(want.mutating.webhooks!.map((w) => w.name));
    for (const w of [...mutating.webhooks!, ...validating.webhooks!]) {
      expect(w.clientConfig.service).toBeUndefined();
      expect(w.clientConfig.url!.startsWith(`${podvisor.url}/`)).toBe(true);
    }
    expect(mutating.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'podvisor' });
  });

  it('the caBundle is the CA of the shared TLS Secret, whose serving certificate names the --webhook-url host', async () => {
    const secret = await live<{ data: Record<string, string> }>('/api/v1/namespaces/podvisor-system/secrets/podvisor-tls');
    expect(Object.keys(secret.data).sort()).toEqual(expect.arrayContaining(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']));
    const ca = Buffer.from(secret.data['ca.crt']!, 'base64').toString('utf8');
    const mutating = await live<MutatingWebhookConfiguration>(MUTATING);
    for (const w of mutating.webhooks!) expect(Buffer.from(w.clientConfig.caBundle!, 'base64').toString('utf8')).toContain(ca.trim());
    const leaf = new X509Certificate(Buffer.from(secret.data['tls.crt']!, 'base64').toString('utf8'));
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leaf.checkHost('podvisor.podvisor-system.svc')).toBe('podvisor.podvisor-system.svc');
  });

  it('the apiserver compiled the CEL matchConditions (and refuses a broken expression, so it does check)', async () => {
    const mutating = await live<MutatingWebhookConfiguration>(MUTATING);
    const conditions = mutating.webhooks![0]!.matchConditions ?? [];
    expect(conditions.map((c) => c.name)).toEqual(['opted-in']);
    const broken = structuredClone(mutating);
    broken.webhooks![0]!.matchConditions = [{ name: 'opted-in', expression: 'object.metadata.annotations.exists(' }];
    const refused = await apiRequest(admin, 'PUT', MUTATING, broken);
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toContain('compilation failed');
  });

  it('a pass with nothing to change writes nothing (same resourceVersion)', async () => {
    const before = [(await live(MUTATING)).metadata.resourceVersion, (await live(VALIDATING)).metadata.resourceVersion];
    const unchanged = await registrationCount('unchanged');
    await eventually('two more registration passes', async () => ((await registrationCount('unchanged')) >= unchanged + 2 ? true : undefined), 15_000);
    expect([(await live(MUTATING)).metadata.resourceVersion, (await live(VALIDATING)).metadata.resourceVersion]).toEqual(before);
  });

  it('repairs an edited configuration and recreates a deleted one at the next check', async () => {
    const mutating = await live<MutatingWebhookConfiguration>(MUTATING);
    const edited = structuredClone(mutating);
    edited.webhooks![0]!.failurePolicy = 'Fail';
    edited.webhooks![0]!.namespaceSelector = {};
    edited.webhooks!.pop();
    const put = await apiRequest(admin, 'PUT', MUTATING, edited);
    expect(put.status).toBe(200);
    const deleted = await apiRequest(admin, 'DELETE', VALIDATING);
    expect(deleted.status).toBe(200);

    const want = await desired(mutating.webhooks![0]!.clientConfig.caBundle!);
    await eventually('the mutating configuration is repaired', async () => (containsDesired((await live<MutatingWebhookConfiguration>(MUTATING)).webhooks, want.mutating.webhooks) ? true : undefined), 15_000);
    await eventually('the validating configuration is recreated', async () => {
      const answer = await apiRequest(admin, 'GET', VALIDATING);
      return answer.status === 200 && containsDesired((answer.body as ValidatingWebhookConfiguration).webhooks, want.validating.webhooks) ? true : undefined;
    }, 15_000);
    expect(podvisor.process.logs.some((l) => l.msg === 'webhook configuration updated')).toBe(true);
  });
});
