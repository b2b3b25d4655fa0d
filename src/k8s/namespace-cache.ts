import { CoreV1Api, Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { backoffDelay, sleepUnlessAborted } from './backoff.js';
import { withTimeout } from './timeout.js';
import type { IntegrationMetrics } from './metrics.js';

type Labels = Readonly<Record<string, string>>;

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

interface NamespaceLike {
  metadata?: { name?: string; labels?: Record<string, string>; resourceVersion?: string };
}

type WatchEnd = { readonly kind: 'expired' } | { readonly kind: 'closed' } | { readonly kind: 'error'; readonly error: unknown } | { readonly kind: 'resync' };

/**
 * List+watch of Namespaces, keeping only each namespace's labels (name → labels) so memory stays small: no
 * annotations, spec, status or managedFields. Follows the client-go reflector's protocol:
 * list (resourceVersion of the list) → watch from it with bookmarks → on a normal end, watch again from the last
 * resourceVersion seen → on `410 Gone` (ERROR event with code 410, "too old resource version") re-list → on an
 * error, reconnect with exponential backoff and jitter. A re-list every `resyncMs` replaces the whole map at once.
 * The admission handler only calls `labels()`: no API call on the request path.
 */
export function startNamespaceCache(kubeConfig: KubeConfig, log: Logger, options: NamespaceCacheOptions = {}): NamespaceCache {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const watcher = new Watch(kubeConfig);
  const resyncMs = options.resyncMs ?? 10 * 60_000;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
  const initialMs = options.backoffInitialMs ?? 500;
  const maxMs = options.backoffMaxMs ?? 30_000;
  const maxNamespaces = options.maxNamespaces ?? 50_000;
  const metrics = options.metrics;

  let labels = new Map<string, Labels>();
  let isSynced = false;
  let resourceVersion = '';
  let overflowWarned = false;
  const syncWaiters = new Set<() => void>();
  const stopping = new AbortController();
  let currentWatch: AbortController | undefined;

  const labelsOf = (ns: NamespaceLike): Labels => Object.freeze({ ...(ns.metadata?.labels ?? {}) });
  const store = (map: Map<string, Labels>, ns: NamespaceLike): void => {
    const name = ns.metadata?.name;
    if (name === undefined) return;
    if (!map.has(name) && map.size >= maxNamespaces) {
      if (!overflowWarned) log.warn({ maxNamespaces }, 'namespace cache full: further namespaces are not cached (their labels count as unknown)');
      overflowWarned = true;
      return;
    }
    map.set(name, labelsOf(ns));
  };

  async function list(reason: 'initial' | 'expired' | 'resync' | 'error'): Promise<void> {
    metrics?.namespaceRelists.inc({ reason });
    const result = await withTimeout(core.listNamespace(), 60_000, 'listing namespaces');
    const next = new Map<string, Labels>();
    for (const ns of result.items) store(next, ns);
    labels = next; // one assignment: readers see the old map or the new one, never a half-filled one
    resourceVersion = result.metadata?.resourceVersion ?? '';
    metrics?.namespaces.set(labels.size);
    if (!isSynced) {
      isSynced = true;
      log.info({ namespaces: labels.size, resourceVersion }, 'namespace cache synced');
      for (const wake of syncWaiters) wake();
      syncWaiters.clear();
    }
  }

  /** One watch stream, from `resourceVersion`, until it ends. */
  function watchOnce(deadline: number): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let ended = false;
      let expired = false;
      let streamError: unknown;
      // A silent connection (no event, no bookmark, no end) is abandoned after the server's timeout plus a margin.
      let idle: NodeJS.Timeout | undefined;
      const finish = (end: WatchEnd): void => {
        if (ended) return;
        ended = true;
        stopping.signal.removeEventListener('abort', onStop);
        clearTimeout(idle);
        clearTimeout(resync);
        currentWatch?.abort();
        resolve(end);
      };
      const armIdle = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => finish({ kind: 'error', error: new Error('watch idle too long') }), (watchTimeoutSeconds + 30) * 1000);
      };
      const resync = setTimeout(() => finish({ kind: 'resync' }), Math.max(0, deadline - Date.now()));
      // Stopping must not wait for a watch whose response headers have not arrived yet.
      const onStop = (): void => finish({ kind: 'closed' });
      stopping.signal.addEventListener('abort', onStop, { once: true });
      armIdle();
      watcher
        .watch(
          '/api/v1/namespaces',
          { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds },
          (type: string, object: unknown) => {
            armIdle();
            const ns = object as NamespaceLike & { code?: number; message?: string };
            if (type === 'ERROR') {
              // The API server reports "too old resource version" as an ERROR event carrying a 410 Status.
              if (ns.code === 410) expired = true;
              else streamError = new Error(`watch error event: ${ns.code ?? '?'} ${ns.message ?? ''}`);
              return;
            }
            const rv = ns.metadata?.resourceVersion;
            if (type === 'ADDED' || type === 'MODIFIED') {
              // Copy-on-write so a reader iterating never sees a change mid-way; writes are rare.
              const next = new Map(labels);
              store(next, ns);
              labels = next;
            } else if (type === 'DELETED' && ns.metadata?.name !== undefined) {
              const next = new Map(labels);
              next.delete(ns.metadata.name);
              labels = next;
            }
            if (rv !== undefined && rv !== '') resourceVersion = rv;
            metrics?.namespaces.set(labels.size);
          },
          (err: unknown) => {
            if (expired) finish({ kind: 'expired' });
            else if (err !== null && err !== undefined && !(err instanceof Error && err.name === 'AbortError')) finish({ kind: 'error', error: err });
            else if (streamError !== undefined) finish({ kind: 'error', error: streamError });
            else finish({ kind: 'closed' });
          },
        )
        .then((controller) => {
          currentWatch = controller;
          if (ended || stopping.signal.aborted) controller.abort();
        })
        .catch((err: unknown) => finish({ kind: 'error', error: err }));
    });
  }

  async function run(): Promise<void> {
    let attempt = 0;
    let reason: 'initial' | 'expired' | 'resync' | 'error' = 'initial';
    while (!stopping.signal.aborted) {
      try {
        await list(reason);
      } catch (err) {
        log.warn({ err: (err as Error).message, attempt }, 'cannot list namespaces; retrying with backoff');
        reason = 'error';
        await sleepUnlessAborted(backoffDelay(attempt++, initialMs, maxMs), stopping.signal);
        continue;
      }
      attempt = 0;
      const deadline = Date.now() + resyncMs;
      for (;;) {
        if (stopping.signal.aborted) return;
        const end = await watchOnce(deadline);
        if (stopping.signal.aborted) return;
        if (end.kind === 'expired') {
          log.info({ resourceVersion }, 'namespace watch expired (410 Gone): re-listing');
          reason = 'expired';
          break;
        }
        if (end.kind === 'resync') {
          reason = 'resync';
          break;
        }
        if (end.kind === 'error') {
          metrics?.namespaceWatchErrors.inc();
          log.warn({ err: (end.error as Error)?.message ?? String(end.error), attempt }, 'namespace watch failed; reconnecting with backoff');
          await sleepUnlessAborted(backoffDelay(attempt++, initialMs, maxMs), stopping.signal);
          // After a failure the resourceVersion may be too old; the next watch then gets 410 and re-lists.
          continue;
        }
        attempt = 0; // a clean end (server timeout): resume from the last resourceVersion at once
      }
    }
  }

  const running = run().catch((err: unknown) => log.error({ err }, 'namespace cache stopped unexpectedly'));

  return {
    labels: (namespace) => labels.get(namespace),
    synced: () => isSynced,
    waitForSync(timeoutMs) {
      if (isSynced) return Promise.resolve(true);
      return new Promise((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          syncWaiters.delete(wake);
          resolve(false);
        }, timeoutMs);
        syncWaiters.add(wake);
      });
    },
    size: () => labels.size,
    async stop() {
      stopping.abort();
      currentWatch?.abort();
      await running;
    },
  };
}
