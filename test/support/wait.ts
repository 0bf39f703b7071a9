// Waiting for an outcome with a bound: the only way tests wait. A timeout fails with what was awaited.

type Truthy<T> = Exclude<T, false | 0 | "" | null | undefined>;

/** Poll `predicate` until it returns a truthy value (returned); fail after timeoutMs with `what`. */
export async function waitFor<T>(predicate: () => T | Promise<T>, timeoutMs: number, what: string): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value as Truthy<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}
