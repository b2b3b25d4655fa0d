import { CoreV1Api, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { startListWatch } from './list-watch.js';
import type { IntegrationMetrics } from './metrics.js';

type Labels = Readonly<Record<string, string>>;
const NO_LABELS: Labels = Object.freeze({});

export interface NamespaceCache {
  /** The namespace's labels, or undefined when it is unknown (not synced yet, or no such namespace). */
  labels(namespace: string): Labels | undefined;
  /** True once the first list has been stored; stays true while the watch reconnects (the labels are then stale). */
  synced(): boolean;
  /** Resolves true at the first sync, false after `timeoutMs`. */
  waitForSync(timeoutMs: number): Promise<boolean>;
  size(): number;
  stop(): Promise<void>;
}

export interface NamespaceCacheOptions {
  /** A full re-list this often even when the watch is healthy (catches anything a watch could have missed). */
  readonly resyncMs?: number;
  /** Server-side watch timeout: the API server ends the stream after this long and the cache resumes from its resourceVersion. */
  readonly watchTimeoutSeconds?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Namespaces kept at most (memory bound); beyond it new namespaces are not cached and a warning is logged. */
  readonly maxNamespaces?: number;
  readonly metrics?: IntegrationMetrics;
}

/**
 * The labels of every Namespace (name → labels), followed by list+watch (src/k8s/list-watch.ts). Only the labels are
 * kept, so memory stays small: no annotations, spec, status or managedFields (docs/watching.md has the figures).
 * The admission handler only calls `labels()`: no API call on the request path.
 */
export function startNamespaceCache(kubeConfig: KubeConfig, log: Logger, options: NamespaceCacheOptions = {}): NamespaceCache {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const metrics = options.metrics;
  const namespaces = startListWatch<V1Namespace, Labels>(kubeConfig, {
    path: '/api/v1/namespaces',
    list: () => core.listNamespace(),
    // The labels object itself, frozen: each event and list item is freshly parsed, so nothing else holds it (a
    // frozen copy held about twice the bytes per namespace: docs/watching.md).
    keep: (ns) => Object.freeze(ns.metadata?.labels ?? NO_LABELS),
    maxObjects: options.maxNamespaces ?? 50_000,
    resyncMs: options.resyncMs,
    watchTimeoutSeconds: options.watchTimeoutSeconds,
    backoffInitialMs: options.backoffInitialMs,
    backoffMaxMs: options.backoffMaxMs,
    onRelist: (reason) => {
      if (reason === 'expired') log.info('namespace watch expired (410 Gone): re-listing');
      metrics?.namespaceRelists.inc({ reason });
    },
    onSynced: (size) => log.info({ namespaces: size }, 'namespace cache synced'),
    onSize: (size) => metrics?.namespaces.set(size),
    onFull: (maxNamespaces) => log.warn({ maxNamespaces }, 'namespace cache full: further namespaces are not cached (their labels count as unknown)'),
    onError: (err, during, attempt) => {
      if (during === 'watch') metrics?.namespaceWatchErrors.inc();
      log.warn({ err: (err as Error)?.message ?? String(err), attempt }, `namespace ${during} failed; retrying with backoff`);
    },
  });
  return {
    labels: (namespace) => namespaces.get(namespace),
    synced: () => namespaces.synced(),
    waitForSync: (timeoutMs) => namespaces.waitForSync(timeoutMs),
    size: () => namespaces.size(),
    stop: () => namespaces.stop(),
  };
}
