import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { BACKDATE_MS, DAY_MS, generateCa, issueServingCertificate, serviceDnsNames } from '../server/certificate-authority.js';

/** What the shared Secret holds: the CA (with its key, so any replica can issue), the serving pair, the CA being retired. */
export interface TlsBundle {
  readonly ca: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
  readonly previousCa?: string | undefined;
}

export interface CertificatePolicy {
  readonly service: string;
  readonly namespace: string;
  readonly caDays: number;
  readonly caRenewBeforeDays: number;
  readonly leafDays: number;
  readonly leafRenewBeforeDays: number;
  /** The retired CA leaves the caBundle only once the new serving certificate is this old (every replica has it). */
  readonly retireAfterMs: number;
  /** More names the serving certificate must hold: the host of `--webhook-url` (dev mode). */
  readonly hosts?: readonly string[] | undefined;
}

/** Every name the serving certificate must be valid for. */
function requiredNames(policy: CertificatePolicy): string[] {
  return [...serviceDnsNames(policy.service, policy.namespace), ...(policy.hosts ?? [])];
}

export async function generateBundle(policy: CertificatePolicy, now: number): Promise<TlsBundle> {
  const ca = await generateCa(`${policy.service}-ca-${new Date(now).toISOString().slice(0, 10)}`, now, policy.caDays);
  const leaf = await issueServingCertificate(ca, policy.service, policy.namespace, now, policy.leafDays, policy.hosts);
  return { ca: ca.cert, caKey: ca.key, cert: leaf.cert, key: leaf.key };
}

/** The PEM the apiserver must trust: the current CA, then the one being retired. */
export function caBundlePem(bundle: TlsBundle): string {
  return [bundle.ca, bundle.previousCa].filter((p): p is string => p !== undefined && p !== '').map((p) => p.trim() + '\n').join('');
}

export function notAfter(pem: string): number {
  return Date.parse(new X509Certificate(pem).validTo);
}

/** Normalised DER of a PEM certificate (whitespace and line endings do not matter). */
function der(pem: string): string {
  return new X509Certificate(pem).raw.toString('base64');
}

/** The certificates of a PEM bundle, as normalised DER. */
export function bundleCertificates(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const result: string[] = [];
  for (const block of blocks) {
    try {
      result.push(der(block));
    } catch {
      // an unparsable block trusts nothing
    }
  }
  return result;
}

export function bundleTrusts(bundlePem: string, caPem: string): boolean {
  return bundleCertificates(bundlePem).includes(der(caPem));
}

function issuedBy(leafPem: string, caPem: string): boolean {
  const leaf = new X509Certificate(leafPem);
  const ca = new X509Certificate(caPem);
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}

/** Whether the private key belongs to the certificate. */
function keyMatches(certPem: string, keyPem: string): boolean {
  return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
}

export type RotationStep =
  /** Nothing to do. */
  | { readonly kind: 'none' }
  /** The Secret is unusable (missing key, mismatched key, expired CA): start over with a new CA. */
  | { readonly kind: 'regenerate'; readonly reason: string }
  /** The CA nears expiry: a new CA becomes current, the old one `previousCa`; the serving certificate stays (still trusted). */
  | { readonly kind: 'new-ca' }
  /** The serving certificate is from the retired CA and the apiserver already trusts the new CA: issue from the new one. */
  | { readonly kind: 'switch-serving' }
  /** Waiting for the new CA to be in every webhook's caBundle before switching. */
  | { readonly kind: 'wait-for-bundle' }
  /** The serving certificate nears expiry or no longer names the Service: a new one from the same CA. */
  | { readonly kind: 'renew-serving'; readonly reason: string }
  /** Every replica serves a certificate of the new CA: the retired CA leaves the caBundle. */
  | { readonly kind: 'retire-previous-ca' };

/**
 * The next step of the certificate lifecycle, decided from the Secret alone (plus whether the apiserver's caBundle
 * already holds the current CA), so every replica reaches the same decision and a replica that restarts mid-way
 * resumes where the Secret says. The order guarantees the apiserver always trusts the certificate it is shown:
 * 1. new-ca: bundle [new, old], serving cert still from old;  2. switch-serving: only once the webhooks' caBundle holds
 * the new CA;  3. retire-previous-ca: bundle [new] only once the new serving certificate is `retireAfterMs` old.
 */
export function nextRotationStep(bundle: TlsBundle, policy: CertificatePolicy, now: number, newCaTrusted: boolean): RotationStep {
  try {
    if (!keyMatches(bundle.ca, bundle.caKey)) return { kind: 'regenerate', reason: 'ca.key does not match ca.crt' };
    if (notAfter(bundle.ca) <= now) return { kind: 'regenerate', reason: 'the CA has expired' };
    if (!keyMatches(bundle.cert, bundle.key)) return { kind: 'renew-serving', reason: 'tls.key does not match tls.crt' };
  } catch (err) {
    return { kind: 'regenerate', reason: `unreadable certificate or key: ${(err as Error).message}` };
  }
  const fromCurrent = issuedBy(bundle.cert, bundle.ca);
  const fromPrevious = bundle.previousCa !== undefined && !fromCurrent && issuedBy(bundle.cert, bundle.previousCa);
  if (!fromCurrent && !fromPrevious) return { kind: 'renew-serving', reason: 'tls.crt is not signed by the CA' };
  if (fromPrevious) return newCaTrusted ? { kind: 'switch-serving' } : { kind: 'wait-for-bundle' };
  if (bundle.previousCa === undefined && notAfter(bundle.ca) - now < policy.caRenewBeforeDays * DAY_MS) return { kind: 'new-ca' };
  const leaf = new X509Certificate(bundle.cert);
  if (Date.parse(leaf.validTo) - now < policy.leafRenewBeforeDays * DAY_MS && Date.parse(leaf.validTo) < notAfter(bundle.ca)) {
    return { kind: 'renew-serving', reason: 'the serving certificate expires soon' };
  }
  if (Date.parse(leaf.validTo) <= now) return { kind: 'renew-serving', reason: 'the serving certificate has expired' };
  const missing = requiredNames(policy).find((name) => (isIP(name) !== 0 ? leaf.checkIP(name) : leaf.checkHost(name)) === undefined);
  if (missing !== undefined) return { kind: 'renew-serving', reason: `the serving certificate does not name ${missing}` };
  if (bundle.previousCa !== undefined) {
    const issuedAt = Date.parse(leaf.validFrom) + BACKDATE_MS;
    if (now - issuedAt >= policy.retireAfterMs || notAfter(bundle.previousCa) <= now) return { kind: 'retire-previous-ca' };
  }
  return { kind: 'none' };
}

/** Applies a step; pure except for key generation. */
export async function applyRotationStep(bundle: TlsBundle, step: RotationStep, policy: CertificatePolicy, now: number): Promise<TlsBundle> {
  switch (step.kind) {
    case 'none':
    case 'wait-for-bundle':
      return bundle;
    case 'regenerate': {
      // Replicas still serving a certificate of the old CA stay trusted until they reload: keep it as previousCa
      // when it is still a valid certificate.
      const fresh = await generateBundle(policy, now);
      let previousCa: string | undefined;
      try {
        previousCa = notAfter(bundle.ca) > now ? bundle.ca : undefined;
      } catch {
        previousCa = undefined;
      }
      return { ...fresh, previousCa };
    }
    case 'new-ca': {
      const ca = await generateCa(`${policy.service}-ca-${new Date(now).toISOString().slice(0, 10)}`, now, policy.caDays);
      return { ca: ca.cert, caKey: ca.key, cert: bundle.cert, key: bundle.key, previousCa: bundle.ca };
    }
    case 'switch-serving':
    case 'renew-serving': {
      const leaf = await issueServingCertificate({ cert: bundle.ca, key: bundle.caKey }, policy.service, policy.namespace, now, policy.leafDays, policy.hosts);
      return { ...bundle, cert: leaf.cert, key: leaf.key };
    }
    case 'retire-previous-ca':
      return { ca: bundle.ca, caKey: bundle.caKey, cert: bundle.cert, key: bundle.key };
  }
}
