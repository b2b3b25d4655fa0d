// `podvisor serve` against a fake API server: the whole composition (shared Secret, registration, namespace cache,
// version detection, Events) with the real client-node, and HTTPS clients that trust only what the apiserver would:
// the caBundle podvisor registered.
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { TLS_SECRET_KEYS, WEBHOOK_NAME } from '../src/k8s/names.js';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';
import { fixtureReview, violations } from './support/harness.js';

const ADM = 'admissionregistration.k8s.io/v1';
let api: FakeApiServer;
let server: RunningServer;
let agent: Agent;

function post(path: string, body: object): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', servername: 'podvisor.podvisor-system.svc', port: server.admissionPort, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
function ops(path: string): Promise<number> {
  return new Promise((resolve, reject) => httpRequest({ host: '127.0.0.1', port: server.opsPort, path }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject).end());
}
async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** review-01's Pod, in `namespace`, with `annotations` instead of its own (no opt-in unless given). */
function podReview(namespace: string, annotations: Record<string, string> = {}): { request: Record<string, any> } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const review = fixtureReview('review-01-pod-create.json');
  const request = review.request as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  request['namespace'] = namespace;
  request['object'].metadata.namespace = namespace;
  request['object'].metadata.annotations = annotations;
  return review as { request: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}
function applied(review: { request: Record<string, unknown> }, answer: { response: { patch?: string } }): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const patch = answer.response.patch === undefined ? [] : JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'));
  return jsonpatch.applyPatch(structuredClone(review.request['object']), patch, true, false).newDocument as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

beforeAll(async () => {
  api = await startFakeApiServer({ version: { minor: '29', gitVersion: 'v1.29.4' } });
  api.put('namespaces', { metadata: { name: 'team-a', labels: { 'kubernetes.io/metadata.name': 'team-a', 'podvisor.io/lxcfs': 'enabled' } } });
  api.put('namespaces', { metadata: { name: 'team-b', labels: { 'kubernetes.io/metadata.name': 'team-b' } } });
  const config = parseConfig({
    logLevel: 'silent',
    server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 },
    tls: { certDir: mkdtempSync(join(tmpdir(), 'podvisor-unused-')) },
  });
  server = await startServer(config, pino({ level: 'silent' }), { kubeConfig: api.kubeConfig(), register: true });
  await until(async () => (await ops('/readyz')) === 200);
  // Registration runs right after listening, mutating then validating.
  await until(() => api.get('validatingwebhookconfigurations', '', 'podvisor', ADM) !== undefined);
  const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
  // Trust exactly what the apiserver would trust: the registered caBundle.
  agent = new Agent({ ca: Buffer.from(mwc.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8'), keepAlive: true });
}, 30_000);

afterAll(async () => {
  agent?.destroy();
  await server?.shutdown('test done');
  await api?.close();
});

describe('podvisor serve with a cluster', () => {
  it('creates the shared Secret, registers both configurations with its CA, and serves the Secret certificate', async () => {
    const secret = api.get('secrets', 'podvisor-system', 'podvisor-tls');
    expect(secret?.['type']).toBe('kubernetes.io/tls');
    expect(Object.keys(secret?.['data'] ?? {}).sort()).toEqual([TLS_SECRET_KEYS.ca, TLS_SECRET_KEYS.caKey, TLS_SECRET_KEYS.cert, TLS_SECRET_KEYS.key].sort());
    const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
    const decode = (b64: string | undefined): string => Buffer.from(b64 ?? '', 'base64').toString('utf8').trim();
    expect(mwc.webhooks?.every((w) => decode(w.clientConfig.caBundle) === decode(secret?.['data'][TLS_SECRET_KEYS.ca]))).toBe(true);
    expect(api.get('validatingwebhookconfigurations', '', 'podvisor', ADM)).toBeDefined();
    const reply = await post('/mutate', podReview('team-b'));
    expect(reply.status).toBe(200);
  });

  it('namespace-label opt-in end to end: a Pod with no annotation in a namespace labelled podvisor.io/lxcfs=enabled gets LXCFS', async () => {
    const review = podReview('team-a');
    const answer = (await post('/mutate', review)).json;
    expect(answer.response.allowed).toBe(true);
    const result = applied(review, answer);
    expect(violations(result)).toEqual([]);
    expect(result['spec'].volumes.filter((v: { name: string }) => v.name.startsWith('podvisor-lxcfs-')).length).toBeGreaterThan(0);
    expect(result['spec'].containers[0].volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/proc/meminfo')).toBe(true);

    // team-b has no label: nothing; once labelled (a watch event), the next review is injected.
    const plain = podReview('team-b');
    expect((await post('/mutate', plain)).json.response.patch).toBeUndefined();
    api.put('namespaces', { metadata: { name: 'team-b', labels: { 'kubernetes.io/metadata.name': 'team-b', 'podvisor.io/lxcfs': 'enabled' } } });
    await until(async () => (await post('/mutate', podReview('team-b'))).json.response.patch !== undefined);
    // An explicit opt-out on the object beats the namespace default.
    expect((await post('/mutate', podReview('team-a', { 'podvisor.io/lxcfs': 'false' }))).json.response.patch).toBeUndefined();
  });

  it('uses the version read from /version for the AppArmor form (1.29: annotation, not the field)', async () => {
    const review = podReview('team-b', { 'podvisor.io/apparmor': 'runtime/default' });
    const result = applied(review, (await post('/mutate', review)).json);
    expect(result['metadata'].annotations['container.apparmor.security.beta.kubernetes.io/nginx']).toBe('runtime/default');
    expect(result['spec'].containers[0].securityContext?.appArmorProfile).toBeUndefined();
    expect(api.requestsTo('GET', '/version').length).toBeGreaterThan(0);
  });

  it('writes an Injected Event on the object, after the answer and off the request path', async () => {
    const review = podReview('team-a');
    review.request['object'].metadata.name = 'evented';
    review.request['name'] = 'evented';
    await post('/mutate', review);
    await until(() => api.requestsTo('POST', '/api/v1/namespaces/team-a/events').some((r) => (r.body as { involvedObject?: { name?: string } }).involvedObject?.name === 'evented'));
    const event = api.requestsTo('POST', '/api/v1/namespaces/team-a/events').map((r) => r.body as Record<string, any>).find((e) => e['involvedObject'].name === 'evented'); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(event).toMatchObject({ reason: 'Injected', type: 'Normal', involvedObject: { kind: 'Pod', name: 'evented', namespace: 'team-a', apiVersion: 'v1' }, source: { component: 'podvisor' } });
    expect(event?.['message']).toMatch(/^injected lxcfs into container nginx/);
  });

  it('makes no API call on the request path: 50 reviews, zero requests to the API server', async () => {
    api.clearRequests();
    for (let i = 0; i < 50; i++) {
      // Opted out, so no Event either: only the handler's own work.
      const answer = (await post('/mutate', podReview(i % 2 === 0 ? 'team-a' : 'team-b', { 'podvisor.io/lxcfs': 'false' }))).json;
      expect(answer.response.allowed).toBe(true);
    }
    expect(api.requests).toEqual([]);
  });

  it('exports the seconds until the serving certificate and the CA expire', async () => {
    const text = await new Promise<string>((resolve, reject) =>
      httpRequest({ host: '127.0.0.1', port: server.opsPort, path: '/metrics' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      }).on('error', reject).end(),
    );
    const seconds = (name: string): number => Number(new RegExp(`podvisor_certificate_expiry_seconds\\{certificate="${name}"\\} (\\d+)`).exec(text)?.[1]);
    expect(Math.abs(seconds('serving') - 365 * 86_400)).toBeLessThan(300);
    expect(Math.abs(seconds('ca') - 3650 * 86_400)).toBeLessThan(300);
    expect(text).toMatch(/podvisor_webhook_registrations_total\{configuration="mutating",result="created"\} 1/);
  });

  it('registers the namespace entry next to the annotation entry', () => {
    const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
    expect(mwc.webhooks?.map((w) => w.name)).toEqual(expect.arrayContaining([WEBHOOK_NAME.mutate, WEBHOOK_NAME.mutateNamespace]));
  });
});

describe('Denied Events from POST /validate', () => {
  it('a denial by the namespace policy becomes a Denied Event on the object, written after the answer', async () => {
    const api2 = await startFakeApiServer();
    api2.put('namespaces', { metadata: { name: 'observability' } });
    const config = parseConfig({
      logLevel: 'silent',
      server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 },
      tls: { certDir: mkdtempSync(join(tmpdir(), 'podvisor-unused-')) },
      policy: { default: { name: 'no-privileged', privileged: 'deny' } },
    });
    const server2 = await startServer(config, pino({ level: 'silent' }), { kubeConfig: api2.kubeConfig(), register: true });
    try {
      await until(() => api2.get('validatingwebhookconfigurations', '', 'podvisor', ADM) !== undefined);
      const mwc = api2.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
      const agent2 = new Agent({ ca: Buffer.from(mwc.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8') });
      const review = fixtureReview('review-11-daemonset-create.json');
      const answer = await new Promise<any>((resolve, reject) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        const req = httpsRequest({ host: '127.0.0.1', servername: 'podvisor.podvisor-system.svc', port: server2.admissionPort, path: '/validate?timeout=5s', method: 'POST', agent: agent2, headers: { 'content-type': 'application/json' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
        });
        req.on('error', reject);
        req.end(JSON.stringify(review));
      });
      agent2.destroy();
      expect(answer.response.allowed).toBe(false);
      await until(() => api2.requestsTo('POST', '/api/v1/namespaces/observability/events').length > 0);
      const event = api2.requestsTo('POST', '/api/v1/namespaces/observability/events')[0]?.body as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      expect(event).toMatchObject({ reason: 'Denied', type: 'Warning', involvedObject: { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'hostwatch-agent', namespace: 'observability' } });
      expect(event['message']).toContain('no-privileged');
    } finally {
      await server2.shutdown('test done');
      await api2.close();
    }
  }, 30_000);
});
