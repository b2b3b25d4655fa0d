import type { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.js';
import { NAMESPACE, SERVICE_NAME, WEBHOOK_CONFIGURATION_NAME, WEBHOOK_NAME } from '../src/k8s/names.js';
import { failOpenWarning, validatingWebhookConfiguration } from '../src/k8s/webhook-configurations.js';
import { createRegistrar } from '../src/k8s/registrar.js';
import { OPTED_IN_BY_ANNOTATION, type WebhookSettings } from '../src/k8s/webhook-configurations.js';
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
const writes = () => api.requests.filter((r) => r.method !== 'GET');

describe('self-registration of the webhook configurations', () => {
  it('creates both configurations with the settings the issue lists', async () => {
    const registrar = createRegistrar(api.kubeConfig(), log, { settings: () => settings() });
    expect(await registrar.reconcile()).toEqual({ mutating: 'created', validating: 'created' });
    const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
    const vwc = api.get('validatingwebhookconfigurations', '', 'podvisor', ADM) as ValidatingWebhookConfiguration;
    const names = mwc.webhooks?.map((w) => w.name) ?? [];
    expect(names[0]).toBe(WEBHOOK_NAME.mutate);
    expect(names).toContain(WEBHOOK_NAME.mutateNamespace);
    for (const w of mwc.webhooks ?? []) {
      expect(w.admissionReviewVersions).toEqual(['v1']);
      expect(w.sideEffects).toBe('NoneOnDryRun');
      expect(w.timeoutSeconds).toBe(5);
      expect(w.failurePolicy).toBe('Ignore');
      expect(w.reinvocationPolicy).toBe('IfNeeded');
      expect(w.matchPolicy).toBe('Equivalent');
      expect(w.clientConfig).toEqual({ service: { name: SERVICE_NAME, namespace: NAMESPACE, path: '/mutate', port: 443 }, caBundle });
      const excluded = w.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name');
      expect(excluded?.operator).toBe('NotIn');
      expect(excluded?.values).toEqual(expect.arrayContaining(['kube-system', 'podvisor-system', 'kube-node-lease']));
      expect(w.namespaceSelector?.matchExpressions).toContainEqual({ key: 'podvisor.io/exclude', operator: 'NotIn', values: ['true'] });
      expect(w.objectSelector).toEqual({ matchExpressions: [{ key: 'podvisor.io/exclude', operator: 'NotIn', values: ['true'] }] });
      expect(w.rules).toEqual([
        { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
        { apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['daemonsets', 'deployments', 'statefulsets', 'replicasets'], scope: 'Namespaced' },
        // A Job's template is immutable: its UPDATE is never mutated.
        { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['jobs'], scope: 'Namespaced' },
        { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['cronjobs'], scope: 'Namespaced' },
      ]);
    }
    // The annotation entry is filtered by CEL; the namespace entry by the namespace's opt-in label.
    const byAnnotation = mwc.webhooks?.[0];
    expect(byAnnotation?.matchConditions).toEqual([{ name: 'opted-in', expression: OPTED_IN_BY_ANNOTATION }]);
    expect(OPTED_IN_BY_ANNOTATION).toContain('object.metadata.annotations');
    expect(OPTED_IN_BY_ANNOTATION).toContain('object.spec.template.metadata.annotations');
    expect(OPTED_IN_BY_ANNOTATION).toContain('object.spec.jobTemplate.spec.template.metadata.annotations');
    const byLabel = mwc.webhooks?.find((w) => w.name === WEBHOOK_NAME.mutateNamespace);
    expect(byLabel?.matchConditions).toBeUndefined();
    expect(byLabel?.namespaceSelector?.matchExpressions).toContainEqual({ key: 'podvisor.io/lxcfs', operator: 'Exists' });

    const v = vwc.webhooks?.[0];
    expect(vwc.webhooks?.map((w) => w.name)).toEqual([WEBHOOK_NAME.validate]);
    // Fail even while the policy denies nothing: a denying policy added to the ConfigMap later is never fail-open.
    expect(v?.failurePolicy).toBe('Fail');
    expect(v?.clientConfig.service?.path).toBe('/validate');
    expect(v?.rules).toEqual([
      { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' },
      { apiGroups: [''], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'], scope: 'Namespaced' },
      { apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['daemonsets', 'deployments', 'statefulsets', 'replicasets'], scope: 'Namespaced' },
      { apiGroups: ['batch'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['jobs', 'cronjobs'], scope: 'Namespaced' },
    ]);
    // Scoped by the policy alone: the exempt namespaces by their immutable name label, and nothing else.
    expect(v?.namespaceSelector).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'podvisor-system'] }] });
    expect(v?.objectSelector).toBeUndefined();
    expect(v?.sideEffects).toBe('NoneOnDryRun');
    expect(v?.admissionReviewVersions).toEqual(['v1']);
  });

  it('the validating webhook has the configured failurePolicy whatever the policy; Ignore is the emergency switch', () => {
    const denying = { ...makeConfig(), policy: { ...makeConfig().policy, default: { ...makeConfig().policy.default, privileged: 'deny' as const } } };
    expect(validatingWebhookConfiguration(settings(denying)).webhooks?.[0]?.failurePolicy).toBe('Fail');
    expect(validatingWebhookConfiguration(settings()).webhooks?.[0]?.failurePolicy).toBe('Fail');
    expect(failOpenWarning(denying)).toBeUndefined();
    const switched = { ...denying, webhook: { ...denying.webhook, failurePolicy: { ...denying.webhook.failurePolicy, validating: 'Ignore' as const } } };
    expect(validatingWebhookConfiguration(settings(switched)).webhooks?.[0]?.failurePolicy).toBe('Ignore');
    expect(failOpenWarning(switched)).toBe(
      'webhook.failurePolicy.validating is Ignore while policies cluster-default can deny: whenever podvisor is unreachable, what they forbid is admitted',
    );
    // Ignore with a policy that denies nothing is not fail-open: there is nothing to bypass.
    expect(failOpenWarning(makeConfig({ webhook: { failurePolicy: { validating: 'Ignore' } } }))).toBeUndefined();
  });

  it('is idempotent: a second reconcile reads and writes nothing', async () => {
    const registrar = createRegistrar(api.kubeConfig(), log, { settings: () => settings() });
    await registrar.reconcile();
    const rv = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM)?.metadata?.['resourceVersion'];
    api.clearRequests();
    expect(await registrar.reconcile()).toEqual({ mutating: 'unchanged', validating: 'unchanged' });
    expect(writes()).toEqual([]);
    expect(api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM)?.metadata?.['resourceVersion']).toBe(rv);
  });

  it('updates only what changed, with the resourceVersion it read, and keeps foreign labels', async () => {
    const registrar = createRegistrar(api.kubeConfig(), log, { settings: () => settings() });
    await registrar.reconcile();
    const live = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM)!;
    api.put('mutatingwebhookconfigurations', { ...live, metadata: { ...live.metadata, labels: { ...live.metadata?.['labels'], team: 'x' } } }, ADM);
    api.clearRequests();
    const changed = makeConfig({ webhook: { timeoutSeconds: 3, failurePolicy: { validating: 'Ignore' } } });
    const updated = createRegistrar(api.kubeConfig(), log, { settings: () => settings(changed) });
    expect(await updated.reconcile()).toEqual({ mutating: 'updated', validating: 'updated' });
    const put = api.requestsTo('PUT', `${MWC}/podvisor`)[0]?.body as MutatingWebhookConfiguration;
    expect(put.metadata?.resourceVersion).toBeDefined();
    const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
    expect(mwc.webhooks?.every((w) => w.timeoutSeconds === 3)).toBe(true);
    expect(mwc.metadata?.labels?.['team']).toBe('x');
    expect((api.get('validatingwebhookconfigurations', '', 'podvisor', ADM) as ValidatingWebhookConfiguration).webhooks?.[0]?.failurePolicy).toBe('Ignore');
  });

  it('drops the CEL filter when a cluster default is on, and lets configured namespaces through it', async () => {
    const on = createRegistrar(api.kubeConfig(), log, { settings: () => settings(makeConfig({ defaults: { lxcfs: true } })) });
    await on.reconcile();
    const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
    expect(mwc.webhooks?.map((w) => w.name)).toEqual([WEBHOOK_NAME.mutate]);
    expect(mwc.webhooks?.[0]?.matchConditions).toBeUndefined();
    const ns = createRegistrar(api.kubeConfig(), log, { settings: () => settings(makeConfig({ namespaces: { web: { lxcfs: true } } })) });
    await ns.reconcile();
    const after = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
    expect(after.webhooks?.[0]?.matchConditions?.[0]?.expression.startsWith("request.namespace in ['web'] || (")).toBe(true);
  });

  it('keeps the caBundle cainjector wrote when podvisor has none (cert-manager mode)', async () => {
    await createRegistrar(api.kubeConfig(), log, { settings: () => settings() }).reconcile();
    api.clearRequests();
    const results = await createRegistrar(api.kubeConfig(), log, { settings: () => settings(makeConfig(), undefined) }).reconcile();
    expect(results).toEqual({ mutating: 'unchanged', validating: 'unchanged' });
    expect(writes()).toEqual([]);
  });

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
