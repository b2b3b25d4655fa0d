import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERSION } from '../version.js';

export interface Metrics {
  readonly registry: Registry;
  readonly reviewDuration: Histogram<'endpoint' | 'kind' | 'operation' | 'decision'>;
  readonly injections: Counter<'feature' | 'kind'>;
  readonly skips: Counter<'reason'>;
  readonly malformed: Counter<'endpoint'>;
  /** Policy decisions (src/policy): one per violated rule and mode, or rule "none" when allowed. */
  readonly policyDecisions: Counter<'policy' | 'rule' | 'mode' | 'decision'>;
}

/** One registry per server instance, so tests and several instances never share counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Constant 1, labelled with the release: `podvisor_build_info{version="0.1.0",node="v24.1.0"} 1`.
  new Gauge({ name: 'podvisor_build_info', help: 'podvisor release and Node.js version', labelNames: ['version', 'node'] as const, registers: [registry] })
    .set({ version: VERSION, node: process.version }, 1);
  return {
    registry,
    reviewDuration: new Histogram({
      name: 'podvisor_admission_duration_seconds',
      help: 'Time to answer an AdmissionReview, inside podvisor',
      labelNames: ['endpoint', 'kind', 'operation', 'decision'] as const,
      // The apiserver's timeout is at most 30 s; most answers take well under a millisecond.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 3, 10],
      registers: [registry],
    }),
    injections: new Counter({
      name: 'podvisor_injections_total',
      help: 'Objects changed by a feature',
      labelNames: ['feature', 'kind'] as const,
      registers: [registry],
    }),
    skips: new Counter({
      name: 'podvisor_skips_total',
      help: 'Objects left unchanged, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    malformed: new Counter({
      name: 'podvisor_malformed_requests_total',
      help: 'Requests answered with HTTP 4xx (malformed or oversized AdmissionReview)',
      labelNames: ['endpoint'] as const,
      registers: [registry],
    }),
    policyDecisions: new Counter({
      name: 'podvisor_policy_decisions_total',
      help: 'Policy decisions by policy, rule (Pod Security check ID, podvisor:privileged, escalation, none) and mode',
      labelNames: ['policy', 'rule', 'mode', 'decision'] as const,
      registers: [registry],
    }),
  };
}
