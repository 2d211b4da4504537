/**
 * Per-key token buckets, in memory: each key may send `ratePerSecond` requests per second on
 * average, with bursts of `burstSeconds` worth. Per process: N instances allow N times the rate.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly capacity: number;

  constructor(readonly ratePerSecond: number, burstSeconds: number) {
    this.capacity = ratePerSecond * burstSeconds;
  }

  /** Takes a token for `key`; 0 when granted, else whole seconds until one is available. */
  take(key: string, nowMs: number): number {
    const bucket = this.buckets.get(key) ?? { tokens: this.capacity, at: nowMs };
    const refill = ((nowMs - bucket.at) / 1000) * this.ratePerSecond;
    bucket.tokens = Math.min(this.capacity, bucket.tokens + refill);
    bucket.at = nowMs;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSecond));
  }
}
