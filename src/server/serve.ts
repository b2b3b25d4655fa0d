import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { buildAdmissionApp } from './admission-app.js';
import { buildOpsApp } from './ops-app.js';
import { loadTls } from './tls.js';

export interface RunningServer {
  readonly admissionPort: number;
  readonly opsPort: number;
  readonly log: Logger;
  /** Not-ready, keep serving for `server.drainSeconds`, then close both servers. */
  shutdown(reason: string): Promise<void>;
}

/** The composition root of `podvisor serve`: TLS → servers → readiness → signal handling. */
export async function startServer(config: Config, log: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const tls = await loadTls({ ...config.tls, service: config.service, namespace: config.namespace });
  if (tls.ca !== undefined) {
    log.info(
      { origin: tls.origin, certDir: config.tls.certDir, caBundle: Buffer.from(tls.ca).toString('base64') },
      'serving certificate ready: put caBundle into webhooks[].clientConfig.caBundle of the webhook configuration',
    );
  }
  const metrics = createMetrics();
  const environment = { config };
  let ready = false;
  const admission = buildAdmissionApp({
    tls,
    bodyLimitBytes: config.server.bodyLimitBytes,
    keepAliveTimeoutMs: config.server.keepAliveTimeoutMs,
    environment: () => environment,
    log,
    metrics,
  });
  const ops = buildOpsApp({ metrics, ready: () => ready });
  await ops.listen({ host: config.server.opsAddress, port: config.server.opsPort });
  await admission.listen({ host: config.server.address, port: config.server.port });
  ready = true;
  const admissionPort = (admission.server.address() as AddressInfo).port;
  const opsPort = (ops.server.address() as AddressInfo).port;
  log.info({ admissionPort, opsPort }, 'podvisor ready');

  let closing: Promise<void> | undefined;
  return {
    admissionPort,
    opsPort,
    log,
    shutdown(reason) {
      closing ??= (async () => {
        ready = false;
        log.info({ reason, drainSeconds: config.server.drainSeconds }, 'shutting down: not ready, draining');
        // Keep answering while the endpoint is removed and the apiserver stops sending here.
        await sleep(config.server.drainSeconds * 1000);
        await admission.close();
        await ops.close();
        log.info('podvisor stopped');
      })();
      return closing;
    },
  };
}
