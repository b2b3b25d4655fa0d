/**
 * Exponential backoff with jitter for reconnecting to the API server: attempt 0 waits about `initialMs`, each failure
 * doubles it up to `maxMs`. Jitter (50–100 %) keeps replicas from reconnecting in lockstep after an apiserver restart.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random() / 2));
}

/** A sleep that `abort()` ends early (shutdown must not wait out a backoff). */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
