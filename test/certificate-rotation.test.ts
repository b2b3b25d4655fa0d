// Certificate lifecycle: the pure step function. The order it walks: new CA added to the bundle → serving certificate
// switches → old CA removed. A whole rotation by two replicas against the real kube-apiserver, probed all along by TLS
// clients trusting only the registered caBundle while Pods are created, is in test/e2e/tls.test.ts.
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { applyRotationStep, generateBundle, nextRotationStep, type CertificatePolicy } from '../src/k8s/certificates.js';
import { DAY_MS } from '../src/server/certificate-authority.js';

const policy: CertificatePolicy = { service: 'podvisor', namespace: 'podvisor-system', caDays: 3650, caRenewBeforeDays: 400, leafDays: 365, leafRenewBeforeDays: 30, retireAfterMs: 600_000 };

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
