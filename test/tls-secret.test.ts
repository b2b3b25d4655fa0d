import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificatePolicy } from '../src/k8s/certificates.js';
import { TLS_SECRET_KEYS } from '../src/k8s/names.js';
import { startSharedTls } from '../src/k8s/tls-secret.js';
import { createLogger } from '../src/observability/logger.js';
import { startFakeApiServer, type FakeApiServer } from './support/fake-apiserver.js';

const log = createLogger('silent');
const policy: CertificatePolicy = { service: 'podvisor', namespace: 'podvisor-system', caDays: 3650, caRenewBeforeDays: 400, leafDays: 365, leafRenewBeforeDays: 30, retireAfterMs: 600_000 };
const SECRETS = '/api/v1/namespaces/podvisor-system/secrets';
let api: FakeApiServer;
beforeAll(async () => {
  api = await startFakeApiServer();
});
afterAll(async () => api.close());

describe('the TLS Secret shared by replicas', () => {
  it('two replicas starting together: both create, one gets 409 AlreadyExists and uses the other one\'s', async () => {
    let gate: () => void = () => undefined;
    const bothRead = new Promise<void>((resolve) => (gate = resolve));
    let reads = 0;
    const remove = api.route('GET', `${SECRETS}/podvisor-tls`, async () => {
      if (++reads === 2) gate();
      await Promise.race([bothRead, new Promise((r) => setTimeout(r, 2000))]);
      return undefined;
    });
    const [a, b] = await Promise.all([0, 1].map(() => startSharedTls(api.kubeConfig(), log, { namespace: 'podvisor-system', policy: () => policy })));
    remove();
    expect(api.requestsTo('POST', SECRETS)).toHaveLength(2);
    expect(a!.current()).toEqual(b!.current());
    const stored = api.get('secrets', 'podvisor-system', 'podvisor-tls');
    expect(Buffer.from(stored?.['data'][TLS_SECRET_KEYS.cert], 'base64').toString()).toBe(a!.current().cert);
    // Nothing due: a reconcile writes nothing.
    api.clearRequests();
    expect((await a!.reconcile()).step.kind).toBe('none');
    expect(api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('a renewal by one replica is picked up by the other at its next reconcile; a stale write gets 409 and re-reads', async () => {
    const short = { ...policy, leafRenewBeforeDays: 366 }; // every serving certificate is "about to expire"
    let renewDue = false;
    const a = await startSharedTls(api.kubeConfig(), log, { namespace: 'podvisor-system', policy: () => (renewDue ? short : policy) });
    const b = await startSharedTls(api.kubeConfig(), log, { namespace: 'podvisor-system', policy: () => policy });
    renewDue = true;
    const renewed = await a.reconcile();
    expect(renewed.step.kind).toBe('renew-serving');
    renewDue = false;
    const seen = await b.reconcile();
    expect(seen.changed).toBe(true);
    expect(b.current().cert).toBe(renewed.bundle.cert);
    // A replica whose write carries a stale resourceVersion gets Conflict, re-reads and re-decides.
    api.failNext('PUT', `${SECRETS}/podvisor-tls`, 409);
    renewDue = true;
    const again = await a.reconcile();
    renewDue = false;
    expect(again.step.kind).toBe('renew-serving');
    expect(api.requestsTo('PUT', `${SECRETS}/podvisor-tls`).length).toBeGreaterThanOrEqual(2);
  });
});
