import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { TlsReloader } from '../server/tls-reload.js';
import { backoffDelay } from './backoff.js';
import { withTimeout } from './timeout.js';
import { caBundlePem, notAfter, type CertificatePolicy } from './certificates.js';
import { DAY_MS } from '../server/certificate-authority.js';
import { createEventRecorder, type EventRecorder } from './events.js';
import type { IntegrationMetrics } from './metrics.js';
import { startNamespaceCache, type NamespaceCache } from './namespace-cache.js';
import { TLS_SECRET_KEYS } from './names.js';
import { createRegistrar, type Registrar } from './registrar.js';
import type { WebhookSettings } from './webhook-configurations.js';
import { watchServerVersion, type ServerVersionWatcher } from './server-version.js';
import { everyBundleTrusts, startSharedTls, type SharedTls } from './tls-secret.js';

export interface ClusterOptions {
  readonly kubeConfig: KubeConfig;
  /** `--register`: create/update the webhook configurations (and their caBundle). */
  readonly register: boolean;
  /** `--webhook-url`: register this URL instead of the Service (dev mode: podvisor runs outside the cluster). */
  readonly webhookUrl?: URL | undefined;
  /** The config in force (it changes on reload). */
  readonly config: () => Config;
  /** Whether this build serves POST /validate (the validating configuration is registered only then). */
  readonly validating: () => boolean;
  readonly log: Logger;
  readonly metrics: IntegrationMetrics;
  /** Give up starting (and exit non-zero, so the kubelet restarts the pod) when the API stays unreachable this long. */
  readonly startupTimeoutMs?: number;
  /** Test knobs. */
  readonly propagationMs?: number;
  readonly retireAfterMs?: number;
  readonly namespaceResyncMs?: number;
}

export interface Cluster {
  readonly namespaces: NamespaceCache;
  readonly serverVersion: ServerVersionWatcher;
  readonly events: EventRecorder;
  readonly registrar: Registrar | undefined;
  /** The shared Secret, unless certificate files are configured (cert-manager mode). */
  readonly sharedTls: SharedTls | undefined;
  /** Starts the periodic certificate check and registration once the HTTPS server listens. */
  attach(reloader: TlsReloader): void;
  /** One certificate check + registration pass now (also what the timer runs). */
  reconcile(): Promise<void>;
  /** Re-register after a config reload (timeouts, failure policies, defaults change the configurations). */
  configChanged(): void;
  stop(): Promise<void>;
}

export function certificatePolicy(config: Config, retireAfterMs?: number, webhookUrl?: URL): CertificatePolicy {
  const c = config.certificates;
  return {
    service: config.service,
    namespace: config.namespace,
    caDays: c.caDays,
    caRenewBeforeDays: c.caRenewBeforeDays,
    leafDays: c.leafDays,
    leafRenewBeforeDays: c.leafRenewBeforeDays,
    // Every replica re-reads the Secret each check interval: five intervals (at least a minute) and all serve the new one.
    retireAfterMs: retireAfterMs ?? Math.max(60_000, 5 * c.checkIntervalSeconds * 1000),
    // URL.hostname keeps an IPv6 address in brackets; the certificate holds the bare address.
    hosts: webhookUrl === undefined ? [] : [webhookUrl.hostname.replace(/^\[(.*)\]$/, '$1')],
  };
}

/** cert-manager mode: the CA that cert-manager mounts next to the certificate (`ca.crt`), if any. */
function mountedCaBundle(config: Config): string | undefined {
  if (config.tls.certFile === undefined) return undefined;
  try {
    const pem = readFileSync(join(dirname(config.tls.certFile), TLS_SECRET_KEYS.ca), 'utf8');
    return pem.includes('BEGIN CERTIFICATE') ? Buffer.from(pem).toString('base64') : undefined;
  } catch {
    return undefined;
  }
}

async function withStartupRetries<T>(what: string, log: Logger, timeoutMs: number, action: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await action();
    } catch (err) {
      const delay = backoffDelay(attempt, 500, 10_000);
      if (Date.now() + delay > deadline) throw new Error(`${what}: the API server did not answer for ${Math.round(timeoutMs / 1000)} s: ${(err as Error).message}`);
      log.warn({ err: (err as Error).message, attempt }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Everything podvisor does with the API server, started before the HTTPS server listens: the shared TLS Secret (it
 * is needed to listen), the Namespace cache (readiness waits for it), the version, the registrar and the Event
 * writer. None of it is on the request path: the handler reads the caches.
 */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { kubeConfig, log, metrics } = options;
  const config = options.config;
  const filesMode = config().tls.certFile !== undefined;

  let sharedTls: SharedTls | undefined;
  const registrar: Registrar | undefined = options.register
    ? createRegistrar(kubeConfig, log, {
        metrics,
        settings: (): WebhookSettings => {
          const bundle = sharedTls?.current();
          return {
            config: config(),
            caBundle: bundle !== undefined ? Buffer.from(caBundlePem(bundle)).toString('base64') : mountedCaBundle(config()),
            validating: options.validating(),
            webhookUrl: options.webhookUrl,
          };
        },
      })
    : undefined;

  sharedTls = filesMode
    ? undefined
    : await withStartupRetries('reading the TLS Secret', log, options.startupTimeoutMs ?? 60_000, () =>
        startSharedTls(kubeConfig, log, {
          namespace: config().namespace,
          policy: () => certificatePolicy(config(), options.retireAfterMs, options.webhookUrl),
          propagationMs: options.propagationMs,
          apiserverTrusts: registrar !== undefined ? async (ca) => everyBundleTrusts(await registrar.registeredBundles(), ca) : undefined,
        }),
      );
  const trackCa = (): void => {
    const bundle = sharedTls?.current();
    metrics.trackCertificate('ca', bundle?.ca);
    metrics.trackCertificate('previous-ca', bundle?.previousCa);
  };
  trackCa();

  const namespaces = startNamespaceCache(kubeConfig, log, { metrics, ...(options.namespaceResyncMs === undefined ? {} : { resyncMs: options.namespaceResyncMs }) });
  const serverVersion = watchServerVersion(kubeConfig, log);
  await withTimeout(serverVersion.refresh(), 10_000, 'reading /version').catch(() => undefined); // non-fatal: config kubernetesVersion applies
  const events = createEventRecorder(kubeConfig, log, { metrics });

  let reloader: TlsReloader | undefined;
  let timer: NodeJS.Timeout | undefined;
  let passing: Promise<void> | undefined;

  async function register(): Promise<boolean> {
    if (registrar === undefined) return true;
    try {
      await registrar.reconcile();
      return true;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'webhook registration failed; retrying at the next check');
      return false;
    }
  }

  let awaitingRegistration = false;
  async function pass(): Promise<void> {
    if (sharedTls === undefined) {
      await register();
      return;
    }
    let result: Awaited<ReturnType<SharedTls['reconcile']>>;
    try {
      result = await sharedTls.reconcile();
      trackCa();
    } catch (err) {
      // No registration either: without a fresh read of the Secret, this replica's bundle may be older than what
      // another replica registered (a CA rotation step), and writing it would drop the new CA from caBundle.
      log.warn({ err: (err as Error).message }, 'certificate check failed; the current certificate and caBundle stay; retrying at the next check');
      return;
    }
    // Registration first: a new CA reaches the caBundle before any serving certificate from it is used.
    const registered = await register();
    const { bundle, step } = result;
    // Renewals keep the CA and a switch happens only once the new CA is trusted, so those apply at once. A regenerated
    // CA is not trusted until registered: keep serving the old certificate until a registration succeeds.
    if (step.kind === 'regenerate') awaitingRegistration = true;
    if (registered) awaitingRegistration = false;
    if (!awaitingRegistration) reloader?.apply({ cert: bundle.cert, key: bundle.key }, `secret (${step.kind})`);
    const expiresIn = notAfter(bundle.cert) - Date.now();
    if (expiresIn < config().certificates.leafRenewBeforeDays * DAY_MS) log.warn({ expiresInDays: Math.floor(expiresIn / DAY_MS) }, 'serving certificate expires soon and was not renewed');
  }
  /** One pass at a time; a request during a pass runs one more pass after it (never a growing backlog). */
  let again = false;
  const reconcile = (): Promise<void> => {
    if (passing !== undefined) {
      again = true;
      return passing;
    }
    passing = (async () => {
      do {
        again = false;
        await withTimeout(pass(), 120_000, 'certificate and registration check').catch((err: unknown) => log.warn({ err: (err as Error).message }, 'check abandoned'));
      } while (again);
      passing = undefined;
    })();
    return passing;
  };

  return {
    namespaces,
    serverVersion,
    events,
    registrar,
    sharedTls,
    attach(r) {
      reloader = r;
      void reconcile();
      timer = setInterval(() => void reconcile(), config().certificates.checkIntervalSeconds * 1000);
      timer.unref();
    },
    reconcile,
    configChanged() {
      void reconcile();
    },
    async stop() {
      clearInterval(timer);
      serverVersion.stop();
      await events.stop();
      await namespaces.stop();
      await passing;
    },
  };
}
