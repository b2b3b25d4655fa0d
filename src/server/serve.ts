import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/schema.js';
import { watchConfigFile, type ConfigWatcher } from '../config/watch.js';
import { startCluster, type Cluster, type ClusterOptions } from '../k8s/cluster.js';
import { noticeFor } from '../k8s/events.js';
import { failOpenWarning } from '../k8s/webhook-configurations.js';
import { createIntegrationMetrics } from '../k8s/metrics.js';
import { configSetsKubernetesVersion, withDetectedVersion } from '../k8s/server-version.js';
import type { MutationEnvironment } from '../mutation/pipeline.js';
import { createLogger, flushLog, type Logger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { buildAdmissionApp } from './admission-app.js';
import { buildOpsApp } from './ops-app.js';
import { startConfiguredLxcfsRecovery } from '../recovery/start.js';
import { loadTls, type TlsMaterial } from './tls.js';
import { createTlsReloader, watchCertificateFiles } from './tls-reload.js';
import { VERSION } from '../version.js';

export interface RunningServer {
  readonly admissionPort: number;
  readonly opsPort: number;
  readonly log: Logger;
  /** Not-ready, keep serving for `server.drainSeconds`, then close both servers. */
  shutdown(reason: string): Promise<void>;
}

/** What `podvisor serve` does beyond serving: the cluster (all optional; without them podvisor runs offline as before). */
export interface ServeOptions {
  /** The cluster to talk to (`--kubeconfig`, KUBECONFIG or in-cluster); undefined: offline, no API call at all. */
  readonly kubeConfig?: KubeConfig | undefined;
  /** `--register` (default true with a cluster): create/update the webhook configurations and their caBundle. */
  readonly register?: boolean | undefined;
  /** `--webhook-url`: register this URL instead of the Service (dev mode). */
  readonly webhookUrl?: URL | undefined;
  /** The config file to watch and reload. */
  readonly configFile?: string | undefined;
  /** Command-line overrides, re-applied to every reloaded config. */
  readonly applyOverrides?: ((config: Config) => Config) | undefined;
  /** Test knobs for the cluster integration. */
  readonly cluster?: Partial<Pick<ClusterOptions, 'propagationMs' | 'retireAfterMs' | 'startupTimeoutMs' | 'namespaceResyncMs'>>;
}

function warnIfFailOpen(config: Config, log: Logger): void {
  const warning = failOpenWarning(config);
  if (warning !== undefined) log.warn({ field: 'webhook.failurePolicy.validating' }, warning);
}

/** The composition root of `podvisor serve`: config → cluster → TLS → servers → readiness → signal handling. */
export async function startServer(config: Config, log: Logger = createLogger(config.logLevel), options: ServeOptions = {}): Promise<RunningServer> {
  const metrics = createMetrics();
  const integration = createIntegrationMetrics(metrics.registry);
  let currentConfig = config;
  const configText = options.configFile === undefined ? undefined : await readFile(options.configFile, 'utf8');
  let explicitVersion = configSetsKubernetesVersion(configText);
  let validating = false;
  const cluster: Cluster | undefined =
    options.kubeConfig === undefined
      ? undefined
      : await startCluster({
          kubeConfig: options.kubeConfig,
          register: options.register ?? true,
          webhookUrl: options.webhookUrl,
          config: () => currentConfig,
          validating: () => validating,
          log,
          metrics: integration,
          ...options.cluster,
        });
  const shared = cluster?.sharedTls?.current();
  const tls: TlsMaterial =
    shared !== undefined
      ? { cert: shared.cert, key: shared.key, ca: shared.ca, origin: 'reused' }
      : await loadTls({ ...config.tls, service: config.service, namespace: config.namespace });
  if (tls.ca !== undefined && cluster?.registrar === undefined) {
    log.info(
      { origin: tls.origin, certDir: config.tls.certDir, caBundle: Buffer.from(tls.ca).toString('base64') },
      'serving certificate ready: put caBundle into webhooks[].clientConfig.caBundle of the webhook configuration',
    );
  }
  // Off by default (`--lxcfs-recovery`); started before listening so that a missing cluster fails the start.
  const recovery = config.lxcfsRecovery.enabled ? await startConfiguredLxcfsRecovery(config, log, metrics.registry, options.kubeConfig) : undefined;
  // The environment is rebuilt only when the config or the detected version changes; each request reads it once.
  let environment: MutationEnvironment = { config };
  let environmentFor: { config: Config; version: string | undefined } | undefined;
  const currentEnvironment = (): MutationEnvironment => {
    const version = cluster?.serverVersion.current();
    if (environmentFor === undefined || environmentFor.config !== currentConfig || environmentFor.version !== version) {
      environmentFor = { config: currentConfig, version };
      environment = {
        config: withDetectedVersion(currentConfig, explicitVersion, version),
        ...(cluster === undefined ? {} : { namespaceLabels: (namespace: string) => cluster.namespaces.labels(namespace) }),
      };
    }
    return environment;
  };
  let ready = false;
  const admission = buildAdmissionApp({
    tls,
    bodyLimitBytes: config.server.bodyLimitBytes,
    keepAliveTimeoutMs: config.server.keepAliveTimeoutMs,
    environment: currentEnvironment,
    log,
    metrics,
    // Events are built and queued after the answer is written (setImmediate), never on the request path.
    ...(cluster === undefined
      ? {}
      : {
          onReview: (request, response, outcome) =>
            setImmediate(() => {
              const notice = noticeFor(request, response, outcome);
              if (notice !== undefined) cluster.events.record(notice);
            }),
          // Denials from /validate become `Denied` Events on the owning object.
          onValidate: (request, response) => {
            if (response.allowed) return;
            setImmediate(() => {
              try {
                const notice = noticeFor(request, response, undefined);
                if (notice !== undefined) cluster.events.record(notice);
              } catch (err) {
                log.debug({ err }, 'no Event for this denial');
              }
            });
          },
        }),
    limits: {
      maxConnections: config.server.maxConnections,
      maxInFlightBodies: config.server.maxInFlightBodies,
      maxInFlightBodyBytes: config.server.maxInFlightBodyBytes,
      headersTimeoutMs: config.server.headersTimeoutMs,
      bodyTimeoutMs: config.server.bodyTimeoutMs,
    },
  });
  validating = admission.hasRoute({ method: 'POST', url: '/validate' });
  const reloader = createTlsReloader(admission.server, { cert: tls.cert, key: tls.key }, log, integration);
  let stopCertificateWatch: (() => void) | undefined;
  let configWatcher: ConfigWatcher | undefined;
  if (options.configFile !== undefined && configText !== undefined) {
    configWatcher = watchConfigFile(options.configFile, { text: configText, config }, {
      log,
      applyOverrides: options.applyOverrides,
      onResult: (result) => {
        integration.configReloads.inc({ result });
        // The reload's own log line follows this call: out at once, with every line before it.
        setImmediate(() => flushLog(log));
      },
      onChange: (next, text) => {
        explicitVersion = configSetsKubernetesVersion(text);
        if (next.logLevel !== log.level) {
          log.info({ from: log.level, to: next.logLevel }, 'log level changed');
          // Lines written at the old level are out before the new level applies.
          flushLog(log);
          log.level = next.logLevel;
        }
        currentConfig = next; // one assignment: the next request sees the whole new config
        warnIfFailOpen(next, log);
        cluster?.configChanged();
      },
    });
  }
  // Ready once listening and, with a cluster, once the Namespace cache has synced (namespace defaults are known).
  const ops = buildOpsApp({ metrics, ready: () => ready && (cluster?.namespaces.synced() ?? true) });
  await ops.listen({ host: config.server.opsAddress, port: config.server.opsPort });
  await admission.listen({ host: config.server.address, port: config.server.port });
  ready = true;
  if (config.tls.certFile !== undefined && config.tls.keyFile !== undefined) {
    stopCertificateWatch = watchCertificateFiles(reloader, { certFile: config.tls.certFile, keyFile: config.tls.keyFile }, log);
  }
  cluster?.attach(reloader);
  const admissionPort = (admission.server.address() as AddressInfo).port;
  const opsPort = (ops.server.address() as AddressInfo).port;
  log.info({ version: VERSION, admissionPort, opsPort }, 'podvisor ready');
  warnIfFailOpen(config, log);
  flushLog(log);
  // A fatal error is logged (then Node prints it and exits; pino's exit hook writes the buffered lines).
  const onFatal = (err: Error, origin: string): void => log.fatal({ err, origin }, 'fatal error');
  process.on('uncaughtExceptionMonitor', onFatal);

  let closing: Promise<void> | undefined;
  return {
    admissionPort,
    opsPort,
    log,
    shutdown(reason) {
      closing ??= (async () => {
        ready = false;
        log.info({ reason, drainSeconds: config.server.drainSeconds }, 'shutting down: not ready, draining');
        flushLog(log);
        // While draining, every answer closes its connection (`Connection: close`), so that by the final close no client
        // is about to reuse a keep-alive socket the server is closing: that would be a reset, which the apiserver counts
        // as a failed call. Closing idle sockets here instead would race clients that send back to back. Requests are
        // still answered, never with 503.
        admission.server.prependListener('request', (_request, response) => response.setHeader('connection', 'close'));
        // Keep answering while the endpoint is removed and the apiserver stops sending here.
        await sleep(config.server.drainSeconds * 1000);
        await recovery?.stop();
        configWatcher?.stop();
        stopCertificateWatch?.();
        await cluster?.stop();
        await admission.close();
        await ops.close();
        process.removeListener('uncaughtExceptionMonitor', onFatal);
        log.info('podvisor stopped');
        flushLog(log);
      })();
      return closing;
    },
  };
}
