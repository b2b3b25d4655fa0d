// podvisor under its own ServiceAccount, bound only by the shipped RBAC (deploy/overlays/self-managed, as rendered by
// kustomize and applied in the global setup): every call it makes is allowed, and every permission the RBAC grants is
// one podvisor uses. The kube-apiserver's audit log (test/support/control-plane.ts) is the record of its calls. The
// same podvisor in cert-manager mode (a mounted certificate, --no-register) calls only what the cert-manager overlay
// grants, which is none of the registration and TLS Secret permissions.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { generateServingCertificate } from '../../src/server/certificate-authority.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { auditedCalls, grantedBy, neededFor } from '../support/audit-log.js';
import { apiRequest, loadKubeConfig } from '../support/control-plane.js';
import { createNamespace, deleteNamespace, eventually } from '../support/cluster-objects.js';
import { fixtureReview } from '../support/harness.js';
import { startPodvisorOnCluster, type PodvisorOnCluster } from '../support/podvisor-on-cluster.js';

const info = inject('controlPlane');
const NAMESPACE = 'e2e-rbac';
let admin: KubeConfig;
let podvisor: PodvisorOnCluster;
let certManagerMode: PodvisorOnCluster | undefined;
let startedAt: string;

beforeAll(async () => {
  admin = loadKubeConfig(info.adminKubeconfig);
  await createNamespace(admin, NAMESPACE);
  // From nothing, as on a first install: podvisor creates the configurations and the TLS Secret itself (earlier files'
  // podvisor left theirs).
  for (const path of [
    '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor',
    '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor',
    '/api/v1/namespaces/podvisor-system/secrets/podvisor-tls',
    '/apis/coordination.k8s.io/v1/namespaces/podvisor-system/leases/podvisor-recovery',
  ]) {
    await apiRequest(admin, 'DELETE', path);
  }
  startedAt = new Date().toISOString();
  // --lxcfs-recovery: the recovery controller's calls (lxcfs pods, its Lease) are part of what the RBAC grants.
  podvisor = await startPodvisorOnCluster(info, { keepReviews: true, config: { certificates: { checkIntervalSeconds: 1 } }, extraArgs: ['--lxcfs-recovery'] });
});
afterAll(async () => {
  await podvisor?.stop();
  await certManagerMode?.stop();
  await deleteNamespace(admin, NAMESPACE);
});

/**
 * Granted for what this run does not make happen, each with its reason; anything else granted and not used fails.
 * - the lxcfs recovery's eviction of the pods on a node whose lxcfs restarted (no lxcfs restarts here: those calls
 *   are made, and checked against the same RBAC, in test/e2e/recovery.test.ts);
 * - `update` of the TLS Secret: a renewal or CA rotation step (none is due with fresh certificates).
 */
const NOT_EXERCISED = new Set(['create core/pods/eviction', 'list core/pods', 'update core/secrets in podvisor-system']);

describe('podvisor with its own ServiceAccount under the shipped RBAC', () => {
  it('every call is allowed, and every granted permission is used', async () => {
    // Exercise everything podvisor does: admission with an Event, registration passes, the TLS Secret, the
    // namespace cache, the recovery Lease.
    const pod = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NAMESPACE}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'rbac-probe', annotations: { 'podvisor.io/lxcfs': 'true' } },
      spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
    });
    expect(pod.status).toBe(201);
    await eventually('the Injected Event', async () => {
      const events = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events`);
      return ((events.body as { items: { reason: string; involvedObject: { name: string } }[] }).items ?? []).some((e) => e.reason === 'Injected' && e.involvedObject.name === 'rbac-probe') ? true : undefined;
    }, 15_000);
    await eventually('the recovery Lease', async () => ((await apiRequest(admin, 'GET', '/apis/coordination.k8s.io/v1/namespaces/podvisor-system/leases/podvisor-recovery')).status === 200 ? true : undefined), 30_000);
    // Someone edits both configurations: podvisor puts them back (update).
    for (const path of ['/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor']) {
      const live = (await apiRequest(admin, 'GET', path)).body as { webhooks: { timeoutSeconds: number }[] };
      live.webhooks[0]!.timeoutSeconds = 29;
      expect((await apiRequest(admin, 'PUT', path, live)).status).toBe(200);
    }
    await eventually('both configurations repaired', async () => ((await auditedCalls(info, startedAt)).filter((c) => c.verb === 'update' && c.objectRef?.resource?.endsWith('webhookconfigurations')).length >= 2 ? true : undefined), 15_000, 500);
    // The Lease is renewed (update) every few seconds; registration and certificate passes run every second.
    await eventually('a Lease renewal', async () => ((await auditedCalls(info, startedAt)).some((c) => c.verb === 'update' && c.objectRef?.resource === 'leases') ? true : undefined), 30_000, 500);

    const calls = await auditedCalls(info, startedAt);
    const grants = await grantedBy(info, 'deploy/overlays/self-managed');
    const refused = calls.filter((c) => c.responseStatus?.code === 403).map((c) => `${c.verb} ${JSON.stringify(c.objectRef)}`);
    expect(refused, 'calls refused by RBAC').toEqual([]);
    expect(podvisor.process.logs.filter((l) => /forbidden/i.test(JSON.stringify(l)))).toEqual([]);

    const used = new Set(calls.map((c) => neededFor(c, grants)));
    expect([...used].filter((p) => !grants.has(p)).sort(), 'used but not granted (a 403 would show it)').toEqual([]);
    const unused = [...grants].filter((p) => !used.has(p) && !NOT_EXERCISED.has(p)).sort();
    expect(unused, `granted but never used; used: ${JSON.stringify([...used].sort())}`).toEqual([]);
  });
});

/** One AdmissionReview to podvisor's admission port, as the apiserver would send it (a cert-manager install's podvisor is not registered here). */
function review(port: number, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('podvisor in cert-manager mode under the cert-manager overlay\'s RBAC', () => {
  it('calls only what the overlay grants: no webhook configurations, no Secrets', async () => {
    // The self-managed replica would be counted too (same ServiceAccount): it goes first.
    await podvisor.stop();
    const certs = await mkdtemp(join(info.dir, 'cert-manager-'));
    const pem = await generateServingCertificate('podvisor', 'podvisor-system');
    await writeFile(join(certs, 'tls.crt'), pem.cert);
    await writeFile(join(certs, 'tls.key'), pem.key);
    await writeFile(join(certs, 'ca.crt'), pem.ca);
    const since = new Date().toISOString();
    // As deploy/overlays/cert-manager/deployment-patch.yaml runs it, with the lxcfs recovery on (its RBAC is the base's).
    certManagerMode = await startPodvisorOnCluster(info, {
      register: false,
      extraArgs: ['--tls-cert', join(certs, 'tls.crt'), '--tls-key', join(certs, 'tls.key'), '--no-register', '--lxcfs-recovery'],
      env: { POD_NAME: 'podvisor-cert-manager' },
    });
    const admission = fixtureReview('review-01-pod-create.json');
    const request = admission.request as { namespace: string; object: { metadata: { namespace?: string; name: string } } };
    request.namespace = NAMESPACE;
    request.object.metadata.namespace = NAMESPACE;
    expect(await review(certManagerMode.process.admissionPort, JSON.stringify(admission))).toBe(200);
    await eventually('the Injected Event', async () => {
      const events = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NAMESPACE}/events`);
      return ((events.body as { items: { reason: string; involvedObject: { name: string } }[] }).items ?? []).some((e) => e.reason === 'Injected' && e.involvedObject.name === request.object.metadata.name) ? true : undefined;
    }, 15_000);
    await eventually('the recovery Lease held', async () => (((await apiRequest(admin, 'GET', '/apis/coordination.k8s.io/v1/namespaces/podvisor-system/leases/podvisor-recovery')).body as { spec?: { holderIdentity?: string } }).spec?.holderIdentity === 'podvisor-cert-manager' ? true : undefined), 30_000, 500);

    const calls = await auditedCalls(info, since);
    const grants = await grantedBy(info, 'deploy/overlays/cert-manager');
    expect(calls.filter((c) => c.responseStatus?.code === 403).map((c) => `${c.verb} ${c.requestURI}`)).toEqual([]);
    const used = new Set(calls.map((c) => neededFor(c, grants)));
    expect([...used].filter((p) => !grants.has(p)).sort(), `not granted by the cert-manager overlay; used: ${JSON.stringify([...used].sort())}`).toEqual([]);
    expect(calls.filter((c) => c.objectRef?.resource === 'secrets' || c.objectRef?.resource?.endsWith('webhookconfigurations')).map((c) => `${c.verb} ${c.requestURI}`)).toEqual([]);
    // And the overlay grants none of what self-managed registration and TLS use.
    expect([...grants].filter((g) => /webhookconfigurations|secrets/.test(g))).toEqual([]);
    // What was exercised: the namespace cache, an Event, the recovery's lxcfs watch and Lease (taken over by update).
    expect([...used]).toEqual(expect.arrayContaining(['list core/namespaces', 'watch core/namespaces', 'create core/events', 'list core/pods in podvisor-system', 'watch core/pods in podvisor-system', 'get coordination.k8s.io/leases in podvisor-system', 'update coordination.k8s.io/leases in podvisor-system']));
  });
});
