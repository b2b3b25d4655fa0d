import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** PEM of the CA that signed `cert`, when podvisor generated it (the webhook caBundle). */
  readonly ca?: string;
  /** Where the material came from, for the log. */
  readonly origin: 'files' | 'reused' | 'generated';
}

const DAY_MS = 86_400_000;
/** Regenerate a reused certificate with less than this left. */
export const RENEW_BEFORE_DAYS = 30;

/** DNS names the apiserver may use for the Service: it verifies `<service>.<namespace>.svc`. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return ['localhost', service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

/**
 * A CA and a serving certificate signed by it: ECDSA P-256, SHA-256. selfsigned defaults to SHA-1, which Go (the
 * kube-apiserver) rejects, so the algorithm is always given.
 */
export async function generateServingCertificate(service: string, namespace: string, now = Date.now()): Promise<{ ca: string; cert: string; key: string }> {
  const common = { algorithm: 'sha256', keyType: 'ec', curve: 'P-256' } as const;
  const ca = await generate([{ name: 'commonName', value: `${service}-ca` }], {
    ...common,
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 3650 * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: `${service}.${namespace}.svc` }], {
    ...common,
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 365 * DAY_MS),
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...serviceDnsNames(service, namespace).map((value) => ({ type: 2 as const, value })), { type: 7 as const, ip: '127.0.0.1' }],
      },
    ],
  });
  return { ca: ca.cert, cert: leaf.cert, key: leaf.private };
}

/** Still usable: signed by `ca`, valid for RENEW_BEFORE_DAYS more, and naming the configured service. */
function reusable(certPem: string, caPem: string, service: string, namespace: string, now: number): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    const names = serviceDnsNames(service, namespace);
    return (
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      Date.parse(cert.validTo) - now > RENEW_BEFORE_DAYS * DAY_MS &&
      names.every((name) => cert.checkHost(name) !== undefined)
    );
  } catch {
    return false;
  }
}

export interface TlsOptions {
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly certDir: string;
  readonly service: string;
  readonly namespace: string;
}

/**
 * Given files win. Otherwise reuse `certDir/{ca.crt,tls.crt,tls.key}` (the names of a Kubernetes TLS Secret)
 * while valid, or generate and write them.
 */
export async function loadTls(options: TlsOptions, now = Date.now()): Promise<TlsMaterial> {
  if (options.certFile !== undefined && options.keyFile !== undefined) {
    const [cert, key] = await Promise.all([readFile(options.certFile, 'utf8'), readFile(options.keyFile, 'utf8')]);
    return { cert, key, origin: 'files' };
  }
  const paths = { ca: join(options.certDir, 'ca.crt'), cert: join(options.certDir, 'tls.crt'), key: join(options.certDir, 'tls.key') };
  const existing = await Promise.all([paths.ca, paths.cert, paths.key].map((p) => readFile(p, 'utf8').catch(() => undefined)));
  const [ca, cert, key] = existing;
  if (ca !== undefined && cert !== undefined && key !== undefined && reusable(cert, ca, options.service, options.namespace, now)) {
    return { ca, cert, key, origin: 'reused' };
  }
  const generated = await generateServingCertificate(options.service, options.namespace, now);
  await mkdir(options.certDir, { recursive: true });
  await writeFile(paths.ca, generated.ca, { mode: 0o644 });
  await writeFile(paths.cert, generated.cert, { mode: 0o644 });
  await writeFile(paths.key, generated.key, { mode: 0o600 });
  return { ...generated, origin: 'generated' };
}
