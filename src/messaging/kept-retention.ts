// The optional retention of kept messages (KEPT_RETENTION_DAYS). By default (0) a kept message
// stays in MySQL until its recipient logs in and ACKs it, as PROTOCOL.md says; a message to a user
// id nobody uses then stays for ever. With a retention, one node an hour deletes the kept messages
// older than it, delivered or not: whichever node takes the sweep lock, held for the hour.
import type Redis from "ioredis";
import type { Logger } from "../log";
import type { Keys } from "../redis/keys";
import type { KeptStore } from "./kept-store";

const SWEEP_EVERY_MS = 3600_000;
const DAY_MS = 24 * 3600_000;

export class KeptRetention {
  private timer: ReturnType<typeof setInterval> | null = null;
  private sweeping: Promise<unknown> | null = null;
  private stopped = false;

  constructor(
    private readonly store: KeptStore,
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly retentionDays: number,
    private readonly log: Logger,
  ) {}

  /** Sweep now (if no node swept within the hour), then once an hour. Does nothing when the retention is 0. */
  start(): void {
    if (this.retentionDays === 0) return;
    const tick = () => {
      this.sweeping ??= this.sweep()
        .catch((err) => this.log.error({ err }, "the retention sweep of kept messages failed; next try within the hour"))
        .finally(() => (this.sweeping = null));
    };
    tick();
    this.timer = setInterval(tick, SWEEP_EVERY_MS);
  }

  /** No more sweeps; one under way ends after its current chunk. Resolves once it has. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sweeping;
  }

  /** Delete the kept messages past the retention if this node takes the hour's lock; how many went (null: another node has the hour). */
  async sweep(): Promise<number | null> {
    const mine = await this.redis.set(this.keys.keptSweepLock(), "1", "PX", SWEEP_EVERY_MS, "NX");
    if (mine !== "OK") {
      this.log.debug("the retention sweep of kept messages is another node's this hour");
      return null;
    }
    const deleted = await this.store.deleteOlderThan(Date.now() - this.retentionDays * DAY_MS, () => !this.stopped);
    this.log.info({ deleted, retentionDays: this.retentionDays }, "kept messages past their retention deleted");
    return deleted;
  }
}
