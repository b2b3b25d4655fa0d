// What the kube-apiserver trusts when it calls podvisor (the caBundle of each registered webhook entry), and a TLS
// handshake that trusts only that, as the apiserver's own does: a replica whose certificate it would refuse fails here.
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { apiRequest } from './control-plane.js';

export const MUTATING_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/podvisor';
export const VALIDATING_PATH = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/podvisor';

/** The decoded caBundle of every webhook entry of both podvisor configurations (none when neither exists). */
export async function registeredBundles(admin: KubeConfig): Promise<string[]> {
  const bundles: string[] = [];
  for (const path of [MUTATING_PATH, VALIDATING_PATH]) {
    const answer = await apiRequest(admin, 'GET', path);
    if (answer.status !== 200) continue;
    for (const webhook of (answer.body as { webhooks?: { clientConfig: { caBundle?: string } }[] }).webhooks ?? []) {
      bundles.push(Buffer.from(webhook.clientConfig.caBundle ?? '', 'base64').toString('utf8'));
    }
  }
  return bundles;
}

/** The one caBundle every entry holds; throws when entries disagree (a registration half-way through). */
export async function registeredBundle(admin: KubeConfig): Promise<string> {
  const bundles = await registeredBundles(admin);
  if (bundles.length === 0) throw new Error('nothing registered');
  if (new Set(bundles).size !== 1) throw new Error(`the webhook entries hold ${new Set(bundles).size} different caBundles`);
  return bundles[0]!;
}

/**
 * The certificate served at 127.0.0.1:`port`, by a handshake trusting only `caPem` and checking the address against the
 * certificate's names (the apiserver calls https://127.0.0.1:PORT). Rejects when the certificate is not trusted.
 */
export function servedCertificate(port: number, caPem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: caPem }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.end();
      if (certificate === undefined) reject(new Error('no peer certificate'));
      else resolve(certificate);
    });
    socket.once('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`TLS handshake with 127.0.0.1:${port} timed out`)));
  });
}

/** Normalised DER (base64) of a PEM certificate, to compare certificates whatever their line endings. */
export function der(pem: string | X509Certificate): string {
  return (typeof pem === 'string' ? new X509Certificate(pem) : pem).raw.toString('base64');
}
