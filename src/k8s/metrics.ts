import { X509Certificate } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';

/** Metrics of the Kubernetes integration, registered on the server's registry (one per instance). */
export interface IntegrationMetrics {
  readonly certificateExpiry: Gauge<'certificate'>;
  readonly tlsReloads: Counter<'result'>;
  readonly configReloads: Counter<'result'>;
  readonly events: Counter<'reason' | 'result'>;
  readonly registrations: Counter<'configuration' | 'result'>;
  readonly namespaceRelists: Counter<'reason'>;
  readonly namespaceWatchErrors: Counter;
  readonly namespaces: Gauge;
  /** Exports `podvisor_certificate_expiry_seconds{certificate=name}` for this PEM (computed at scrape time). */
  trackCertificate(name: 'serving' | 'ca' | 'previous-ca', pem: string | undefined): void;
}

export function createIntegrationMetrics(registry: Registry): IntegrationMetrics {
  const registers = [registry];
  const expiries = new Map<string, number>();
  const certificateExpiry = new Gauge({
    name: 'podvisor_certificate_expiry_seconds',
    help: 'Seconds until the certificate expires (serving: the certificate podvisor serves; ca: the current CA in the caBundle)',
    labelNames: ['certificate'] as const,
    registers,
    collect() {
      this.reset();
      for (const [certificate, end] of expiries) this.set({ certificate }, Math.round((end - Date.now()) / 1000));
    },
  });
  return {
    certificateExpiry,
    trackCertificate(name, pem) {
      if (pem === undefined) {
        expiries.delete(name);
        return;
      }
      try {
        expiries.set(name, Date.parse(new X509Certificate(pem).validTo));
      } catch {
        expiries.delete(name);
      }
    },
    tlsReloads: new Counter({
      name: 'podvisor_tls_reloads_total',
      help: 'Serving certificate reloads (setSecureContext), by result',
      labelNames: ['result'] as const,
      registers,
    }),
    configReloads: new Counter({
      name: 'podvisor_config_reloads_total',
      help: 'Config file reloads: success (the new config is in force) or failure (invalid; the old config stays)',
      labelNames: ['result'] as const,
      registers,
    }),
    events: new Counter({
      name: 'podvisor_events_total',
      help: 'Kubernetes Events: sent, failed (API error, logged), dropped (rate limit or full queue), deduplicated',
      labelNames: ['reason', 'result'] as const,
      registers,
    }),
    registrations: new Counter({
      name: 'podvisor_webhook_registrations_total',
      help: 'Webhook configuration reconciliations, by configuration and result (created, updated, unchanged, conflict, error)',
      labelNames: ['configuration', 'result'] as const,
      registers,
    }),
    namespaceRelists: new Counter({
      name: 'podvisor_namespace_cache_relists_total',
      help: 'Full lists of Namespaces, by reason (initial, expired = 410 Gone, resync, error)',
      labelNames: ['reason'] as const,
      registers,
    }),
    namespaceWatchErrors: new Counter({
      name: 'podvisor_namespace_cache_watch_errors_total',
      help: 'Namespace watch streams that failed (reconnected with backoff)',
      registers,
    }),
    namespaces: new Gauge({ name: 'podvisor_namespace_cache_namespaces', help: 'Namespaces in the cache', registers }),
  };
}
