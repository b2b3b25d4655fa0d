// `podvisor serve` with a cluster that answers /version with another minor (1.29) than the e2e control plane's: the
// version read from the API decides the AppArmor form. On the fake apiserver because a real kube-apiserver answers
// its own release only; the rest of `serve` with a cluster runs against the real one in test/e2e/serve-with-cluster.test.ts.
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
import { startServer, type RunningServer } from '../src/server/serve.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';
import { fixtureReview } from './support/harness.js';

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

beforeAll(async () => {
  api = await startFakeApiServer({ version: { minor: '29', gitVersion: 'v1.29.4' } });
  api.put('namespaces', { metadata: { name: 'team-b', labels: { 'kubernetes.io/metadata.name': 'team-b' } } });
  const config = parseConfig({
    logLevel: 'silent',
    server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 },
    tls: { certDir: mkdtempSync(join(tmpdir(), 'podvisor-unused-')) },
  });
  server = await startServer(config, pino({ level: 'silent' }), { kubeConfig: api.kubeConfig(), register: true });
  await until(async () => (await ops('/readyz')) === 200);
  await until(() => api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) !== undefined);
  const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as MutatingWebhookConfiguration;
  // Trust exactly what the apiserver would trust: the registered caBundle.
  agent = new Agent({ ca: Buffer.from(mwc.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString('utf8'), keepAlive: true });
}, 30_000);

afterAll(async () => {
  agent?.destroy();
  await server?.shutdown('test done');
  await api?.close();
});

describe('podvisor serve with a cluster of another minor', () => {
  it('uses the version read from /version for the AppArmor form (1.29: annotation, not the field)', async () => {
    const review = fixtureReview('review-01-pod-create.json');
    const request = review.request as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    request['namespace'] = 'team-b';
    request['object'].metadata.namespace = 'team-b';
    request['object'].metadata.annotations = { 'podvisor.io/apparmor': 'runtime/default' };
    const answer = (await post('/mutate', review)).json;
    const patch = answer.response.patch === undefined ? [] : JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8'));
    const result = jsonpatch.applyPatch(structuredClone(request['object']), patch, true, false).newDocument as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(result['metadata'].annotations['container.apparmor.security.beta.kubernetes.io/nginx']).toBe('runtime/default');
    expect(result['spec'].containers[0].securityContext?.appArmorProfile).toBeUndefined();
    expect(api.requestsTo('GET', '/version').length).toBeGreaterThan(0);
  });
});
