import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { backoffDelay, sleepUnlessAborted } from './backoff.js';
import { withTimeout } from './timeout.js';

/** What every Kubernetes object (and a watch BOOKMARK) has in common. */
export interface ObjectMeta {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly resourceVersion?: string };
}

export type RelistReason = 'initial' | 'expired' | 'resync' | 'error';

export interface ListWatchOptions<O extends ObjectMeta, T> {
  /** The collection's path, e.g. `/api/v1/namespaces` or `/api/v1/namespaces/x/pods`. */
  readonly path: string;
  /** The same collection, listed with client-node's typed API (with the same selectors as `labelSelector`). */
  readonly list: () => Promise<{ readonly items: readonly O[]; readonly metadata?: { readonly resourceVersion?: string } }>;
  readonly labelSelector?: string;
  /** What is kept of each object (the memory bound: a Namespace is 1–3 KB with managedFields, its labels a few dozen bytes). */
  readonly keep: (object: O) => T;
  /** Called for every listed object and every ADDED/MODIFIED event, with what `keep` returned. */
  readonly onUpsert?: (value: T, key: string) => void;
  readonly onDelete?: (key: string) => void;
  /** Before each list. */
  readonly onRelist?: (reason: RelistReason) => void;
  /** Once, when the first list has been stored. */
  readonly onSynced?: (size: number) => void;
  /** After every change of the store. */
  readonly onSize?: (size: number) => void;
  readonly onError?: (err: unknown, during: 'list' | 'watch', attempt: number) => void;
  /** Once, when `maxObjects` is reached. */
  readonly onFull?: (maxObjects: number) => void;
  /** A full re-list this often even when the watch is healthy (catches anything a watch could have missed). */
  readonly resyncMs?: number | undefined;
  /** Server-side watch timeout: the API server ends the stream after this long and the watch resumes from its resourceVersion. */
  readonly watchTimeoutSeconds?: number | undefined;
  readonly backoffInitialMs?: number | undefined;
  readonly backoffMaxMs?: number | undefined;
  /** Objects kept at most; beyond it new objects are not stored (they count as unknown). */
  readonly maxObjects?: number | undefined;
}

export interface ListWatch<T> {
  /** What `keep` returned for the object `namespace/name` (`name` for cluster-scoped objects), or undefined. */
  get(key: string): T | undefined;
  /** True once the first list has been stored; stays true while the watch reconnects (the values are then stale). */
  synced(): boolean;
  /** Resolves true at the first sync, false after `timeoutMs`. */
  waitForSync(timeoutMs: number): Promise<boolean>;
  size(): number;
  stop(): Promise<void>;
}

type WatchEnd = { readonly kind: 'expired' } | { readonly kind: 'closed' } | { readonly kind: 'error'; readonly error: unknown } | { readonly kind: 'resync' };

/** `namespace/name`, or `name` for a cluster-scoped object. */
export const objectKey = (object: ObjectMeta): string | undefined => {
  const { name, namespace } = object.metadata ?? {};
  if (name === undefined) return undefined;
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
};

/**
 * podvisor's one way to follow a Kubernetes collection: the client-go reflector's protocol, keeping only what `keep`
 * returns of each object. list (its resourceVersion) → watch from it with bookmarks and a server-side timeout → on a
 * clean end, watch again from the last resourceVersion seen (bookmarks advance it) → on `410 Gone` (an ERROR event
 * with code 410, "too old resource version", or an HTTP 410) re-list → on any other failure (list or watch, an ERROR
 * event, a connection silent past the server's timeout) reconnect with exponential backoff and jitter, for ever.
 * A re-list every `resyncMs` replaces the store at once. docs/watching.md says why not client-node's informer.
 */
export function startListWatch<O extends ObjectMeta, T>(kubeConfig: KubeConfig, options: ListWatchOptions<O, T>): ListWatch<T> {
  const watcher = new Watch(kubeConfig);
  const resyncMs = options.resyncMs ?? 10 * 60_000;
  const watchTimeoutSeconds = options.watchTimeoutSeconds ?? 300;
  const initialMs = options.backoffInitialMs ?? 500;
  const maxMs = options.backoffMaxMs ?? 30_000;
  const maxObjects = options.maxObjects ?? Number.POSITIVE_INFINITY;

  let store = new Map<string, T>();
  let isSynced = false;
  let resourceVersion = '';
  let fullReported = false;
  const syncWaiters = new Set<() => void>();
  const stopping = new AbortController();
  let currentWatch: AbortController | undefined;

  const upsert = (into: Map<string, T>, object: O): void => {
    const key = objectKey(object);
    if (key === undefined) return;
    if (!into.has(key) && into.size >= maxObjects) {
      if (!fullReported) options.onFull?.(maxObjects);
      fullReported = true;
      return;
    }
    const value = options.keep(object);
    into.set(key, value);
    options.onUpsert?.(value, key);
  };

  async function list(reason: RelistReason): Promise<void> {
    options.onRelist?.(reason);
    const result = await withTimeout(options.list(), 60_000, `listing ${options.path}`);
    if (stopping.signal.aborted) return;
    const next = new Map<string, T>();
    for (const object of result.items) upsert(next, object);
    for (const key of store.keys()) if (!next.has(key)) options.onDelete?.(key);
    store = next; // one assignment: the old store until the whole list is in
    resourceVersion = result.metadata?.resourceVersion ?? '';
    options.onSize?.(store.size);
    if (!isSynced) {
      isSynced = true;
      options.onSynced?.(store.size);
      for (const wake of syncWaiters) wake();
      syncWaiters.clear();
    }
  }

  function onEvent(type: string, object: O & { code?: number; message?: string }): WatchEnd | undefined {
    if (type === 'ERROR') {
      // The API server reports "too old resource version" as an ERROR event carrying a 410 Status.
      if (object.code === 410) return { kind: 'expired' };
      return { kind: 'error', error: new Error(`watch error event: ${object.code ?? '?'} ${object.message ?? ''}`) };
    }
    if (type === 'ADDED' || type === 'MODIFIED') upsert(store, object);
    else if (type === 'DELETED') {
      const key = objectKey(object);
      if (key !== undefined && store.delete(key)) options.onDelete?.(key);
    }
    if (type !== 'BOOKMARK') options.onSize?.(store.size);
    // BOOKMARK carries only a resourceVersion: the point to resume from.
    const rv = object.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '') resourceVersion = rv;
    return undefined;
  }

  /** One watch stream, from `resourceVersion`, until it ends. */
  function watchOnce(deadline: number): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let ended = false;
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
      const query = { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds, ...(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector }) };
      watcher
        .watch(
          options.path,
          query,
          (type: string, object: O & { code?: number; message?: string }) => {
            if (ended) return;
            armIdle();
            const end = onEvent(type, object);
            if (end !== undefined) finish(end);
          },
          (err: unknown) => {
            if ((err as { statusCode?: number } | null)?.statusCode === 410) finish({ kind: 'expired' });
            else if (err !== null && err !== undefined && !(err instanceof Error && err.name === 'AbortError')) finish({ kind: 'error', error: err });
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
    let reason: RelistReason = 'initial';
    while (!stopping.signal.aborted) {
      try {
        await list(reason);
      } catch (err) {
        if (stopping.signal.aborted) return;
        options.onError?.(err, 'list', attempt);
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
        if (end.kind === 'expired' || end.kind === 'resync') {
          reason = end.kind;
          break;
        }
        if (end.kind === 'error') {
          options.onError?.(end.error, 'watch', attempt);
          await sleepUnlessAborted(backoffDelay(attempt++, initialMs, maxMs), stopping.signal);
          // After a failure the resourceVersion may be too old; the next watch then gets 410 and re-lists.
          continue;
        }
        attempt = 0; // a clean end (server timeout): resume from the last resourceVersion at once
      }
    }
  }

  // run() handles every API failure itself; what reaches here is a bug in a callback.
  const running = run().catch((err: unknown) => options.onError?.(err, 'watch', 0));

  return {
    get: (key) => store.get(key),
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
    size: () => store.size,
    async stop() {
      stopping.abort();
      currentWatch?.abort();
      await running;
    },
  };
}
