import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTls, RENEW_BEFORE_DAYS } from '../src/server/tls.js';

const options = (certDir: string) => ({ certDir, service: 'podvisor', namespace: 'podvisor-system' });
const DAY = 86_400_000;

describe('TLS material', () => {
  it('generates a CA and an ECDSA serving certificate signed with SHA-256 for the service names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-tls-'));
    const tls = await loadTls(options(dir));
    expect(tls.origin).toBe('generated');
    const cert = new X509Certificate(tls.cert);
    const ca = new X509Certificate(tls.ca!);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    for (const name of ['localhost', 'podvisor.podvisor-system.svc', 'podvisor.podvisor-system.svc.cluster.local']) {
      expect(cert.checkHost(name)).toBe(name);
    }
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('podvisor.other.svc')).toBeUndefined();
    // The kube-apiserver (Go) rejects SHA-1 signatures: the signature algorithm must be SHA-256.
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: tls.cert, encoding: 'utf8' });
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(text).not.toMatch(/SHA1/i);
    const verify = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', 'sslserver', join(dir, 'tls.crt')], { encoding: 'utf8' });
    expect(verify.trim()).toMatch(/OK$/);
    // Kubernetes TLS Secret names; the key is not world-readable.
    expect(readFileSync(join(dir, 'tls.key'), 'utf8')).toContain('PRIVATE KEY');
    expect(statSync(join(dir, 'tls.key')).mode & 0o077).toBe(0);
  });

  it('reuses valid files on restart, regenerates when fewer than 30 days are left or the service changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-tls-'));
    const first = await loadTls(options(dir));
    const second = await loadTls(options(dir));
    expect(second).toMatchObject({ origin: 'reused', cert: first.cert, key: first.key, ca: first.ca });
    const notAfter = Date.parse(new X509Certificate(first.cert).validTo);
    const late = await loadTls(options(dir), notAfter - (RENEW_BEFORE_DAYS - 1) * DAY);
    expect(late.origin).toBe('generated');
    expect(late.cert).not.toBe(first.cert);
    const renamed = await loadTls({ ...options(dir), service: 'other' });
    expect(renamed.origin).toBe('generated');
  });

  it('uses the given certificate and key files as they are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'podvisor-tls-'));
    const generated = await loadTls(options(dir));
    const certFile = join(dir, 'given.crt');
    const keyFile = join(dir, 'given.key');
    writeFileSync(certFile, generated.cert);
    writeFileSync(keyFile, generated.key);
    const other = mkdtempSync(join(tmpdir(), 'podvisor-tls-'));
    const tls = await loadTls({ ...options(other), certFile, keyFile });
    expect(tls).toEqual({ cert: generated.cert, key: generated.key, origin: 'files' });
    expect(existsSync(join(other, 'tls.crt'))).toBe(false);
  });
});
