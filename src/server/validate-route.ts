import type { Server } from 'node:https';
import type { FastifyInstance } from 'fastify';
import { MalformedReviewError, parseAdmissionReview, REVIEW_CONTENT_TYPE, serializeReviewResponse } from '../admission/review.js';
import type { AdmissionRequest, AdmissionResponse } from '../admission/types.js';
import type { MutationEnvironment } from '../mutation/pipeline.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { AUDIT_ANNOTATION } from '../policy/answer.js';
import { reviewValidation } from '../policy/validate-review.js';
import type { PolicyDecision } from '../policy/validate.js';

export interface ValidateRouteOptions {
  readonly environment: () => MutationEnvironment;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Called after each answer is computed; it must only queue work, and what it throws is logged, never answered. */
  readonly onReview?: ((request: AdmissionRequest, response: AdmissionResponse) => void) | undefined;
}

export function countPolicyDecisions(metrics: Metrics, decisions: readonly PolicyDecision[] | undefined): void {
  for (const d of decisions ?? []) metrics.policyDecisions.inc({ policy: d.policy, rule: d.rule, mode: d.mode, decision: d.decision });
}

/** `POST /validate` for the ValidatingWebhookConfiguration: the namespace policy on the final object (src/policy). */
export function registerValidateRoute(app: FastifyInstance<Server>, options: ValidateRouteOptions): void {
  const { log, metrics } = options;
  app.post('/validate', (request, reply) => {
    const started = process.hrtime.bigint();
    let review;
    try {
      review = parseAdmissionReview(request.body);
    } catch (err) {
      if (!(err instanceof MalformedReviewError)) throw err;
      metrics.malformed.inc({ endpoint: '/validate' });
      log.warn({ endpoint: '/validate' }, `malformed AdmissionReview: ${err.message}`);
      return reply.code(400).send({ error: 'MalformedAdmissionReview', message: err.message });
    }
    const { response, outcome } = reviewValidation(review, options.environment());
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const decision = response.allowed ? 'allowed' : 'denied';
    // A metric label only for the kinds podvisor handles: anyone reaching the Service can send any kind.
    const kind = outcome.skip === 'unsupported_kind' ? 'other' : review.kind.kind;
    metrics.reviewDuration.observe({ endpoint: 'validate', kind, operation: review.operation, decision }, seconds);
    countPolicyDecisions(metrics, outcome.decisions);
    const fields = {
      uid: review.uid,
      kind,
      namespace: review.namespace,
      name: review.name ?? (review.object?.['metadata'] as { generateName?: string } | undefined)?.generateName,
      operation: review.operation,
      subResource: review.subResource,
      policy: outcome.policy,
      exemption: outcome.exemption,
      skip: outcome.skip,
      decision,
      durationMs: Math.round(seconds * 1e6) / 1e3,
    };
    log.info(fields, 'validate');
    // Audit mode: the annotation goes to the apiserver's audit log, and the same violations to podvisor's log.
    const audit = outcome.auditAnnotations[AUDIT_ANNOTATION];
    if (audit !== undefined) log.warn({ ...fields, audit }, 'policy audit violations');
    if (options.onReview !== undefined) {
      try {
        options.onReview(review, response);
      } catch (err) {
        log.warn({ err }, 'review observer failed');
      }
    }
    return reply.type(REVIEW_CONTENT_TYPE).send(serializeReviewResponse(response));
  });
}
