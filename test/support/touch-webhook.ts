// A second mutating webhook for the end-to-end suite: it changes every Pod it is sent (an annotation counting its calls),
// registered in a configuration named to sort after `podvisor`, so the apiserver calls podvisor again
// (reinvocationPolicy IfNeeded, kubernetes-rules.md §3). It can also add a sidecar container, as a sidecar injector
// does, to check that podvisor's second pass covers the new container and nothing else.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { generateServingCertificate } from '../../src/server/certificate-authority.js';
import { apiRequest } from './control-plane.js';

export const TOUCH_CONFIGURATION = 'zz-e2e-touch';
export const TOUCH_ANNOTATION = 'e2e.podvisor.io/touched';
export const SIDECAR = 'e2e-sidecar';

export interface TouchWebhook {
  readonly calls: number;
  close(): Promise<void>;
}

export async function startTouchWebhook(admin: KubeConfig, options: { namespace: string; addSidecar: boolean }): Promise<TouchWebhook> {
  const tls = await generateServingCertificate('touch', 'e2e');
  let calls = 0;
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (c: string) => (body += c));
    request.on('end', () => {
      calls += 1;
      const review = JSON.parse(body) as { request: { uid: string; object: { metadata?: { annotations?: Record<string, string> }; spec: { containers: { name: string }[] } } } };
      const pod = review.request.object;
      const patch: unknown[] = [];
      if (pod.metadata?.annotations === undefined) patch.push({ op: 'add', path: '/metadata/annotations', value: {} });
      patch.push({ op: 'add', path: `/metadata/annotations/${TOUCH_ANNOTATION.replace('/', '~1')}`, value: String(calls) });
      if (options.addSidecar && !pod.spec.containers.some((c) => c.name === SIDECAR)) {
        patch.push({ op: 'add', path: '/spec/containers/-', value: { name: SIDECAR, image: 'registry.example/sidecar:1' } });
      }
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const configuration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: TOUCH_CONFIGURATION },
    webhooks: [
      {
        name: 'touch.e2e.podvisor.io',
        admissionReviewVersions: ['v1'],
        clientConfig: { url: `https://127.0.0.1:${port}/touch`, caBundle: Buffer.from(tls.ca).toString('base64') },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }],
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': options.namespace } },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        reinvocationPolicy: 'Never',
        timeoutSeconds: 5,
      },
    ],
  };
  const created = await apiRequest(admin, 'POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', configuration);
  if (created.status !== 201) throw new Error(`registering the touch webhook: ${created.status} ${JSON.stringify(created.body)}`);
  return {
    get calls() {
      return calls;
    },
    async close() {
      await apiRequest(admin, 'DELETE', `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${TOUCH_CONFIGURATION}`);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
