import { createServer, type Server } from 'node:https';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { reviewMutation } from '../admission/mutate-review.js';
import { MalformedReviewError, parseAdmissionReview, REVIEW_CONTENT_TYPE, serializeReviewResponse } from '../admission/review.js';
import { MalformedObjectError } from '../workload/pod-shape.js';
import type { AdmissionRequest, AdmissionResponse } from '../admission/types.js';
import type { MutationEnvironment, MutationOutcome } from '../mutation/pipeline.js';
import { writeReviewLine, type Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createBodyBudget, parseJsonBody } from './body-budget.js';
import { countPolicyDecisions, registerValidateRoute } from './validate-route.js';

/** What a client may hold: the defaults are config `server.*` (src/config/schema.ts). */
export interface ConnectionLimits {
  readonly maxConnections: number;
  readonly maxInFlightBodies: number;
  readonly maxInFlightBodyBytes: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 512,
  maxInFlightBodies: 64,
  maxInFlightBodyBytes: 48 * 1024 * 1024,
  headersTimeoutMs: 2_000,
  bodyTimeoutMs: 3_000,
};

export interface AdmissionAppOptions {
  readonly tls: { readonly cert: string; readonly key: string };
  readonly bodyLimitBytes: number;
  readonly keepAliveTimeoutMs: number;
  readonly limits?: Partial<ConnectionLimits>;
  /** Read on every review, so a reloaded config applies atomically to the next request. */
  readonly environment: () => MutationEnvironment;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * Called after each /mutate answer is computed (Events, src/k8s/events.ts). It must only queue work: it runs on the
   * request path, and an exception it throws is logged, never turned into a failed answer.
   */
  readonly onReview?: (request: AdmissionRequest, response: AdmissionResponse, outcome: MutationOutcome) => void;
  /** The same for each /validate answer (Denied Events); the same rules. */
  readonly onValidate?: (request: AdmissionRequest, response: AdmissionResponse) => void;
}

/** The HTTPS admission server: `POST /mutate` (HTTP/1.1 — the apiserver does not speak h2 to Service webhooks). */
export function buildAdmissionApp(options: AdmissionAppOptions): FastifyInstance<Server> {
  const { log, metrics } = options;
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...options.limits };
  const bodies = createBodyBudget({ maxBytes: options.bodyLimitBytes, maxInFlight: limits.maxInFlightBodies, maxInFlightBytes: limits.maxInFlightBodyBytes });
  const app = Fastify({
    // A hostile client is bounded here: connections, time to send headers and body (well below the apiserver's
    // webhook timeout, podvisor's default 5 s; the apiserver sends a review at once) and a TLS handshake.
    serverFactory: (handler) => {
      // Every body counts against the in-flight budget from its request's arrival (body-budget.ts).
      const server = createServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: limits.headersTimeoutMs,
          headersTimeout: limits.headersTimeoutMs,
          // The whole request, headers and body (Node answers 408 and closes).
          requestTimeout: Math.max(limits.bodyTimeoutMs, limits.headersTimeoutMs),
          // Above client-go's 90 s IdleConnTimeout, so the apiserver never reuses a connection the server just closed.
          keepAliveTimeout: options.keepAliveTimeoutMs,
          // How often the two timeouts above are checked (Node's default, 30 s, would let a stalled body live that long).
          connectionsCheckingInterval: 500,
        },
        (request, response) => {
          bodies.admit(request);
          handler(request, response);
        },
      );
      server.maxConnections = limits.maxConnections;
      // A connection that sends no request: Node's header timeout only starts with a request's first byte. Once a
      // response is written, Node's keep-alive timeout replaces this one.
      server.on('secureConnection', (socket) => socket.setTimeout(limits.headersTimeoutMs));
      return server;
    },
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    // While closing, requests on open keep-alive connections are served (with Connection: close), never 503:
    // the apiserver would count a 503 as a failed call and apply failurePolicy.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance<Server>;

  // Every body goes through one JSON parser, whatever its Content-Type, so anything that is not JSON is a 400. fastify
  // reads it as a string (bodyLimit: 413 past the limit); the bodies in flight are bounded together (body-budget.ts).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, text, done) => {
    bodies.release(request.raw);
    let body: unknown;
    try {
      body = parseJsonBody(text as string);
    } catch (err) {
      done(err as Error, undefined);
      return;
    }
    done(null, body);
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const statusCode = err.statusCode !== undefined && err.statusCode >= 400 ? err.statusCode : 500;
    // The route, not the URL: a client chooses the URL, and the label set must stay bounded.
    const endpoint = request.routeOptions.url ?? 'unknown';
    if (statusCode === 503) {
      log.warn({ endpoint, statusCode, code: err.code }, err.message);
      return reply.code(statusCode).send({ error: err.code, message: err.message });
    }
    if (statusCode < 500) {
      metrics.malformed.inc({ endpoint });
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
    // A metric label only for the kinds podvisor handles: anyone reaching the Service can send any kind.
    const kind = outcome.skip === 'unsupported_kind' ? 'other' : review.kind.kind;
    metrics.reviewDuration.observe({ endpoint: 'mutate', kind, operation: review.operation, decision }, seconds);
    for (const feature of outcome.injected) metrics.injections.inc({ feature, kind });
    if (outcome.skip !== undefined) metrics.skips.inc({ reason: outcome.skip });
    writeReviewLine(log, {
      uid: review.uid,
      kind,
      namespace: review.namespace,
      name: review.name ?? (review.object?.['metadata'] as { generateName?: unknown } | undefined)?.generateName,
      operation: review.operation,
      features: outcome.features,
      injected: outcome.injected,
      skip: outcome.skip,
      decision,
      durationMs: Math.round(seconds * 1e6) / 1e3,
    });
    if (options.onReview !== undefined) {
      try {
        options.onReview(review, response, outcome);
      } catch (err) {
        log.warn({ err }, 'review observer failed');
      }
    }
    // Serialized here, once; fastify sends a string with its content type as it is.
    return reply.type(REVIEW_CONTENT_TYPE).send(serializeReviewResponse(response));
  });

  registerValidateRoute(app, { environment: options.environment, log, metrics, onReview: options.onValidate });

  return app;
}
