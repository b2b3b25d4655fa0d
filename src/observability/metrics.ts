import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration } from 'prom-client';
import { VERSION } from '../version.js';

/** A counter whose increments are summed in a Map and handed to prom-client when the registry is read. */
export interface DeferredCounter<T extends string> {
  inc(labels: Record<T, string>): void;
}

export interface Metrics {
  readonly registry: Registry;
  /** The one metric observed on every review. */
  readonly reviewDuration: Histogram<'endpoint' | 'kind' | 'operation' | 'decision'>;
  readonly injections: DeferredCounter<'feature' | 'kind'>;
  readonly skips: DeferredCounter<'reason'>;
  readonly malformed: DeferredCounter<'endpoint'>;
  /** Policy decisions (src/policy): one per violated rule and mode, or rule "none" when allowed. */
  readonly policyDecisions: DeferredCounter<'policy' | 'rule' | 'mode' | 'decision'>;
}

/**
 * On the request path a count is one Map lookup and an addition; prom-client's label hashing and validation run
 * once per label set per scrape (its `collect` hook), not once per review.
 */
function deferredCounter<T extends string>(configuration: CounterConfiguration<T> & { labelNames: readonly T[] }): DeferredCounter<T> {
  const pending = new Map<string, { labels: Record<T, string>; count: number }>();
  new Counter<T>({
    ...configuration,
    collect() {
      for (const entry of pending.values()) {
        if (entry.count === 0) continue;
        this.inc(entry.labels, entry.count);
        entry.count = 0;
      }
    },
  });
  const names = configuration.labelNames;
  return {
    inc(labels) {
      let key = '';
      for (const name of names) key += `${labels[name]}\u0000`;
      const entry = pending.get(key);
      if (entry !== undefined) entry.count += 1;
      else pending.set(key, { labels: { ...labels }, count: 1 });
    },
  };
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
    injections: deferredCounter({
      name: 'podvisor_injections_total',
      help: 'Objects changed by a feature',
      labelNames: ['feature', 'kind'] as const,
      registers: [registry],
    }),
    skips: deferredCounter({
      name: 'podvisor_skips_total',
      help: 'Objects left unchanged, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    malformed: deferredCounter({
      name: 'podvisor_malformed_requests_total',
      help: 'Requests answered with HTTP 4xx (malformed or oversized AdmissionReview, body timeout or body shed under load)',
      labelNames: ['endpoint'] as const,
      registers: [registry],
    }),
    policyDecisions: deferredCounter({
      name: 'podvisor_policy_decisions_total',
      help: 'Policy decisions by policy, rule (Pod Security check ID, podvisor:privileged, escalation, none) and mode',
      labelNames: ['policy', 'rule', 'mode', 'decision'] as const,
      registers: [registry],
    }),
  };
}
