// Latency histogram and small summaries. Fan-out records millions of latencies per step, so they go
// into fixed buckets (10 µs wide up to 100 ms, 1 ms wide up to 100 s) instead of an array to sort.

const FINE_US = 10;
const FINE_BUCKETS = 10_000; // 0 .. 100 ms
const COARSE_US = 1000;
const COARSE_BUCKETS = 100_000; // 100 ms .. 100.1 s

export class Histogram {
  private readonly fine = new Uint32Array(FINE_BUCKETS);
  private readonly coarse = new Uint32Array(COARSE_BUCKETS);
  count = 0;
  maxUs = 0;

  recordUs(us: number): void {
    if (us < 0) us = 0;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
    const f = (us / FINE_US) | 0;
    if (f < FINE_BUCKETS) this.fine[f]++;
    else this.coarse[Math.min(COARSE_BUCKETS - 1, ((us - FINE_BUCKETS * FINE_US) / COARSE_US) | 0)]++;
  }

  /** The p-th percentile (0 < p ≤ 100) in ms, at bucket resolution (upper bound of its bucket). */
  percentileMs(p: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < FINE_BUCKETS; i++) {
      seen += this.fine[i];
      if (seen >= rank) return ((i + 1) * FINE_US) / 1000;
    }
    for (let i = 0; i < COARSE_BUCKETS; i++) {
      seen += this.coarse[i];
      if (seen >= rank) return (FINE_BUCKETS * FINE_US + (i + 1) * COARSE_US) / 1000;
    }
    return this.maxUs / 1000;
  }
}

export function median(values: number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Median of each numeric column over repetitions; other columns are taken from the first. */
export function medianRow<T extends Record<string, number | string>>(rows: T[]): T {
  const out: Record<string, number | string> = { ...rows[0] };
  for (const key of Object.keys(rows[0])) {
    if (typeof rows[0][key] === "number") out[key] = median(rows.map((r) => r[key] as number));
  }
  return out as T;
}

/** The p-th percentile of a small sample (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}
