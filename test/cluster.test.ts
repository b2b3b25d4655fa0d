// src/k8s/cluster.ts against the fake apiserver: what a replica may register when its read of the Secret fails.
// On the fake because the read must fail at one exact moment, which a real kube-apiserver cannot be made to do on demand.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { parseConfig } from '../src/config/load.js';
import { applyRotationStep, bundleCertificates } from '../src/k8s/certificates.js';
import { certificatePolicy, startCluster } from '../src/k8s/cluster.js';
import { createIntegrationMetrics } from '../src/k8s/metrics.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';

const ADM = 'admissionregistration.k8s.io/v1';
const unb64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');
const b64 = (text: string) => Buffer.from(text).toString('base64');

let api: FakeApiServer;
beforeAll(async () => {
  api = await startFakeApiServer();
  api.put('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'podvisor-system' } });
});
afterAll(async () => api.close());

it('a replica whose Secret read fails registers nothing: the new CA another replica added stays in caBundle', async () => {
  const config = parseConfig({});
  const cluster = await startCluster({
    kubeConfig: api.kubeConfig(),
    register: true,
    config: () => config,
    validating: () => true,
    log: pino({ level: 'silent' }),
    metrics: createIntegrationMetrics(new Registry()),
  });
  try {
    await cluster.reconcile();
    type Configuration = { webhooks: { clientConfig: { caBundle: string } }[] };
    const caBundle = () => bundleCertificates(unb64((api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as unknown as Configuration).webhooks[0]!.clientConfig.caBundle));
    expect(caBundle()).toHaveLength(1);

    // Another replica performs rotation step 1: a new CA in the Secret, and caBundle = new + old.
    const secret = api.get('secrets', 'podvisor-system', 'podvisor-tls') as unknown as { data: Record<string, string> };
    const live = { ca: unb64(secret.data['ca.crt']), caKey: unb64(secret.data['ca.key']), cert: unb64(secret.data['tls.crt']), key: unb64(secret.data['tls.key']) };
    const next = await applyRotationStep(live, { kind: 'new-ca' }, certificatePolicy(config), Date.now());
    api.put('secrets', { ...secret, data: { ...secret.data, 'ca.crt': b64(next.ca), 'ca.key': b64(next.caKey), 'ca-previous.crt': b64(next.previousCa!) } });
    const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', ADM) as unknown as Configuration;
    const both = b64(`${next.ca.trim()}\n${next.previousCa!.trim()}\n`);
    api.put('mutatingwebhookconfigurations', { ...mwc, webhooks: mwc.webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: both } })) }, ADM);
    expect(caBundle()).toHaveLength(2);

    // This replica's Secret read fails once: it must not write its older bundle over the other replica's.
    api.failNext('GET', /\/secrets\/podvisor-tls/, 500, 1);
    await cluster.reconcile();
    expect(caBundle()).toHaveLength(2);
    expect(caBundle()).toContain(bundleCertificates(next.ca)[0]);
  } finally {
    await cluster.stop();
  }
});
