import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AdmissionRequest } from '../src/admission/types.js';
import { createEventRecorder, noticeFor, type Notice } from '../src/k8s/events.js';
import { createIntegrationMetrics, type IntegrationMetrics } from '../src/k8s/metrics.js';
import { createLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';
import { fixtureReview } from './support/harness.js';

const log = createLogger('silent');
const EVENTS = '/api/v1/namespaces/web/events';
let api: FakeApiServer;
let metrics: IntegrationMetrics;
beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());
beforeEach(() => {
  api.clearRequests();
  metrics = createIntegrationMetrics(new Registry());
});

const notice = (name: string, message = 'injected lxcfs'): Notice => ({ reason: 'Injected', type: 'Normal', message, involved: { apiVersion: 'v1', kind: 'Pod', name, namespace: 'web' } });
const counted = async (result: string): Promise<number> => (await metrics.events.get()).values.filter((v) => v.labels.result === result).reduce((a, v) => a + v.value, 0);
const podRequest = (): AdmissionRequest => fixtureReview('review-01-pod-create.json').request as unknown as AdmissionRequest;

describe('Events', () => {
  // Writing Events, their fields, the rate limit and the deduplication against the real kube-apiserver:
  // test/e2e/events.test.ts. A slow API server that then fails is what the model answers on demand.
  it('never delays the caller on a slow API, and counts and logs failures instead of throwing', async () => {
    const remove = api.route('POST', EVENTS, async () => {
      await new Promise((r) => setTimeout(r, 300));
      return { status: 500, body: api.status(500, 'InternalError', 'etcd timeout') };
    });
    const recorder = createEventRecorder(api.kubeConfig(), log, { metrics });
    const started = process.hrtime.bigint();
    recorder.record(notice('a'));
    recorder.record(notice('b'));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeLessThan(20);
    await recorder.flush();
    remove();
    expect(await counted('failed')).toBe(2);
  });

  it('chooses the owning object and the reason from the review', () => {
    const request = podRequest();
    const injected = noticeFor(request, { uid: request.uid, allowed: true, patch: 'x' }, { injected: ['lxcfs'], warnings: [], patch: [{ op: 'add', path: '/metadata/annotations/podvisor.io~1status', value: JSON.stringify({ version: 1, features: ['lxcfs'], containers: ['nginx'] }) }] });
    expect(injected).toMatchObject({ reason: 'Injected', type: 'Normal', message: 'injected lxcfs into container nginx', involved: { kind: 'Pod', name: 'web-nginx', namespace: 'web' } });
    // A Pod from generateName has no name: the Event goes on its controller.
    const generated = podRequest();
    const meta = (generated.object as { metadata: Record<string, unknown> }).metadata;
    delete meta['name'];
    delete generated.name;
    meta['generateName'] = 'web-5d8f7-';
    meta['ownerReferences'] = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f7', uid: 'u-1', controller: true }];
    expect(noticeFor(generated, { uid: 'x', allowed: true }, { injected: ['lxcfs'], warnings: [], patch: [] })?.involved).toEqual({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-5d8f7', namespace: 'web', uid: 'u-1' });
    // Denied carries the policy message; dry runs and unchanged re-invocations get nothing.
    expect(noticeFor(request, { uid: 'x', allowed: false, status: { code: 403, message: 'spec.containers[0].securityContext.privileged: forbidden by policy p' } }, undefined)).toMatchObject({ reason: 'Denied', type: 'Warning', message: 'spec.containers[0].securityContext.privileged: forbidden by policy p' });
    expect(noticeFor({ ...request, dryRun: true }, { uid: 'x', allowed: true }, { injected: ['lxcfs'], warnings: [], patch: [] })).toBeUndefined();
    expect(noticeFor(request, { uid: 'x', allowed: true }, { injected: [], warnings: [], patch: [] })).toBeUndefined();
    // Skipped only when the object asked for podvisor.
    expect(noticeFor(request, { uid: 'x', allowed: true }, { injected: [], skip: 'windows', warnings: [], patch: [] })).toMatchObject({ reason: 'Skipped', type: 'Warning', message: 'not injected (windows)' });
    expect(noticeFor(request, { uid: 'x', allowed: true }, { injected: [], skip: 'not_opted_in', warnings: [], patch: [] })).toBeUndefined();
  });
});
