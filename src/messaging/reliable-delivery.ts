// Reliable delivery (5556 and pushes), PROTOCOL.md section 5: at least once, ACK-tracked, resent
// up to maxAttempts deliveries, kept in MySQL for the next login when the recipient is offline or
// never ACKs, and never delivered again once ACKed.
//
// Where a message lives until it is ACKed: in its im-biz job until the worker is done with it, then
// in its im-ack check job (and the pending record) while it is delivered, and in MySQL once it is
// kept. So a node that dies or drains loses nothing: the jobs stay in Redis for the other nodes.
//
// Keeping races with a login: the login binds the user, then reads the kept rows; keeping writes the
// row, then looks the user up again. Whichever comes second sees the other, so the message is
// replayed, delivered, or both (the client de-duplicates by msgId). Nothing falls between the two.
import type { Logger } from "../log";
import type { AckCheckJob, ReliableMessage } from "../queues/jobs";
import type { Router } from "../router/router";
import type { KeptStore } from "./kept-store";
import type { PendingAcks } from "./pending-acks";

export interface CheckOutcome {
  resent: number;
  kept: number;
}

export class ReliableDelivery {
  constructor(
    private readonly kept: KeptStore,
    private readonly router: Router,
    private readonly pending: PendingAcks,
    private readonly maxAttempts: number,
    private readonly log: Logger,
  ) {}

  /** First delivery of new messages: to the online recipients now, kept for the offline ones. */
  async send(messages: ReliableMessage[]): Promise<void> {
    const offline = await this.deliver(messages, 1, false);
    await this.keepForLater(offline);
  }

  /**
   * A login replays these kept messages as delivery 1 (they stay kept until ACKed): `write` them
   * once their pending records are stored. Resolves once their check is scheduled too.
   */
  async replay(messages: ReliableMessage[], write: () => void): Promise<void> {
    await this.pending.record(messages, 1, true);
    const scheduled = this.pending.scheduleCheck(messages, 1);
    write();
    await scheduled;
  }

  /** The recipient ACKed one delivery (only ever from its own session): stop retries, forget it. */
  async ack(appId: number, userId: number, msgId: string): Promise<void> {
    const state = await this.pending.settle(appId, userId, msgId);
    if (state?.kept) await this.kept.forget({ appId, userId, msgId });
  }

  /** The im-ack processor: the ACK timeout of one batch of deliveries passed. */
  async check(job: AckCheckJob): Promise<CheckOutcome> {
    const states = await this.pending.states(job.messages);
    // the others were ACKed, or a later delivery (a resend, a replay at login) owns their schedule
    const due = { fresh: [] as ReliableMessage[], kept: [] as ReliableMessage[] };
    job.messages.forEach((m, i) => {
      const state = states[i];
      if (state?.attempt === job.attempt) (state.kept ? due.kept : due.fresh).push(m);
    });
    const total = due.fresh.length + due.kept.length;
    if (job.attempt >= this.maxAttempts) {
      // attempts used up: kept for the next login (a late ACK still deletes it)
      await this.keep(due.fresh);
      await this.pending.markKept(due.kept);
      return { resent: 0, kept: total };
    }
    const offline = await this.deliver(due.fresh, job.attempt + 1, false);
    const offlineKept = await this.deliver(due.kept, job.attempt + 1, true);
    await this.keepForLater(offline);
    // already in MySQL, where the next login's replay finds them
    await this.pending.markKept(offlineKept);
    const kept = offline.length + offlineKept.length;
    return { resent: total - kept, kept };
  }

  /** Deliver to the recipients online now (delivery n); resolves to the messages of the others. */
  private async deliver(messages: ReliableMessage[], attempt: number, kept: boolean): Promise<ReliableMessage[]> {
    if (messages.length === 0) return [];
    const byNode = await this.router.locate(messages);
    if (byNode.size === 0) return messages;
    const online = [...byNode.values()].flat();
    await this.pending.record(online, attempt, kept);
    const scheduled = this.pending.scheduleCheck(online, attempt);
    await this.router.publish(byNode);
    await scheduled;
    const delivered = new Set(online);
    return messages.filter((m) => !delivered.has(m));
  }

  /** Keep in MySQL for the recipient's next login, then look again: one who logged in meanwhile gets them now. */
  private async keepForLater(messages: ReliableMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.keep(messages);
    await this.deliver(messages, 1, true);
  }

  private async keep(messages: ReliableMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.kept.keep(messages);
    await this.pending.markKept(messages);
    if (this.log.isLevelEnabled("debug")) this.log.debug({ msgIds: messages.map((m) => m.msgId) }, "kept for the next login");
  }
}
