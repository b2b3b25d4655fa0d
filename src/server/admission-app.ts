import type { Server } from 'node:https';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { reviewMutation } from '../admission/mutate-review.js';
import { MalformedReviewError, parseAdmissionReview, reviewResponse } from '../admission/review.js';
import { MalformedObjectError } from '../workload/pod-shape.js';
import type { AdmissionRequest, AdmissionResponse } from '../admission/types.js';
import type { MutationEnvironment, MutationOutcome } from '../mutation/pipeline.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { countPolicyDecisions, registerValidateRoute } from './validate-route.js';

export interface AdmissionAppOptions {
  readonly tls: { readonly cert: string; readonly key: string };
  readonly bodyLimitBytes: number;
  readonly keepAliveTimeoutMs: number;
  /** Read on every review, so a reloaded config applies atomically to the next request. */
  readonly environment: () => MutationEnvironment;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * Called after each /mutate answer is computed (Events, src/k8s/events.ts). It must only queue work: it runs on the
   * request path, and an exception it throws is logged, never turned into a failed answer.
   */
  readonly onReview?: (request: AdmissionRequest, response: AdmissionResponse, outcome: MutationOutcome) => void;
}

/** The HTTPS admission server: `POST /mutate` (HTTP/1.1 — the apiserver does not speak h2 to Service webhooks). */
export function buildAdmissionApp(options: AdmissionAppOptions): FastifyInstance<Server> {
  const { log, metrics } = options;
  const app = Fastify({
    https: { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' },
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    // Above client-go's 90 s IdleConnTimeout, so the apiserver never reuses a connection the server just closed.
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // The apiserver's webhook timeout is at most 30 s.
    requestTimeout: 30_000,
    // While closing, requests on open keep-alive connections are served (with Connection: close), never 503:
    // the apiserver would count a 503 as a failed call and apply failurePolicy.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance<Server>;

  // Every body goes through one JSON parser, whatever its Content-Type, so anything that is not JSON is a 400.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(Object.assign(new Error(`body: not valid JSON (${(err as Error).message})`), { statusCode: 400, code: 'PODVISOR_INVALID_JSON' }), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    if (statusCode < 500) {
      metrics.malformed.inc({ endpoint: request.url });
      log.warn({ url: request.url, statusCode, code: err.code }, err.message);
      return reply.code(statusCode).send({ error: err.code ?? 'BadRequest', message: err.message });
    }
    log.error({ err, url: request.url }, 'request failed');
    return reply.code(500).send({ error: 'InternalError', message: 'internal error' });
  });

  app.post('/mutate', (request, reply) => {
    const started = process.hrtime.bigint();
    let review, result;
    try {
      review = parseAdmissionReview(request.body);
      result = reviewMutation(review, options.environment());
    } catch (err) {
      if (!(err instanceof MalformedReviewError || err instanceof MalformedObjectError)) throw err;
      const message = err instanceof MalformedObjectError ? `request.object.${err.message}` : err.message;
      metrics.malformed.inc({ endpoint: '/mutate' });
      log.warn({ endpoint: '/mutate' }, `malformed AdmissionReview: ${message}`);
      return reply.code(400).send({ error: 'MalformedAdmissionReview', message });
    }
    const { response, outcome, decisions } = result;
    countPolicyDecisions(metrics, decisions);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const decision = !response.allowed ? 'denied' : response.patch !== undefined ? 'patched' : 'allowed';
    const kind = review.kind.kind;
    metrics.reviewDuration.observe({ endpoint: 'mutate', kind, operation: review.operation, decision }, seconds);
    for (const feature of outcome.injected) metrics.injections.inc({ feature, kind });
    if (outcome.skip !== undefined) metrics.skips.inc({ reason: outcome.skip });
    log.info(
      {
        uid: review.uid,
        kind,
        namespace: review.namespace,
        name: review.name ?? (review.object?.['metadata'] as { generateName?: string } | undefined)?.generateName,
        operation: review.operation,
        features: outcome.features,
        injected: outcome.injected,
        skip: outcome.skip,
        decision,
        durationMs: Math.round(seconds * 1e6) / 1e3,
      },
      'review',
    );
    if (options.onReview !== undefined) {
      try {
        options.onReview(review, response, outcome);
      } catch (err) {
        log.warn({ err }, 'review observer failed');
      }
    }
    return reviewResponse(response);
  });

  registerValidateRoute(app, { environment: options.environment, log, metrics });

  return app;
}
