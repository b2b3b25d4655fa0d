import { describe, expect, it } from 'vitest';
import { lxcfs } from '../src/features/lxcfs.js';
import { decideOptIn } from '../src/optin/opt-in.js';
import { config, fixture, run } from './support/harness.js';

describe('opt-in truth table (decideOptIn)', () => {
  const on = { enabled: true, value: 'true' };
  it.each([
    // object, namespace, cluster → decision
    ['true', undefined, undefined, { ...on, source: 'object' }],
    ['TRUE', 'false', 'false', { ...on, source: 'object' }],
    ['Enabled', undefined, undefined, { ...on, source: 'object' }],
    [' true ', undefined, undefined, { ...on, source: 'object' }],
    ['false', 'true', 'true', { enabled: false, reason: 'opted_out' }],
    ['disabled', 'true', undefined, { enabled: false, reason: 'opted_out' }],
    [undefined, 'enabled', 'false', { ...on, source: 'namespace' }],
    [undefined, 'false', 'true', { enabled: false, reason: 'opted_out' }],
    [undefined, undefined, 'true', { ...on, source: 'cluster' }],
    [undefined, undefined, 'false', { enabled: false, reason: 'opted_out' }],
    [undefined, undefined, undefined, { enabled: false, reason: 'not_opted_in' }],
  ] as const)('object=%s namespace=%s cluster=%s', (object, namespace, cluster, expected) => {
    expect(decideOptIn(lxcfs, { object, namespace, cluster })).toEqual(expected);
  });

  it.each(['yes', '1', '', 'ture', 'on'])('an invalid object value %j skips with a warning naming key and value', (value) => {
    const decision = decideOptIn(lxcfs, { object: value, namespace: 'true', cluster: 'true' });
    expect(decision).toEqual({
      enabled: false,
      reason: 'invalid_value',
      warning: `podvisor.io/lxcfs: invalid value ${JSON.stringify(value)}, expected true or false; skipped`,
    });
  });

  it('an invalid namespace label value skips with a warning', () => {
    expect(decideOptIn(lxcfs, { namespace: 'maybe' })).toMatchObject({ enabled: false, reason: 'invalid_value', warning: expect.stringContaining('namespace default') });
  });
});

describe('opt-in through the pipeline', () => {
  it('cluster-wide mode: defaults.lxcfs true injects un-annotated pods, still honours an explicit false', () => {
    const env = { config: config({ defaults: { lxcfs: true } }) };
    expect(run(fixture('05-pod-no-annotations.yaml'), { env }).outcome.injected).toEqual(['lxcfs']);
    const optedOut = fixture('01-pod-nginx-lxcfs.yaml');
    (optedOut['metadata'] as { annotations: Record<string, string> }).annotations['podvisor.io/lxcfs'] = 'false';
    expect(run(optedOut, { env }).outcome).toMatchObject({ patch: [], skip: 'opted_out' });
  });

  it('config namespace default beats the cluster default; the object annotation beats both', () => {
    const env = { config: config({ defaults: { lxcfs: true }, namespaces: { shop: { lxcfs: false } } }) };
    expect(run(fixture('05-pod-no-annotations.yaml'), { env }).outcome.skip).toBe('opted_out');
    const annotated = fixture('05-pod-no-annotations.yaml');
    (annotated['metadata'] as Record<string, unknown>)['annotations'] = { 'podvisor.io/lxcfs': 'true' };
    expect(run(annotated, { env }).outcome.injected).toEqual(['lxcfs']);
  });

  it('a live namespace label (from the namespace cache) opts a namespace in', () => {
    const env = { namespaceLabels: (ns: string) => (ns === 'shop' ? { 'podvisor.io/lxcfs': 'enabled' } : undefined) };
    expect(run(fixture('05-pod-no-annotations.yaml'), { env }).outcome.injected).toEqual(['lxcfs']);
  });

  it('an invalid annotation value skips and warns', () => {
    const pod = fixture('01-pod-nginx-lxcfs.yaml');
    (pod['metadata'] as { annotations: Record<string, string> }).annotations['podvisor.io/lxcfs'] = 'yes please';
    const r = run(pod);
    expect(r.outcome).toMatchObject({ patch: [], skip: 'invalid_value' });
    expect(r.outcome.warnings[0]).toContain('"yes please"');
  });

  it('the pod template annotation wins over the workload annotation', () => {
    const deployment = fixture('02-deployment-java-sidecar.yaml');
    (deployment['metadata'] as Record<string, unknown>)['annotations'] = { 'podvisor.io/lxcfs': 'false' };
    expect(run(deployment).outcome.injected).toEqual(['lxcfs']);
  });
});
