// Admission limits of the gateway: a token bucket per connection, and new connections per IP.

/** Token bucket: `ratePerSec` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Take one token; false when the bucket is empty (the caller refuses the frame). */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * New connections per client IP per minute (fixed one-minute windows, node-local). With
 * `perMinute` 0 every connection is admitted. Behind fly's proxy the IP must come from the PROXY
 * protocol (TCP) or Fly-Client-IP (HTTP), or every client would share the proxy's address.
 */
export class ConnectRateLimiter {
  private window = 0;
  private counts = new Map<string, number>();

  constructor(private readonly perMinute: number) {}

  admit(ip: string): boolean {
    if (this.perMinute === 0) return true;
    const window = Math.floor(Date.now() / 60_000);
    if (window !== this.window) {
      this.window = window;
      this.counts = new Map();
    }
    const n = (this.counts.get(ip) ?? 0) + 1;
    this.counts.set(ip, n);
    return n <= this.perMinute;
  }
}
