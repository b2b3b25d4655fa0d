import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DAY_MS, generateServingCertificate, serviceDnsNames } from './certificate-authority.js';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** PEM of the CA that signed `cert`, when podvisor generated it (the webhook caBundle). */
  readonly ca?: string;
  /** Where the material came from, for the log. */
  readonly origin: 'files' | 'reused' | 'generated';
}

/** Regenerate a reused certificate with less than this left. */
export const RENEW_BEFORE_DAYS = 30;

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
