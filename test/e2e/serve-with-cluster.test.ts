// `podvisor serve` with a cluster, as a whole, against the real kube-apiserver (its own ServiceAccount token, from no
// Secret and no configurations): it creates the shared TLS Secret, registers both configurations with its CA and
// serves its certificate; it writes Injected and Denied Events through the API after answering; it makes no API call
// on the request path (the apiserver's audit log of podvisor's calls); it exports when its certificates expire.
import { X509Certificate } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bundleCertificates } from '../../src/k8s/certificates.js';
import { TLS_SECRET_KEYS, TLS_SECRET_NAME, WEBHOOK_NAME } from '../../src/k8s/names.js';
import { callsOn, auditedCalls } from '../support/audit-log.js';
import { createNamespace, deleteNamespace, eventually } from '../support/cluster-objects.js';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { fixture } from '../support/harness.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';
import { MUTATING_PATH, VALIDATING_PATH, der, registeredBundle, servedCertificate } from '../support/webhook-trust.js';

const info = inject('controlPlane');
const NAMESPACE = 'e2e-serve';
const SECRET_PATH = `/api/v1/namespaces/podvisor-system/secrets/${TLS_SECRET_NAME}`;
const DAY_SECONDS = 86_400;
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;
let startedAt: number;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  // From nothing, as on a first install (earlier files' podvisor left a Secret and configurations).
  for (const path of [SECRET_PATH, MUTATING_PATH, VALIDATING_PATH]) await apiRequest(admin, 'DELETE', path);
  startedAt = Date.now();
  podvisor = await startPodvisorOnCluster(info, {
    keepReviews: true,
    config: {
      policy: { default: { name: 'no-privileged', privileged: 'deny' } },
      // No periodic check while the request-path test counts calls (the first check runs at the start).
      certificates: { checkIntervalSeconds: 3600 },
    },
  });
});
afterAll(async () => {
  await podvisor?.stop();
  await deleteNamespace(admin, NAMESPACE);
});

type CoreEvent = { reason: string; type: string; message: string; involvedObject: Record<string, string>; source?: { component?: string } };

async function eventAbout(name: string, reason: string): Promise<CoreEvent> {
  return eventually(`a ${reason} Event about ${name}`, async () => {
    const answer = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events`);
    return ((answer.body as { items?: CoreEvent[] }).items ?? []).find((e) => e.reason === reason && e.involvedObject['name'] === name);
  }, 15_000, 250);
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${podvisor.process.opsPort}/metrics`)).text();
}

describe('podvisor serve with a cluster', () => {
  it('creates the shared Secret, registers both configurations with its CA, and serves the Secret\'s certificate', async () => {
    expect(callsOn(await auditedCalls(info, new Date(startedAt).toISOString()), 'secrets', TLS_SECRET_NAME).slice(0, 2)).toEqual(['get 404', 'create 201']);
    const secret = (await apiRequest(admin, 'GET', SECRET_PATH)).body as { type: string; data: Record<string, string> };
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual([TLS_SECRET_KEYS.ca, TLS_SECRET_KEYS.caKey, TLS_SECRET_KEYS.cert, TLS_SECRET_KEYS.key].sort());
    const ca = Buffer.from(secret.data[TLS_SECRET_KEYS.ca]!, 'base64').toString('utf8');
    const cert = Buffer.from(secret.data[TLS_SECRET_KEYS.cert]!, 'base64').toString('utf8');
    const bundle = await registeredBundle(admin);
    expect(bundleCertificates(bundle)).toEqual([der(ca)]);
    const served = await servedCertificate(podvisor.process.admissionPort, bundle);
    expect(der(served)).toBe(der(cert));
    expect(served.checkIssued(new X509Certificate(ca))).toBe(true);
    // The annotation entry and the namespace-label entry, next to each other.
    const mutating = (await apiRequest(admin, 'GET', MUTATING_PATH)).body as MutatingWebhookConfiguration;
    expect(mutating.webhooks?.map((w) => w.name)).toEqual(expect.arrayContaining([WEBHOOK_NAME.mutate, WEBHOOK_NAME.mutateNamespace]));
  });

  it('writes an Injected Event on the Pod it mutated', async () => {
    const pod = fixture('01-pod-nginx-lxcfs.yaml');
    const created = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods`, { ...pod, metadata: { ...(pod['metadata'] as object), name: 'evented', namespace: NAMESPACE } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const event = await eventAbout('evented', 'Injected');
    expect(event).toMatchObject({ type: 'Normal', involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'evented', namespace: NAMESPACE }, source: { component: 'podvisor' } });
    expect(event.message).toMatch(/^injected lxcfs into container nginx/);
  });

  it('a denial by the policy is refused by the apiserver and becomes a Denied Event on the object', async () => {
    // The privileged agent without its podvisor.io/agent annotation: with it, podvisor's mutation (which runs first in
    // the apiserver's chain) replaces privileged with capabilities, and the policy then allows the DaemonSet.
    const daemonSet = fixture('11-daemonset-agent-privileged.yaml') as { metadata: { name: string }; spec: { template: { metadata: { annotations?: Record<string, string> } } } } & Record<string, unknown>;
    delete daemonSet.spec.template.metadata.annotations;
    const name = daemonSet.metadata.name;
    const answer = await apiRequest(admin, 'POST', `/apis/apps/v1/namespaces/${NAMESPACE}/daemonsets`, { ...daemonSet, metadata: { ...daemonSet.metadata, namespace: NAMESPACE } });
    expect(answer.status, JSON.stringify(answer.body)).toBe(403);
    expect(JSON.stringify(answer.body)).toContain('no-privileged');
    const event = await eventAbout(name, 'Denied');
    expect(event).toMatchObject({ type: 'Warning', involvedObject: { apiVersion: 'apps/v1', kind: 'DaemonSet', name, namespace: NAMESPACE } });
    expect(event.message).toContain('no-privileged');
  });

  it('makes no API call on the request path: 50 admissions through the apiserver, no call by podvisor meanwhile', async () => {
    // Dry runs: podvisor mutates them but writes no Event (sideEffects NoneOnDryRun), so any call would be the handler's.
    const from = Date.now();
    for (let i = 0; i < 50; i++) {
      const answer = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods?dryRun=All`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `quiet-${i}`, annotations: { 'podvisor.io/lxcfs': 'true' } },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
      });
      expect(answer.status).toBe(201);
      expect((answer.body as { metadata: { annotations: Record<string, string> } }).metadata.annotations['podvisor.io/status']).toBeDefined();
    }
    const to = Date.now();
    await podvisor.process.waitForLog((l) => l.msg === 'review' && l['name'] === 'quiet-49', 5_000);
    expect(podvisor.process.logs.filter((l) => l.msg === 'review' && String(l['name']).startsWith('quiet-'))).toHaveLength(50);
    const calls = (await auditedCalls(info, new Date(from).toISOString())).filter((e) => Date.parse(e.requestReceivedTimestamp) <= to);
    expect(calls.map((e) => `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name ?? ''}`)).toEqual([]);
  });

  it('exports the seconds until the serving certificate and the CA expire, and the registrations it made', async () => {
    const text = await metrics();
    const seconds = (name: string): number => Number(new RegExp(`podvisor_certificate_expiry_seconds\\{certificate="${name}"\\} (\\d+)`).exec(text)?.[1]);
    expect(Math.abs(seconds('serving') - 365 * DAY_SECONDS)).toBeLessThan(300);
    expect(Math.abs(seconds('ca') - 3650 * DAY_SECONDS)).toBeLessThan(300);
    expect(text).toMatch(/podvisor_webhook_registrations_total\{configuration="mutating",result="created"\} 1\n/);
    expect(text).toMatch(/podvisor_webhook_registrations_total\{configuration="validating",result="created"\} 1\n/);
  });
});
