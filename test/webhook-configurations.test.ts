// The webhook configurations podvisor registers in-cluster, as built (the registrar writes exactly these: the
// apiserver stores them in test/e2e/registration.test.ts), and their CEL matchConditions, evaluated with a real CEL
// implementation (@bufbuild/cel) over the fixtures, the way the apiserver evaluates them (object as a map; a missing
// field is an error unless guarded by has()).
import { run } from '@bufbuild/cel';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../src/admission/types.js';
import type { Config } from '../src/config/schema.js';
import { NAMESPACE, SERVICE_NAME, WEBHOOK_NAME } from '../src/k8s/names.js';
import {
  CHANGES_WHAT_RUNS,
  failOpenWarning,
  mutatingWebhookConfiguration,
  OPTED_IN_BY_ANNOTATION,
  optInConditions,
  validatingWebhookConfiguration,
  type WebhookSettings,
} from '../src/k8s/webhook-configurations.js';
import { config, fixture } from './support/harness.js';

const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n').toString('base64');
function settings(c: Config = config(), bundle: string | undefined = caBundle): WebhookSettings {
  return { config: c, caBundle: bundle, validating: true };
}

describe('the in-cluster webhook configurations', () => {
  it('in-cluster: both configurations have the settings the issue lists', () => {
    const mwc = mutatingWebhookConfiguration(settings());
    const vwc = validatingWebhookConfiguration(settings());
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
    const denying = { ...config(), policy: { ...config().policy, default: { ...config().policy.default, privileged: 'deny' as const } } };
    expect(validatingWebhookConfiguration(settings(denying)).webhooks?.[0]?.failurePolicy).toBe('Fail');
    expect(validatingWebhookConfiguration(settings()).webhooks?.[0]?.failurePolicy).toBe('Fail');
    expect(failOpenWarning(denying)).toBeUndefined();
    const switched = { ...denying, webhook: { ...denying.webhook, failurePolicy: { ...denying.webhook.failurePolicy, validating: 'Ignore' as const } } };
    expect(validatingWebhookConfiguration(settings(switched)).webhooks?.[0]?.failurePolicy).toBe('Ignore');
    expect(failOpenWarning(switched)).toBe(
      'webhook.failurePolicy.validating is Ignore while policies cluster-default can deny: whenever podvisor is unreachable, what they forbid is admitted',
    );
    // Ignore with a policy that denies nothing is not fail-open: there is nothing to bypass.
    expect(failOpenWarning(config({ webhook: { failurePolicy: { validating: 'Ignore' } } }))).toBeUndefined();
  });

  it('drops the CEL filter (and the namespace entry) when a cluster default is on, and lets configured namespaces through it', () => {
    const mwc = mutatingWebhookConfiguration(settings(config({ defaults: { lxcfs: true } })));
    expect(mwc.webhooks?.map((w) => w.name)).toEqual([WEBHOOK_NAME.mutate]);
    expect(mwc.webhooks?.[0]?.matchConditions).toBeUndefined();
    const after = mutatingWebhookConfiguration(settings(config({ namespaces: { web: { lxcfs: true } } })));
    expect(after.webhooks?.[0]?.matchConditions?.[0]?.expression.startsWith("request.namespace in ['web'] || (")).toBe(true);
  });
});

/** JSON → CEL input: objects become Maps (CEL maps), numbers ints where whole. */
function cel(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cel);
  if (value !== null && typeof value === 'object') return new Map(Object.entries(value).map(([k, v]) => [k, cel(v)]));
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  return value;
}
const RESOURCES: Record<string, string> = { Pod: 'pods', Deployment: 'deployments', DaemonSet: 'daemonsets', StatefulSet: 'statefulsets', CronJob: 'cronjobs', Job: 'jobs', ReplicaSet: 'replicasets' };

function matches(expression: string, object: KubeObject, namespace = 'web'): unknown {
  const resource = RESOURCES[String(object['kind'])];
  return run(expression, { object: cel(object), request: cel({ resource: { group: '', version: 'v1', resource }, namespace }) } as never);
}
function withoutPodvisorAnnotations(object: KubeObject): KubeObject {
  return JSON.parse(JSON.stringify(object, (key, value) => (key === 'annotations' && value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).filter(([k]) => !k.startsWith('podvisor.io/'))) : value)));
}

describe('matchConditions CEL (opt-in by annotation, per kind)', () => {
  it('sends objects whose annotation is where the pipeline reads it, for every kind', () => {
    expect(matches(OPTED_IN_BY_ANNOTATION, fixture('01-pod-nginx-lxcfs.yaml'))).toBe(true); // Pod: metadata
    expect(matches(OPTED_IN_BY_ANNOTATION, fixture('02-deployment-java-sidecar.yaml'))).toBe(true); // template
    expect(matches(OPTED_IN_BY_ANNOTATION, fixture('09-statefulset-postgres.yaml'))).toBe(true);
    expect(matches(OPTED_IN_BY_ANNOTATION, fixture('10-cronjob-backup.yaml'))).toBe(true); // jobTemplate...template
  });

  it('does not send objects without a podvisor.io annotation, and never errors on missing fields', () => {
    expect(matches(OPTED_IN_BY_ANNOTATION, fixture('05-pod-no-annotations.yaml'))).toBe(false);
    for (const name of ['01-pod-nginx-lxcfs.yaml', '02-deployment-java-sidecar.yaml', '09-statefulset-postgres.yaml', '10-cronjob-backup.yaml']) {
      expect(matches(OPTED_IN_BY_ANNOTATION, withoutPodvisorAnnotations(fixture(name)))).toBe(false);
    }
    // Bare objects: no metadata at all, no template metadata, no jobTemplate.
    expect(matches(OPTED_IN_BY_ANNOTATION, { kind: 'Pod', metadata: { name: 'x' }, spec: {} })).toBe(false);
    expect(matches(OPTED_IN_BY_ANNOTATION, { kind: 'Deployment', metadata: { name: 'x' }, spec: { template: { spec: {} } } })).toBe(false);
    expect(matches(OPTED_IN_BY_ANNOTATION, { kind: 'CronJob', metadata: { name: 'x' }, spec: {} })).toBe(false);
    // The workload's own annotation is the pipeline's fallback, so it counts.
    expect(matches(OPTED_IN_BY_ANNOTATION, { kind: 'DaemonSet', metadata: { name: 'x', annotations: { 'podvisor.io/lxcfs': 'true' } }, spec: { template: { spec: {} } } })).toBe(true);
    // A Deployment annotated only at the CronJob path is not opted in.
    expect(matches(OPTED_IN_BY_ANNOTATION, { kind: 'Deployment', metadata: { name: 'x' }, spec: { jobTemplate: { spec: { template: { metadata: { annotations: { 'podvisor.io/lxcfs': 'true' } } } } } } })).toBe(false);
  });

  it('lets configured namespace defaults through whatever the annotations, and has no condition under a cluster default', () => {
    const [condition] = optInConditions(config({ namespaces: { web: { lxcfs: true } } }));
    const plain = fixture('05-pod-no-annotations.yaml');
    expect(matches(condition!.expression, plain, 'web')).toBe(true);
    expect(matches(condition!.expression, plain, 'other')).toBe(false);
    expect(optInConditions(config({ defaults: { lxcfs: true } }))).toEqual([]);
    expect(optInConditions(config({ defaults: { lxcfs: false } }))).toHaveLength(1);
  });
});

describe('matchConditions CEL of validate.podvisor.io (what changes what runs)', () => {
  const pod = fixture('05-pod-no-annotations.yaml');
  const judged = (request: { operation: string; resource: string; subResource?: string }, object: KubeObject, oldObject: KubeObject | null) =>
    run(CHANGES_WHAT_RUNS, {
      object: cel(object),
      oldObject: oldObject === null ? null : cel(oldObject),
      request: cel({ operation: request.operation, subResource: request.subResource ?? '', resource: { group: '', version: 'v1', resource: request.resource } }),
    } as never);
  const edit = (change: (p: { metadata: Record<string, unknown>; spec: Record<string, unknown> }) => void): KubeObject => {
    const copy = structuredClone(pod) as unknown as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
    change(copy);
    return copy as unknown as KubeObject;
  };

  it('sends every CREATE, every subresource and workload UPDATE', () => {
    expect(judged({ operation: 'CREATE', resource: 'pods' }, pod, null)).toBe(true);
    expect(judged({ operation: 'UPDATE', resource: 'pods', subResource: 'ephemeralcontainers' }, pod, pod)).toBe(true);
    expect(judged({ operation: 'UPDATE', resource: 'deployments' }, fixture('02-deployment-java-sidecar.yaml'), fixture('02-deployment-java-sidecar.yaml'))).toBe(true);
  });

  it('sends a Pod UPDATE that changes the spec or the annotations, and no other', () => {
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, pod, pod)).toBe(false);
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, edit((p) => (p.metadata['finalizers'] = ['x/y'])), pod)).toBe(false);
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, edit((p) => (p.metadata['labels'] = { a: 'b' })), pod)).toBe(false);
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, edit((p) => (p.spec['activeDeadlineSeconds'] = 5)), pod)).toBe(true);
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, edit((p) => (p.metadata['annotations'] = { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' })), pod)).toBe(true);
    const annotated = edit((p) => (p.metadata['annotations'] = { a: '1' }));
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, pod, annotated)).toBe(true);
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, annotated, annotated)).toBe(false);
    expect(judged({ operation: 'UPDATE', resource: 'pods' }, edit((p) => (p.metadata['annotations'] = { a: '2' })), annotated)).toBe(true);
  });
});
