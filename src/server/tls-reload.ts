import { X509Certificate, createPrivateKey } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:https';
import { dirname } from 'node:path';
import type { IntegrationMetrics } from '../k8s/metrics.js';
import type { Logger } from '../observability/logger.js';

export interface ServingMaterial {
  readonly cert: string;
  readonly key: string;
}

export interface TlsReloader {
  /** Installs new material for new handshakes; false (old context kept) when unchanged or unusable. */
  apply(material: ServingMaterial, origin: string): boolean;
  current(): ServingMaterial;
}

/**
 * Hot reload with `setSecureContext`: new TLS handshakes get the new certificate, connections already open keep their
 * session and are never dropped (typescript-stack.md §1.5). A key that does not match the certificate is refused
 * before it reaches the server, so a half-written Secret never breaks serving.
 */
export function createTlsReloader(server: Server, initial: ServingMaterial, log: Logger, metrics?: IntegrationMetrics): TlsReloader {
  let current = initial;
  metrics?.trackCertificate('serving', initial.cert);
  return {
    current: () => current,
    apply(material, origin) {
      if (material.cert === current.cert && material.key === current.key) return false;
      try {
        if (!new X509Certificate(material.cert).checkPrivateKey(createPrivateKey(material.key))) throw new Error('the key does not match the certificate');
        server.setSecureContext({ cert: material.cert, key: material.key, minVersion: 'TLSv1.2' });
      } catch (err) {
        metrics?.tlsReloads.inc({ result: 'failure' });
        log.warn({ origin, err: (err as Error).message }, 'serving certificate not reloaded; keeping the current one');
        return false;
      }
      current = material;
      metrics?.tlsReloads.inc({ result: 'success' });
      metrics?.trackCertificate('serving', material.cert);
      log.info({ origin, notAfter: new X509Certificate(material.cert).validTo }, 'serving certificate reloaded');
      return true;
    },
  };
}

/**
 * cert-manager (or any mounted Secret) mode: watch the DIRECTORIES of the certificate and key. The kubelet updates a
 * Secret volume by swapping the `..data` symlink, which `fs.watch(<file>)` never reports; `fs.watch(<dir>)` does, with
 * several events per swap, hence the debounce. A slow poll is the fallback for filesystems without inotify.
 */
export function watchCertificateFiles(
  reloader: TlsReloader,
  files: { readonly certFile: string; readonly keyFile: string },
  log: Logger,
  options: { debounceMs?: number; pollMs?: number } = {},
): () => void {
  let timer: NodeJS.Timeout | undefined;
  const reload = async (): Promise<void> => {
    try {
      const [cert, key] = await Promise.all([readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8')]);
      reloader.apply({ cert, key }, files.certFile);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read the mounted certificate; keeping the current one');
    }
  };
  const schedule = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), options.debounceMs ?? 250);
  };
  const watchers: FSWatcher[] = [...new Set([dirname(files.certFile), dirname(files.keyFile)])].map((dir) => {
    const w = watch(dir, schedule);
    w.on('error', (err) => log.warn({ dir, err: err.message }, 'certificate directory watch failed; the periodic reload remains'));
    return w;
  });
  const poll = setInterval(() => void reload(), options.pollMs ?? 5 * 60_000);
  poll.unref();
  return () => {
    clearTimeout(timer);
    clearInterval(poll);
    for (const w of watchers) w.close();
  };
}
