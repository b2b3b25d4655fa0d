import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jsonpatch from 'fast-json-patch';
import { fixtureReview, violations } from './support/harness.js';
import { startTestServer, type TestServer } from './support/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.close();
});

function review(request: Record<string, unknown>) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}
const podRequest = (): Record<string, unknown> => fixtureReview('review-01-pod-create.json').request;

describe('POST /mutate over HTTPS (client verifies the generated CA)', () => {
  it('injects LXCFS into the review-01 Pod: uid echoed, base64 JSONPatch that the rules accept', async () => {
    const body = fixtureReview('review-01-pod-create.json');
    const reply = await t.post('/mutate', body);
    expect(reply.status).toBe(200);
    const answer = reply.json();
    expect(answer).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: body.request['uid'], allowed: true, patchType: 'JSONPatch' } });
    const patch = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString());
    const object = body.request['object'] as Record<string, unknown>;
    const result = jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument;
    expect(violations(result)).toEqual([]);
    const spec = result['spec'] as { volumes: { name: string }[]; containers: { volumeMounts: { name: string }[] }[] };
    expect(spec.volumes.map((v) => v.name)).toContain('kube-api-access-9tq4v');
    expect(spec.volumes.filter((v) => v.name.startsWith('podvisor-lxcfs-'))).toHaveLength(8);
    expect(spec.containers[0]!.volumeMounts.filter((m) => m.name.startsWith('podvisor-lxcfs-'))).toHaveLength(8);
    // Re-invocation on the output: allowed, no patch, no patchType.
    const again = await t.post('/mutate', review({ ...body.request, object: result }));
    expect(again.json().response).toEqual({ uid: body.request['uid'], allowed: true });
  });

  it('kinds and operations podvisor does not handle: allowed, no patch', async () => {
    const service: Record<string, unknown> = { ...podRequest(), kind: { group: '', version: 'v1', kind: 'Service' }, object: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } } };
    expect((await t.post('/mutate', review(service))).json().response).toEqual({ uid: service['uid'], allowed: true });
    const remove: Record<string, unknown> = { ...podRequest(), operation: 'DELETE', object: null };
    expect((await t.post('/mutate', review(remove))).json().response).toEqual({ uid: remove['uid'], allowed: true });
    const update: Record<string, unknown> = { ...podRequest(), operation: 'UPDATE' };
    expect((await t.post('/mutate', review(update))).json().response).toEqual({ uid: update['uid'], allowed: true });
  });

  it('warnings are readable `field: message` strings of at most 120 characters', async () => {
    const request = podRequest();
    const object = request['object'] as { metadata: { annotations: Record<string, string> } };
    object.metadata.annotations['podvisor.io/containers'] = 'nginx,' + 'x'.repeat(200);
    const answer = (await t.post('/mutate', review(request))).json();
    expect(answer.response.warnings.length).toBeGreaterThan(0);
    for (const warning of answer.response.warnings) {
      expect(warning.length).toBeLessThanOrEqual(120);
      expect(warning).toMatch(/^[\w./[\]-]+: /);
    }
  });

  const valid = () => review(podRequest());
  const without = (key: string) => {
    const r = podRequest();
    delete r[key];
    return review(r);
  };
  const withRequest = (patch: Record<string, unknown>) => review({ ...podRequest(), ...patch });
  const malformed: [string, string | object, RegExp][] = [
    ['not JSON', '{"apiVersion": ', /body: not valid JSON/],
    ['empty body', '', /not valid JSON|body: expected an AdmissionReview object, got nothing/],
    ['a JSON array', '[]', /body: expected an AdmissionReview object, got an array/],
    ['a JSON string', '"AdmissionReview"', /body: expected an AdmissionReview object, got a string/],
    ['JSON null', 'null', /body: expected an AdmissionReview object, got null/],
    ['v1beta1 apiVersion', { ...valid(), apiVersion: 'admission.k8s.io/v1beta1' }, /apiVersion: expected "admission.k8s.io\/v1", got "admission.k8s.io\/v1beta1"/],
    ['no apiVersion', { kind: 'AdmissionReview', request: podRequest() }, /apiVersion: expected "admission.k8s.io\/v1", got nothing/],
    ['wrong kind', { ...valid(), kind: 'ConversionReview' }, /kind: expected "AdmissionReview", got "ConversionReview"/],
    ['no request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request: expected an object, got nothing/],
    ['request is an array', { ...valid(), request: [] }, /request: expected an object, got an array/],
    ['no uid', without('uid'), /request.uid: expected a string, got nothing/],
    ['empty uid', withRequest({ uid: '' }), /request.uid: must not be empty/],
    ['numeric uid', withRequest({ uid: 42 }), /request.uid: expected a string, got a number/],
    ['no kind', without('kind'), /request.kind: expected an object, got nothing/],
    ['kind without kind', withRequest({ kind: { group: '', version: 'v1' } }), /request.kind.kind: expected a string/],
    ['no resource', without('resource'), /request.resource: expected an object/],
    ['no operation', without('operation'), /request.operation: expected a string, got nothing/],
    ['unknown operation', withRequest({ operation: 'PATCH' }), /request.operation: expected one of CREATE, UPDATE, DELETE, CONNECT, got "PATCH"/],
    ['CREATE without object', without('object'), /request.object: expected the CREATE object, got nothing/],
    ['UPDATE with a null object', withRequest({ operation: 'UPDATE', object: null }), /request.object: expected the UPDATE object, got null/],
    ['object is a string', withRequest({ object: 'pod' }), /request.object: expected the CREATE object, got a string/],
    ['numeric namespace', withRequest({ namespace: 7 }), /request.namespace: expected a string, got a number/],
    ['subResource is an object', withRequest({ subResource: {} }), /request.subResource: expected a string, got a object/],
  ];
  it.each(malformed)('%s → HTTP 400 with a JSON error naming what is wrong', async (_name, body, message) => {
    const reply = await t.post('/mutate', body);
    expect(reply.status).toBe(400);
    expect(reply.json().message).toMatch(message);
  });

  it('a body that is not JSON, sent as text/plain, is a 400 too', async () => {
    const reply = await t.post('/mutate', 'hello', { 'content-type': 'text/plain' });
    expect(reply.status).toBe(400);
    expect(reply.json().message).toMatch(/not valid JSON/);
  });

  it('an oversized body (over the 4 MiB limit: the apiserver\'s 3 MiB cap and the envelope) → 413 with a message', async () => {
    const reply = await t.post('/mutate', JSON.stringify({ pad: 'x'.repeat(8 * 1024 * 1024 + 1) }));
    expect(reply.status).toBe(413);
    expect(reply.json().message).toMatch(/too large/i);
  });

  it('a 3 MiB review (the apiserver\'s own cap) is answered', async () => {
    const request = podRequest();
    (request['object'] as { metadata: { annotations: Record<string, string> } }).metadata.annotations['example.com/blob'] = 'x'.repeat(3 * 1024 * 1024);
    const reply = await t.post('/mutate', review(request));
    expect(reply.status).toBe(200);
    expect(reply.json().response.patchType).toBe('JSONPatch');
  });
});

describe('ops port (plain HTTP)', () => {
  it('/healthz and /readyz answer 200 once TLS and config are loaded', async () => {
    expect((await t.ops('/healthz')).status).toBe(200);
    expect((await t.ops('/readyz')).json()).toEqual({ status: 'ready' });
  });

  it('/metrics has the review histogram and the injection and skip counters', async () => {
    await t.post('/mutate', fixtureReview('review-01-pod-create.json'));
    await t.post('/mutate', review({ ...podRequest(), namespace: 'kube-system' }));
    const text = (await t.ops('/metrics')).text;
    expect(text).toMatch(/podvisor_admission_duration_seconds_bucket\{le="0.001",endpoint="mutate",kind="Pod",operation="CREATE",decision="patched"\} \d+/);
    expect(text).toMatch(/podvisor_injections_total\{feature="lxcfs",kind="Pod"\} [1-9]/);
    expect(text).toMatch(/podvisor_skips_total\{reason="excluded_namespace"\} [1-9]/);
    expect(text).toMatch(/podvisor_malformed_requests_total\{endpoint="\/mutate"\} [1-9]/);
  });
});

describe('shutdown', () => {
  it('not-ready while draining, serves requests on open keep-alive connections (never 503), then refuses', async () => {
    const s = await startTestServer({ server: { drainSeconds: 0.4 } });
    const body = fixtureReview('review-01-pod-create.json');
    expect((await s.post('/mutate', body)).status).toBe(200); // opens a keep-alive connection
    const stopping = s.server.shutdown('SIGTERM');
    expect((await s.ops('/readyz')).status).toBe(503);
    const during = await s.post('/mutate', body);
    expect(during.status).toBe(200);
    expect(during.json().response.allowed).toBe(true);
    await stopping;
    await expect(s.post('/mutate', body)).rejects.toThrow(/ECONNREFUSED|socket hang up|ECONNRESET/);
    s.agent.destroy();
  });
});
