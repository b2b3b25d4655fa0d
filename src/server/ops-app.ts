import Fastify, { type FastifyInstance } from 'fastify';
import type { Metrics } from '../observability/metrics.js';

export interface OpsAppOptions {
  readonly metrics: Metrics;
  /** Ready only once TLS material and config are loaded and the admission server listens; false while draining. */
  readonly ready: () => boolean;
}

/** Plain HTTP on a second port: kubelet probes and Prometheus never need the webhook's TLS. */
export function buildOpsApp(options: OpsAppOptions): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', (_request, reply) => (options.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' })));
  app.get('/metrics', async (_request, reply) => reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics()));
  return app;
}
