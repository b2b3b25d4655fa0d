/**
 * A token bucket: `burst` evictions at once, then `perMinute` a minute. Pure (the caller passes the time), so the
 * controller's pacing is testable without timers.
 */
export class TokenBucket {
  readonly #perMs: number;
  readonly #burst: number;
  #tokens: number;
  #updatedAt: number;

  constructor(perMinute: number, burst: number, now: number) {
    if (!(perMinute > 0) || !(burst >= 1)) throw new RangeError('rate must be > 0 and burst >= 1');
    this.#perMs = perMinute / 60_000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#updatedAt = now;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + Math.max(0, now - this.#updatedAt) * this.#perMs);
    this.#updatedAt = Math.max(this.#updatedAt, now);
  }

  /** Takes a token if one is available at `now`. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Milliseconds from `now` until a token is available (0 when one is). */
  waitMs(now: number): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : Math.ceil((1 - this.#tokens) / this.#perMs);
  }
}
