// Coalesces many small requests into one: everything added while no flush runs is flushed together
// by one call of `flush`, on the next tick or once its oldest item has waited `lingerMs`. At most one
// flush is in flight, so two batches never contend for the same rows or keys, and batches grow by
// themselves under load. Time spent waiting behind a flush counts as lingering: items that waited
// that long already go as soon as it ends, instead of lingering again. A batcher whose batches may
// be in flight together (maxInFlight > 1) starts the next flush after its own linger instead, while
// fewer than maxInFlight run: flushes start in the order of their items, and a flush that waits on
// far round trips no longer holds every item after it for its whole length.
// Each add() settles with its batch: it gets the results for its own items, in order, or the
// batch's error.

interface Waiter<R> {
  start: number;
  count: number;
  weight: number;
  resolve: (results: R[]) => void;
  reject: (err: unknown) => void;
}

export class TickBatcher<T, R = void> {
  private items: T[] = [];
  private waiters: Waiter<R>[] = [];
  /** Flushes running. */
  private inFlight = 0;
  /** A flush is scheduled (its items linger). */
  private scheduled = false;
  /** When the oldest waiting item was added (performance.now()); meaningful while items wait. */
  private oldestAt = 0;
  /** Callers of idle(), told once nothing is waiting or in flight. */
  private idlers: Array<() => void> = [];

  /**
   * @param flush handles one batch; resolves to one result per item, in item order (or nothing,
   *   for a batcher of writes without results).
   * @param maxBatch the most one flush takes, counted by `weigh`; the rest wait for the next.
   * @param lingerMs how long the oldest waiting item may wait for others (0: the next tick). Each
   *   flush has a fixed cost (round trips, a queue job); waiting a little makes fewer, fuller flushes.
   * @param weigh what one item counts for against maxBatch (default 1).
   * @param maxInFlight how many flushes may run at once (default 1; see above).
   */
  constructor(
    private readonly flush: (items: T[]) => Promise<R[] | void>,
    private readonly maxBatch = 1000,
    private readonly lingerMs = 0,
    private readonly weigh: (item: T) => number = () => 1,
    private readonly maxInFlight = 1,
  ) {}

  /**
   * Queue items for a flush; resolves with their results, in order. Items heavier than maxBatch in
   * all are spread over several flushes (a flush takes what fits, and one item at least).
   */
  async add(items: T[]): Promise<R[]> {
    if (items.length === 0) return [];
    const runs = splitByWeight(items, this.maxBatch, this.weigh);
    if (runs.length === 1) return this.addRun(items);
    return (await Promise.all(runs.map((run) => this.addRun(run)))).flat();
  }

  private addRun(items: T[]): Promise<R[]> {
    return new Promise((resolve, reject) => {
      const weight = items.reduce((sum, item) => sum + this.weigh(item), 0);
      if (this.items.length === 0) this.oldestAt = performance.now();
      this.waiters.push({ start: this.items.length, count: items.length, weight, resolve, reject });
      for (const item of items) this.items.push(item);
      this.schedule();
    });
  }

  /** Resolves once no item waits and no flush runs (at once if that is so now). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idlers.push(resolve));
  }

  private isIdle(): boolean {
    return this.inFlight === 0 && !this.scheduled && this.items.length === 0;
  }

  private tellIdle(): void {
    const idlers = this.idlers;
    this.idlers = [];
    for (const resolve of idlers) resolve();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.items.length === 0) return;
    this.scheduled = true;
    this.after(() => {
      this.scheduled = false;
      this.inFlight++;
      const { items, waiters } = this.take();
      this.flush(items)
        .then(
          (results) => {
            for (const w of waiters) w.resolve(results ? results.slice(w.start, w.start + w.count) : []);
          },
          (err) => {
            for (const w of waiters) w.reject(err);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.schedule();
          if (this.isIdle()) this.tellIdle();
        });
      // with room for another flight, what is left (or comes next) gets its own linger
      this.schedule();
    });
  }

  private after(run: () => void): void {
    const wait = this.lingerMs - (performance.now() - this.oldestAt);
    if (wait >= 1) setTimeout(run, wait);
    else setImmediate(run);
  }

  /** The waiters whose items fit in one batch (at least one waiter, whatever its size). */
  private take(): { items: T[]; waiters: Waiter<R>[] } {
    let n = 0;
    let end = 0;
    let weight = 0;
    while (n < this.waiters.length && (n === 0 || weight + this.waiters[n].weight <= this.maxBatch)) {
      end += this.waiters[n].count;
      weight += this.waiters[n].weight;
      n++;
    }
    const items = this.items.slice(0, end);
    const waiters = this.waiters.slice(0, n);
    this.items = this.items.slice(end);
    this.waiters = this.waiters.slice(n).map((w) => ({ ...w, start: w.start - end }));
    return { items, waiters };
  }
}

/**
 * `items` in consecutive runs, in order, each of at most `maxWeight` by `weigh` (a heavier item
 * alone) and at most `maxCount` items.
 */
export function splitByWeight<T>(items: T[], maxWeight: number, weigh: (item: T) => number, maxCount = Infinity): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let weight = 0;
  for (const item of items) {
    const w = weigh(item);
    if (run.length > 0 && (weight + w > maxWeight || run.length >= maxCount)) {
      runs.push(run);
      run = [];
      weight = 0;
    }
    run.push(item);
    weight += w;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
