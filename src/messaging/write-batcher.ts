// Coalesces many small writes into one: everything added while no flush runs is flushed together
// by one call of `flush`. At most one flush is in flight, so two batches of the same kind never
// contend for the same rows. Each add() resolves or rejects with its batch.

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class WriteBatcher<T> {
  private items: T[] = [];
  private waiters: Waiter[] = [];
  private busy = false;

  constructor(private readonly flush: (items: T[]) => Promise<void>) {}

  add(items: T[]): Promise<void> {
    if (items.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.items.push(...items);
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.busy || this.items.length === 0) return;
    // the next tick gathers whatever else arrives in this one
    this.busy = true;
    setImmediate(() => {
      const items = this.items;
      const waiters = this.waiters;
      this.items = [];
      this.waiters = [];
      this.flush(items)
        .then(
          () => waiters.forEach((w) => w.resolve()),
          (err) => waiters.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.busy = false;
          this.schedule();
        });
    });
  }
}
