// A validating webhook of the test's own, for the end-to-end suite: HTTPS on 127.0.0.1 with a certificate of its own CA,
// allowing everything it is sent, after `beforeAnswer` resolves. A test holds requests in the apiserver's admission
// chain with it (two creates held until both are in flight), or registers it with a wrong caBundle and times how
// long the apiserver takes to use a corrected one.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateServingCertificate } from '../../src/server/certificate-authority.js';

export interface AdmissionReviewRequest {
  readonly uid: string;
  readonly operation: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly dryRun?: boolean;
}

export interface AdmissionHook {
  /** `https://127.0.0.1:PORT/validate` */
  readonly url: string;
  /** The PEM of the CA its serving certificate chains to: what a caBundle must hold to call it. */
  readonly ca: string;
  /** Every review received, in order. */
  readonly reviews: readonly AdmissionReviewRequest[];
  close(): Promise<void>;
}

export async function startAdmissionHook(options: { beforeAnswer?: (review: AdmissionReviewRequest) => Promise<void> } = {}): Promise<AdmissionHook> {
  const tls = await generateServingCertificate('e2e-hook', 'e2e');
  const reviews: AdmissionReviewRequest[] = [];
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (c: string) => (body += c));
    request.on('end', () => {
      const review = (JSON.parse(body) as { request: AdmissionReviewRequest }).request;
      reviews.push(review);
      void (options.beforeAnswer?.(review) ?? Promise.resolve()).then(() => {
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.uid, allowed: true } }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}/validate`,
    ca: tls.ca,
    reviews,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
