/**
 * Token buckets for rate limits: each key (a client address, a user, a token) holds up to
 * `burst` tokens, refilled at `ratePerS`; each request takes one.
 */

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, Bucket>();
  #sinceSweep = 0;

  /**
   * @param ratePerS tokens added per second.
   * @param burst most tokens a bucket holds. Defaults to twice `ratePerS`.
   */
  constructor(ratePerS: number, burst = ratePerS * 2) {
    this.#ratePerMs = ratePerS / 1000;
    this.#burst = Math.max(1, burst);
  }

  /**
   * Takes `cost` tokens for `key` (a cost above the burst counts as the burst). Returns 0 when
   * allowed, else the whole seconds until enough are free; a refused request takes nothing.
   */
  take(key: string, cost = 1, now = performance.now()): number {
    this.#sweep(now);
    const need = Math.min(cost, this.#burst);
    const bucket = this.#buckets.get(key);
    const tokens = bucket ? Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#ratePerMs) : this.#burst;
    if (tokens < need) return Math.max(1, Math.ceil((need - tokens) / this.#ratePerMs / 1000));
    if (bucket) {
      bucket.tokens = tokens - need;
      bucket.at = now;
    } else {
      this.#buckets.set(key, { tokens: tokens - need, at: now });
    }
    return 0;
  }

  /** Keys being tracked (buckets not yet full again). */
  get size(): number {
    return this.#buckets.size;
  }

  // Forget buckets that have refilled, so memory follows active clients, not every client ever seen.
  #sweep(now: number): void {
    if (++this.#sinceSweep < 1000) return;
    this.#sinceSweep = 0;
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + (now - bucket.at) * this.#ratePerMs >= this.#burst) this.#buckets.delete(key);
    }
  }
}
