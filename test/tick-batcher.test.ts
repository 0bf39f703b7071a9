import { describe, expect, test } from "bun:test";
import { TickBatcher } from "../src/batching/tick-batcher";
import { waitFor } from "./support/wait";

describe("TickBatcher", () => {
  test("adds of one tick share one flush, and each gets the results of its own items, in order", async () => {
    const flushes: number[][] = [];
    const batcher = new TickBatcher<number, string>(async (items) => {
      flushes.push(items);
      return items.map((n) => `r${n}`);
    });
    const [a, b, c] = await Promise.all([batcher.add([1, 2]), batcher.add([3]), batcher.add([4, 5, 6])]);
    expect(flushes).toEqual([[1, 2, 3, 4, 5, 6]]);
    expect([a, b, c]).toEqual([["r1", "r2"], ["r3"], ["r4", "r5", "r6"]]);
  });

  test("one flush in flight: what comes meanwhile waits for the next, which takes at most maxBatch by weight", async () => {
    const flushes: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const batcher = new TickBatcher<number>(
      async (items) => {
        flushes.push(items);
        if (flushes.length === 1) await first;
      },
      10,
      0,
      (n) => n,
    );
    const running = batcher.add([1]);
    await waitFor(() => flushes.length === 1, 1000, "the first flush to start");
    const later = [batcher.add([4]), batcher.add([5]), batcher.add([3]), batcher.add([20])];
    expect(flushes).toEqual([[1]]);
    release();
    await Promise.all([running, ...later]);
    // 4 + 5 fit in 10, 3 would not; a single item heavier than maxBatch still goes, alone
    expect(flushes).toEqual([[1], [4, 5], [3], [20]]);
  });

  test("maxInFlight 2: a second flush starts while the first runs, in item order; a third waits for one of them", async () => {
    const flushes: number[][] = [];
    const releases: Array<() => void> = [];
    const batcher = new TickBatcher<number>(
      async (items) => {
        flushes.push(items);
        await new Promise<void>((r) => releases.push(r));
      },
      10,
      0,
      () => 1,
      2,
    );
    const first = batcher.add([1, 2]);
    await waitFor(() => flushes.length === 1, 1000, "the first flush to start");
    const second = batcher.add([3]);
    await waitFor(() => flushes.length === 2, 1000, "the second flush to start while the first runs");
    const third = batcher.add([4]);
    const fourth = batcher.add([5]);
    // a flush with linger 0 would start on the next turn of the event loop
    await new Promise((r) => setImmediate(r));
    expect(flushes).toEqual([[1, 2], [3]]);
    let idle = false;
    void batcher.idle().then(() => (idle = true));
    releases[1]();
    await second;
    // a flight came free: what waited goes together
    await waitFor(() => flushes.length === 3, 1000, "the third flush to start");
    expect(flushes[2]).toEqual([4, 5]);
    releases[0]();
    releases[2]();
    await Promise.all([first, third, fourth]);
    await waitFor(() => idle, 1000, "idle once every flight ended");
  });

  test("items that waited behind a flush for the linger time go as soon as it ends, without lingering again", async () => {
    const LINGER_MS = 600;
    const started: number[] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const batcher = new TickBatcher<number>(
      async () => {
        started.push(performance.now());
        if (started.length === 1) await first;
      },
      100,
      LINGER_MS,
    );
    const running = batcher.add([1]);
    await waitFor(() => started.length === 1, 5000, "the first flush to start");
    const later = batcher.add([2]);
    // item 2 waits behind the first flush for longer than the linger time
    await Bun.sleep(LINGER_MS + 300);
    const releasedAt = performance.now();
    release();
    await Promise.all([running, later]);
    expect(started).toHaveLength(2);
    // lingering again would have started the second flush LINGER_MS after the release
    expect(started[1] - releasedAt).toBeLessThan(LINGER_MS / 2);
  });

  test("a failed flush rejects every add of its batch, and the next batch still runs", async () => {
    let fail = true;
    const batcher = new TickBatcher<number>(async () => {
      if (fail) throw new Error("redis down");
    });
    const results = await Promise.allSettled([batcher.add([1]), batcher.add([2])]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    await expect(batcher.add([3])).resolves.toEqual([]);
  });

  test("idle() resolves at once when nothing waits, and only after the last batch otherwise", async () => {
    const flushed: number[] = [];
    const batcher = new TickBatcher<number>(
      async (items) => {
        await Bun.sleep(5);
        flushed.push(...items);
      },
      2,
      5,
    );
    await batcher.idle();
    void batcher.add([1]);
    void batcher.add([2]);
    void batcher.add([3]);
    await batcher.idle();
    // maxBatch 2: two flushes, and idle() waited for both
    expect(flushed).toEqual([1, 2, 3]);
  });
});
