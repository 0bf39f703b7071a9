// A node's event-loop lag over a window, from the im_event_loop_lag_seconds histogram of its
// /metrics (every firing of its 100 ms probe timer is a sample): scrape before and after the
// window, then read the window's samples from the difference. One scrape per node per window.

/** Cumulative sample counts by bucket upper bound in seconds (+Inf included). */
export type LagBuckets = Map<number, number>;

const BUCKET = /^im_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)/;

export async function scrapeLag(httpBase: string): Promise<LagBuckets> {
  const text = await (await fetch(`${httpBase}/metrics`)).text();
  const buckets: LagBuckets = new Map();
  for (const line of text.split("\n")) {
    const m = BUCKET.exec(line);
    if (m) buckets.set(m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2]));
  }
  return buckets;
}

/**
 * The window's lag as bucket bounds in ms: the bound under which 99 % of its samples fall, and the
 * bound of its worst sample (Infinity: above the largest bucket).
 */
export function lagOver(before: LagBuckets, after: LagBuckets): { p99Ms: number; maxMs: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const inWindow = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = inWindow(Infinity);
  const boundFor = (share: number) => bounds.find((le) => inWindow(le) >= share * total) ?? Infinity;
  return total === 0 ? { p99Ms: 0, maxMs: 0 } : { p99Ms: boundFor(0.99) * 1000, maxMs: boundFor(1) * 1000 };
}
