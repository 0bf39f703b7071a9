// A promise that something else settles, with a deadline.
import { ImClientError } from "./errors";

/**
 * Guarantees: the promise settles exactly once (the first of resolve, reject or the deadline wins);
 * its timer is cleared whichever way it settles, so a settled Waiter holds nothing alive.
 */
export class Waiter<T> {
  readonly promise: Promise<T>;
  private settle!: { resolve: (v: T) => void; reject: (e: Error) => void };
  private readonly timer: ReturnType<typeof setTimeout>;
  private done = false;

  constructor(timeoutMs: number, what: string) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.timer = setTimeout(() => this.reject(new ImClientError("timeout", `no ${what} within ${timeoutMs} ms`)), timeoutMs);
  }

  resolve(value: T): void {
    if (this.finish()) this.settle.resolve(value);
  }

  reject(err: Error): void {
    if (this.finish()) this.settle.reject(err);
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    return true;
  }
}
