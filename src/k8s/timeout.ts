/**
 * Rejects when `promise` has not settled within `ms`. client-node 1.4 sets no request timeout, and a black-holed
 * connection to the API server would otherwise hang a background loop forever (the request itself is abandoned).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
