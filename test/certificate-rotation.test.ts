// Certificate lifecycle: the pure step function, and a full CA rotation through `podvisor serve` against the fake
// API server, probed all along by a TLS client that trusts only the caBundle registered at that moment (what the
// apiserver does). The order must be: new CA added to the bundle → serving certificate switches → old CA removed.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { applyRotationStep, bundleCertificates, generateBundle, nextRotationStep, type CertificatePolicy } from '../src/k8s/certificates.js';
import { DAY_MS, generateCa, issueServingCertificate } from '../src/server/certificate-authority.js';
import { TLS_SECRET_KEYS } from '../src/k8s/names.js';
import { startServer } from '../src/server/serve.js';
import { startFakeApiServer } from './support/fake-apiserver.js';

const policy: CertificatePolicy = { service: 'podvisor', namespace: 'podvisor-system', caDays: 3650, caRenewBeforeDays: 400, leafDays: 365, leafRenewBeforeDays: 30, retireAfterMs: 600_000 };
const b64 = (text: string): string => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined): string => Buffer.from(text ?? '', 'base64').toString('utf8');

describe('nextRotationStep (pure)', () => {
  it('walks new CA → wait for the bundle → switch → retire, and renews a serving certificate near expiry', async () => {
    const now = Date.now();
    const fresh = await generateBundle(policy, now);
    expect(nextRotationStep(fresh, policy, now, false).kind).toBe('none');
    expect(Math.abs(Date.parse(new X509Certificate(fresh.ca).validTo) - (now + 3650 * DAY_MS))).toBeLessThan(2000);
    expect(Math.abs(Date.parse(new X509Certificate(fresh.cert).validTo) - (now + 365 * DAY_MS))).toBeLessThan(2000);
    // 340 days later the serving certificate has < 30 days left: renewed from the same CA.
    const later = now + 340 * DAY_MS;
    expect(nextRotationStep(fresh, policy, later, false)).toEqual({ kind: 'renew-serving', reason: 'the serving certificate expires soon' });
    // 3300 days later the CA has < 400 days left: a new CA, the serving certificate kept (signed by the previous CA).
    const late = now + 3300 * DAY_MS;
    expect(nextRotationStep(fresh, policy, late, false).kind).toBe('new-ca');
    const rotated = await applyRotationStep(fresh, { kind: 'new-ca' }, policy, now);
    expect(rotated.previousCa).toBe(fresh.ca);
    expect(rotated.cert).toBe(fresh.cert);
    expect(nextRotationStep(rotated, policy, now, false).kind).toBe('wait-for-bundle');
    expect(nextRotationStep(rotated, policy, now, true).kind).toBe('switch-serving');
    const switched = await applyRotationStep(rotated, { kind: 'switch-serving' }, policy, now);
    expect(new X509Certificate(switched.cert).checkIssued(new X509Certificate(switched.ca))).toBe(true);
    expect(nextRotationStep(switched, policy, now, true).kind).toBe('none'); // grace not over
    expect(nextRotationStep(switched, policy, now + policy.retireAfterMs, true).kind).toBe('retire-previous-ca');
    const retired = await applyRotationStep(switched, { kind: 'retire-previous-ca' }, policy, now);
    expect(retired.previousCa).toBeUndefined();
  });

  it('regenerates an unusable Secret and re-issues a serving certificate for a renamed Service', async () => {
    const now = Date.now();
    const fresh = await generateBundle(policy, now);
    expect(nextRotationStep({ ...fresh, caKey: 'garbage' }, policy, now, false).kind).toBe('regenerate');
    // The old CA (still valid) stays trusted next to the new one until the replicas have reloaded.
    const regenerated = await applyRotationStep({ ...fresh, caKey: 'garbage' }, { kind: 'regenerate', reason: 'test' }, policy, now);
    expect(regenerated.previousCa).toBe(fresh.ca);
    expect(regenerated.ca).not.toBe(fresh.ca);
    expect(nextRotationStep(regenerated, policy, now, true).kind).toBe('none');
    expect(nextRotationStep(regenerated, policy, now + policy.retireAfterMs, true).kind).toBe('retire-previous-ca');
    const other = await generateBundle(policy, now);
    expect(nextRotationStep({ ...fresh, key: other.key }, policy, now, false).kind).toBe('renew-serving');
    expect(nextRotationStep(fresh, { ...policy, service: 'renamed' }, now, false)).toEqual({ kind: 'renew-serving', reason: 'the serving certificate does not name renamed' });
  });
});

describe('CA rotation through podvisor serve (one replica, fake apiserver)', () => {
  it('adds the new CA to the caBundle before the serving certificate switches, removes the old one only after', async () => {
    const api = await startFakeApiServer();
    // A Secret whose CA has 100 days left (< caRenewBeforeDays 400): podvisor must rotate it.
    const now = Date.now();
    const oldCa = await generateCa('old-ca', now, 100);
    const oldLeaf = await issueServingCertificate(oldCa, 'podvisor', 'podvisor-system', now, 90);
    api.put('secrets', {
      metadata: { name: 'podvisor-tls', namespace: 'podvisor-system' },
      type: 'kubernetes.io/tls',
      data: { [TLS_SECRET_KEYS.ca]: b64(oldCa.cert), [TLS_SECRET_KEYS.caKey]: b64(oldCa.key), [TLS_SECRET_KEYS.cert]: b64(oldLeaf.cert), [TLS_SECRET_KEYS.key]: b64(oldLeaf.key) },
    });
    const config = parseConfig({
      logLevel: 'silent',
      server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 },
      tls: { certDir: mkdtempSync(join(tmpdir(), 'podvisor-unused-')) },
      certificates: { checkIntervalSeconds: 1 },
    });
    const server = await startServer(config, pino({ level: 'silent' }), { kubeConfig: api.kubeConfig(), register: true, cluster: { propagationMs: 1200, retireAfterMs: 2500 } });

    /** What the apiserver trusts now, and whether a fresh TLS handshake with the served certificate succeeds under it. */
    const probe = async (): Promise<{ trusted: string[]; served: string }> => {
      const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', 'admissionregistration.k8s.io/v1') as MutatingWebhookConfiguration | undefined;
      const bundle = unb64(mwc?.webhooks?.[0]?.clientConfig.caBundle);
      const served = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: server.admissionPort, servername: 'podvisor.podvisor-system.svc', ca: bundle }, () => {
          const raw = socket.getPeerCertificate().raw.toString('base64');
          socket.end();
          resolve(raw);
        });
        socket.on('error', reject);
      });
      return { trusted: bundleCertificates(bundle), served };
    };

    const oldDer = new X509Certificate(oldCa.cert).raw.toString('base64');
    const oldLeafDer = new X509Certificate(oldLeaf.cert).raw.toString('base64');
    const timeline: { trusted: string[]; served: string }[] = [];
    const deadline = Date.now() + 15_000;
    try {
      // Before the first registration the apiserver does not call podvisor at all.
      while (api.get('mutatingwebhookconfigurations', '', 'podvisor', 'admissionregistration.k8s.io/v1') === undefined) {
        if (Date.now() > deadline) throw new Error('never registered');
        await new Promise((r) => setTimeout(r, 20));
      }
      for (;;) {
        timeline.push(await probe()); // throws if the served certificate is not trusted by the registered bundle
        const last = timeline.at(-1)!;
        if (last.served !== oldLeafDer && !last.trusted.includes(oldDer)) break;
        if (Date.now() > deadline) throw new Error(`rotation did not finish: ${timeline.length} probes`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await server.shutdown('test done');
      await api.close();
    }
    const secretWrites = api.requestsTo('PUT', '/api/v1/namespaces/podvisor-system/secrets/podvisor-tls').map((r) => r.body as { data: Record<string, string> });
    expect(secretWrites).toHaveLength(3); // new-ca, switch-serving, retire-previous-ca
    const newCa = unb64(secretWrites[0]?.data[TLS_SECRET_KEYS.ca]);
    const newDer = new X509Certificate(newCa).raw.toString('base64');
    expect(unb64(secretWrites[0]?.data[TLS_SECRET_KEYS.previousCa])).toBe(oldCa.cert);
    expect(unb64(secretWrites[0]?.data[TLS_SECRET_KEYS.cert])).toBe(oldLeaf.cert);
    // The timeline, phase by phase: [old] serving old → [new, old] serving old → [new, old] serving new → [new] serving new.
    const phases = timeline.map((t) => `${t.trusted.map((c) => (c === oldDer ? 'old' : c === newDer ? 'new' : '?')).join('+')}|${t.served === oldLeafDer ? 'old-leaf' : 'new-leaf'}`);
    const distinct = phases.filter((p, i) => i === 0 || phases[i - 1] !== p);
    expect(distinct).toEqual(['old|old-leaf', 'new+old|old-leaf', 'new+old|new-leaf', 'new|new-leaf'].slice(distinct[0] === 'old|old-leaf' ? 0 : 1));
    expect(distinct).toContain('new+old|old-leaf');
    expect(distinct).toContain('new+old|new-leaf');
  }, 30_000);
});

describe('CA rotation with two replicas sharing the Secret', () => {
  it('both replicas stay trusted by the registered caBundle through the whole rotation', async () => {
    const api = await startFakeApiServer();
    const now = Date.now();
    const oldCa = await generateCa('old-ca', now, 100);
    const oldLeaf = await issueServingCertificate(oldCa, 'podvisor', 'podvisor-system', now, 90);
    api.put('secrets', {
      metadata: { name: 'podvisor-tls', namespace: 'podvisor-system' },
      type: 'kubernetes.io/tls',
      data: { [TLS_SECRET_KEYS.ca]: b64(oldCa.cert), [TLS_SECRET_KEYS.caKey]: b64(oldCa.key), [TLS_SECRET_KEYS.cert]: b64(oldLeaf.cert), [TLS_SECRET_KEYS.key]: b64(oldLeaf.key) },
    });
    const config = () =>
      parseConfig({
        logLevel: 'silent',
        server: { address: '127.0.0.1', opsAddress: '127.0.0.1', port: 0, opsPort: 0, drainSeconds: 0 },
        tls: { certDir: mkdtempSync(join(tmpdir(), 'podvisor-unused-')) },
        certificates: { checkIntervalSeconds: 1 },
      });
    const options = { kubeConfig: api.kubeConfig(), register: true, cluster: { propagationMs: 1200, retireAfterMs: 3000 } };
    const replicas = [await startServer(config(), pino({ level: 'silent' }), options), await startServer(config(), pino({ level: 'silent' }), options)];
    const served = (port: number, bundle: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername: 'podvisor.podvisor-system.svc', ca: bundle }, () => {
          const raw = socket.getPeerCertificate().raw.toString('base64');
          socket.end();
          resolve(raw);
        });
        socket.on('error', reject);
      });
    const oldDer = new X509Certificate(oldCa.cert).raw.toString('base64');
    let probes = 0;
    try {
      const deadline = Date.now() + 20_000;
      while (api.get('mutatingwebhookconfigurations', '', 'podvisor', 'admissionregistration.k8s.io/v1') === undefined) await new Promise((r) => setTimeout(r, 20));
      for (;;) {
        const mwc = api.get('mutatingwebhookconfigurations', '', 'podvisor', 'admissionregistration.k8s.io/v1') as MutatingWebhookConfiguration;
        const bundle = unb64(mwc.webhooks?.[0]?.clientConfig.caBundle);
        // Both replicas must be trusted by what is registered now (a rejection fails the test).
        const leaves = await Promise.all(replicas.map((r) => served(r.admissionPort, bundle)));
        probes++;
        const issuer = leaves.map((l) => new X509Certificate(Buffer.from(l, 'base64')));
        const done = !bundleCertificates(bundle).includes(oldDer) && issuer.every((c) => !c.checkIssued(new X509Certificate(oldCa.cert)));
        if (done) break;
        if (Date.now() > deadline) throw new Error('rotation did not finish');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      for (const r of replicas) await r.shutdown('test done');
      await api.close();
    }
    expect(probes).toBeGreaterThan(10);
    // One replica performs each step; the other reads it (a second write of the same step would be a Conflict).
    const writes = api.requestsTo('PUT', '/api/v1/namespaces/podvisor-system/secrets/podvisor-tls');
    expect(writes.length).toBeGreaterThanOrEqual(3);
  }, 40_000);
});
