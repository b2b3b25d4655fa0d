import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

// Certificate generation, one place for the offline server (src/server/tls.ts) and the shared, rotated Secret
// (src/k8s/certificates.ts).

export const DAY_MS = 86_400_000;
/** Certificates start this long in the past, so a replica or apiserver whose clock is a little behind accepts them. */
export const BACKDATE_MS = 60_000;

/** DNS names the apiserver may use for the Service: it verifies `<service>.<namespace>.svc`. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return ['localhost', service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

// selfsigned defaults to SHA-1, which Go (the kube-apiserver) rejects: always sha256 (typescript-stack.md §0.6).
const ALGORITHM = { algorithm: 'sha256', keyType: 'ec', curve: 'P-256' } as const;

export async function generateCa(commonName: string, now: number, days: number): Promise<{ cert: string; key: string }> {
  const ca = await generate([{ name: 'commonName', value: commonName }], {
    ...ALGORITHM,
    notBeforeDate: new Date(now - BACKDATE_MS),
    notAfterDate: new Date(now + days * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

/** A subjectAltName entry: an IP address (type 7) or a DNS name (type 2). */
function altName(host: string): { type: 2; value: string } | { type: 7; ip: string } {
  return isIP(host) !== 0 ? { type: 7, ip: host } : { type: 2, value: host };
}

/**
 * A serving certificate for `<service>.<namespace>.svc` (the name the apiserver verifies) and 127.0.0.1, plus `hosts`
 * (the host of `--webhook-url` in dev mode), never outliving its CA.
 */
export async function issueServingCertificate(
  ca: { cert: string; key: string },
  service: string,
  namespace: string,
  now: number,
  days: number,
  hosts: readonly string[] = [],
): Promise<{ cert: string; key: string }> {
  const caEnd = Date.parse(new X509Certificate(ca.cert).validTo);
  const leaf = await generate([{ name: 'commonName', value: `${service}.${namespace}.svc` }], {
    ...ALGORITHM,
    notBeforeDate: new Date(now - BACKDATE_MS),
    notAfterDate: new Date(Math.min(now + days * DAY_MS, caEnd)),
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [...new Set([...serviceDnsNames(service, namespace), '127.0.0.1', ...hosts])].map(altName),
      },
    ],
  });
  return { cert: leaf.cert, key: leaf.private };
}

/** A fresh CA (10 years) and a serving certificate (1 year) signed by it, for a server with no certificate yet. */
export async function generateServingCertificate(service: string, namespace: string, now = Date.now()): Promise<{ ca: string; cert: string; key: string }> {
  const ca = await generateCa(`${service}-ca`, now, 3650);
  const leaf = await issueServingCertificate(ca, service, namespace, now, 365);
  return { ca: ca.cert, ...leaf };
}
