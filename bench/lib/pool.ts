// Run an async function over many items with at most `limit` in flight: HTTP token fetches and
// connects must not open thousands of sockets at once (and must not measure that storm).
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const sleep = (ms: number) => Bun.sleep(ms);

/** Poll `done` every `stepMs` until it is true or `timeoutMs` passed. True when it became true. */
export async function waitFor(done: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(stepMs);
  }
  return true;
}
