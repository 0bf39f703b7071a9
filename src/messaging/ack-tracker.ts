// ACK tracking of reliable deliveries (5556 and pushes), PROTOCOL.md section 5:
// every delivery is recorded as pending in Redis and checked by a delayed im-ack job; an ACK from
// the recipient clears it (and forgets the kept copy); otherwise the job resends, up to maxAttempts
// deliveries in all, and then leaves the message kept for the recipient's next login.
import type { Job } from "bullmq";
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { Queues } from "../queues/queues";
import type { AckCheckJob } from "../queues/jobs";
import type { Router } from "../router/router";
import type { Delivery } from "../router/node-message";
import type { KeptStore } from "./kept-store";

/** A pending record outlives any retry schedule by far; it only guards against leaks. */
const PENDING_TTL_MS = 24 * 3600 * 1000;

export type AckCheckOutcome = "acked" | "superseded" | "resent" | "kept";

export class AckTracker {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly queues: Queues,
    private readonly router: Router,
    private readonly kept: KeptStore,
    private readonly settings: { ackTimeoutMs: number; maxAttempts: number },
  ) {}

  /** Record these deliveries as pending (attempt n) and schedule their checks. Call before writing them. */
  async track(deliveries: Delivery[], attempt: number): Promise<void> {
    if (deliveries.length === 0) return;
    const tx = this.redis.multi();
    for (const d of deliveries) {
      const key = this.keys.pending(d.appId, d.userId);
      tx.hset(key, d.msgId, String(attempt)).pexpire(key, PENDING_TTL_MS);
    }
    await tx.exec();
    await this.queues.ack.addBulk(
      deliveries.map((d) => ({
        name: "check",
        data: { ...d, attempt },
        opts: { delay: this.settings.ackTimeoutMs, jobId: `ack-${d.appId}-${d.userId}-${d.msgId}-${attempt}` },
      })),
    );
  }

  /** The recipient confirmed one delivery: stop its retries and forget the kept copy. */
  async ack(appId: number, userId: number, msgId: string): Promise<void> {
    await this.redis.hdel(this.keys.pending(appId, userId), msgId);
    await this.kept.forget({ appId, userId, msgId });
  }

  /** The im-ack processor: the delivery's ACK timeout passed. */
  async check(job: Job<AckCheckJob>): Promise<AckCheckOutcome> {
    const { attempt, ...delivery } = job.data;
    const key = this.keys.pending(delivery.appId, delivery.userId);
    const pending = await this.redis.hget(key, delivery.msgId);
    if (pending === null) return "acked";
    // a later delivery of the same message (a resend, or a replay at login) owns the schedule now
    if (Number(pending) !== attempt) return "superseded";
    if (attempt < this.settings.maxAttempts) {
      const byNode = await this.router.locate([delivery]);
      if (byNode.size > 0) {
        await this.track([delivery], attempt + 1);
        await this.router.publish(byNode);
        return "resent";
      }
    }
    // attempts used up, or the recipient went offline: it stays kept in MySQL for the next login
    await this.redis.hdel(key, delivery.msgId);
    return "kept";
  }
}
