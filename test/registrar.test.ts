import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.js';
import { WEBHOOK_CONFIGURATION_NAME } from '../src/k8s/names.js';
import { createRegistrar } from '../src/k8s/registrar.js';
import type { WebhookSettings } from '../src/k8s/webhook-configurations.js';
import { createLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';
import { config as makeConfig } from './support/harness.js';

const log = createLogger('silent');
const ADM = 'admissionregistration.k8s.io/v1';
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const VWC = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations';
let api: FakeApiServer;

beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());
beforeEach(() => {
  for (const r of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) api.remove(r, '', WEBHOOK_CONFIGURATION_NAME, ADM);
  api.clearRequests();
});

const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n').toString('base64');
function settings(config: Config = makeConfig(), bundle: string | undefined = caBundle): WebhookSettings {
  return { config, caBundle: bundle, validating: true };
}

describe('self-registration of the webhook configurations', () => {
  // Creating, updating (keeping other writers' labels and annotations), the pass with nothing to do, and the kept
  // caBundle of a cert-manager install run against the real kube-apiserver: test/e2e/registration.test.ts and
  // test/e2e/registrar.test.ts. What the registrar writes is built by webhook-configurations.ts (its values:
  // test/webhook-configurations.test.ts). Two replicas racing needs both reads held until both replicas have read,
  // an interleaving the real apiserver cannot be made to produce: it stays on the model.
  it('two replicas racing: the loser gets 409, re-reads and finds nothing left to do', async () => {
    // Hold every GET until both replicas have read, so both decide from the same state.
    let gate: () => void = () => undefined;
    const bothRead = new Promise<void>((resolve) => (gate = resolve));
    let reads = 0;
    const remove = api.route('GET', new RegExp(`^${MWC}/podvisor$`), async () => {
      if (++reads === 2) gate();
      await Promise.race([bothRead, new Promise((r) => setTimeout(r, 2000))]);
      return undefined;
    });
    const a = createRegistrar(api.kubeConfig(), log, { settings: () => ({ ...settings(), validating: false }) });
    const b = createRegistrar(api.kubeConfig(), log, { settings: () => ({ ...settings(), validating: false }) });
    const results = await Promise.all([a.reconcile(), b.reconcile()]);
    expect(results.map((r) => r.mutating).sort()).toEqual(['created', 'unchanged']);
    const creates = api.requestsTo('POST', MWC);
    expect(creates).toHaveLength(2); // both tried; one got AlreadyExists
    expect(api.requestsTo('GET', `${MWC}/podvisor`).length).toBe(3); // the loser re-read

    // Now both want a change at once: one update wins, the other gets Conflict on its stale resourceVersion.
    reads = 0;
    let gate2: () => void = () => undefined;
    const bothRead2 = new Promise<void>((resolve) => (gate2 = resolve));
    remove();
    const remove2 = api.route('GET', new RegExp(`^${MWC}/podvisor$`), async () => {
      if (++reads === 2) gate2();
      await Promise.race([bothRead2, new Promise((r) => setTimeout(r, 2000))]);
      return undefined;
    });
    api.clearRequests();
    const changed = { ...settings(makeConfig({ webhook: { timeoutSeconds: 2 } })), validating: false };
    const c = createRegistrar(api.kubeConfig(), log, { settings: () => changed });
    const d = createRegistrar(api.kubeConfig(), log, { settings: () => changed });
    const updates = await Promise.all([c.reconcile(), d.reconcile()]);
    remove2();
    expect(updates.map((r) => r.mutating).sort()).toEqual(['unchanged', 'updated']);
    const puts = api.requestsTo('PUT', `${MWC}/podvisor`);
    expect(puts).toHaveLength(2);
    expect((puts[0]?.body as MutatingWebhookConfiguration).metadata?.resourceVersion).toBe((puts[1]?.body as MutatingWebhookConfiguration).metadata?.resourceVersion);
    expect(api.requests.some((r) => r.method === 'GET' && r.path === VWC)).toBe(false);
  });
});
