// The CEL matchConditions podvisor registers, evaluated with a real CEL implementation (@bufbuild/cel) over the
// fixtures, the way the apiserver evaluates them (object as a map; a missing field is an error unless guarded by has()).
import { run } from '@bufbuild/cel';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../src/admission/types.js';
import { CHANGES_WHAT_RUNS, OPTED_IN_BY_ANNOTATION, optInConditions } from '../src/k8s/webhook-configurations.js';
import { config, fixture } from './support/harness.js';

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
