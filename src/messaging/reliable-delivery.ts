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
// The same holds for the last delivery's check: a recipient that logged in again since that delivery
// gets the message on its new session (see sameSessionAs).
//
// An im-biz job that fails partway is retried whole: its run logs each pending record it writes, in
// the same step, and a retry goes on from those records instead of delivering again (see resume).
import type { Logger } from "../log";
import type { AckCheckJob, ReliableMessage } from "../queues/jobs";
import type { Router } from "../router/router";
import type { KeptStore } from "./kept-store";
import { KEPT_NONE_PENDING, recordId, type PendingAcks, type PendingState } from "./pending-acks";

type AckKey = Pick<ReliableMessage, "appId" | "userId" | "msgId">;

/** How long a kept message's ACK stays noted after its row is deleted (see deleteAcked). */
const NOTE_GRACE_MS = 30_000;
/**
 * The waits before each new try at deleting an ACKed kept row that MySQL refused (an outage): about
 * an hour in all. Its noted ACK keeps a replay from sending it again only for PENDING_TTL_MS, and
 * a user may come back later than that.
 */
const FORGET_RETRY_MS = [2_000, 10_000, 60_000, 600_000, 3_000_000];

/** The im-biz job a send() belongs to. */
export interface BizJobRun {
  id: string;
  /** An earlier run of the job started (and failed, or its node died). */
  retried: boolean;
}

export interface CheckOutcome {
  resent: number;
  kept: number;
}

export class ReliableDelivery {
  /** Pending timers: forgetting noted ACKs, and new tries at deleting kept rows. */
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;

  constructor(
    private readonly kept: KeptStore,
    private readonly router: Router,
    private readonly pending: PendingAcks,
    private readonly maxAttempts: number,
    private readonly log: Logger,
  ) {}

  /**
   * First delivery of an im-biz job's messages: to the online recipients now, kept for the offline
   * ones. Each record written is logged as the job's (PendingAcks.recordedBy), so that a retry of
   * the job goes on from it; call jobDone() once the job completed. Resolves to how many were kept.
   */
  async send(messages: ReliableMessage[], job: BizJobRun): Promise<{ kept: number }> {
    const fresh = job.retried ? await this.resume(messages, job.id) : messages;
    const { offline } = await this.deliver(fresh, 1, false, { bizJobId: job.id });
    if (offline.length === 0) return { kept: 0 };
    // recorded before MySQL has them, so that a retry knows they were being kept
    await this.pending.record(offline, KEPT_NONE_PENDING, job.id);
    return { kept: (await this.keepForLater(offline, KEPT_NONE_PENDING)).length };
  }

  /** An im-biz job that sent reliable messages completed: its log is of no more use. */
  async jobDone(jobId: string): Promise<void> {
    await this.pending.forgetJob(jobId);
  }

  /**
   * A retried job: go on from the records its earlier runs wrote, and resolve to the messages they
   * did not get to. A delivery made before is not made again: an ACK since has removed its record,
   * and a record that moved on belongs to its check or to a login's replay; one still at delivery
   * 1 gets its check (maybe a second one, which is harmless). A message that was being kept is kept
   * again (an insert of the same row changes nothing) and delivered if its recipient is online now.
   */
  private async resume(messages: ReliableMessage[], jobId: string): Promise<ReliableMessage[]> {
    const recorded = await this.pending.recordedBy(jobId);
    const before = messages.filter((m) => recorded.has(recordId(m)));
    if (before.length === 0) return messages;
    const states = await this.pending.states(before);
    const unchecked = before.filter((_, i) => states[i]?.attempt === 1);
    const beingKept = before.filter((_, i) => states[i]?.attempt === 0);
    this.log.warn({ jobId, unchecked: unchecked.length, beingKept: beingKept.length, settled: before.length - unchecked.length - beingKept.length }, "im-biz job retried: going on from its earlier run's records");
    await this.pending.scheduleCheck(unchecked, 1);
    await this.keepForLater(beingKept, KEPT_NONE_PENDING);
    return messages.filter((m) => !recorded.has(recordId(m)));
  }

  /**
   * A login replays these kept messages (of its user) as delivery 1 (they stay kept until ACKed):
   * `write` them once their pending records are stored. One ACKed already whose row is still there
   * (its delete failed, or has not run yet) is not replayed, and its row is deleted. Resolves then,
   * with `checked`, which settles once their check is stored too: a replay need not wait for each
   * page's check (the check batch waits up to CHECK_LINGER_MS), only for all of them before its
   * login counts as done.
   */
  async replay(messages: ReliableMessage[], write: (messages: ReliableMessage[]) => void): Promise<{ checked: Promise<void> }> {
    // the ACK notes are read and the others' records written in one step (one round trip)
    const acked = new Set((await this.pending.recordUnlessAcked(messages, { attempt: 1, kept: true })).acked);
    for (const m of acked) this.forgetKept(m);
    const replayed = messages.filter((m) => !acked.has(m));
    const checked = this.pending.scheduleCheck(replayed, 1);
    // awaited by the caller later: handled now, so that a failure meanwhile is not "unhandled"
    checked.catch(() => {});
    write(replayed);
    return { checked };
  }

  /**
   * The recipient ACKed one delivery (from a session of that user: the ACK handler takes appId and
   * userId from the session, never from the frame): stop retries. Resolves once
   * the record is settled, which notes a kept message's ACK (PendingAcks.settle); its row is
   * deleted after that (see forgetKept).
   */
  async ack(appId: number, userId: number, msgId: string): Promise<void> {
    const state = await this.pending.settle(appId, userId, msgId);
    if (state?.kept) this.forgetKept({ appId, userId, msgId });
  }

  /**
   * Delete an ACKed kept message's row (see deleteAcked), in the background. Should MySQL refuse, it
   * is tried again after each of FORGET_RETRY_MS; meanwhile the noted ACK stays (for PENDING_TTL_MS
   * after the recipient's last record at least), so the next login's replay skips the row and
   * deletes it.
   */
  private forgetKept(key: AckKey, tries = 0): void {
    this.deleteAcked(key).catch((err: unknown) => {
      const retryMs = FORGET_RETRY_MS[tries];
      const context = { err, userId: key.userId, msgId: key.msgId, tries: tries + 1 };
      if (retryMs === undefined) {
        this.log.error(context, "an ACKed kept message could not be deleted, tried for an hour: only a login's replay within the ACK's note deletes it now");
        return;
      }
      this.log.warn({ ...context, retryMs }, "an ACKed kept message could not be deleted; tried again later (a login's replay meanwhile skips it and deletes it)");
      this.after(retryMs, () => this.forgetKept(key, tries + 1));
    });
  }

  /** Run `fn` in `ms`, unless the node stops first. */
  private after(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  /**
   * Delete an ACKed kept message's row; its noted ACK goes NOTE_GRACE_MS later, not at once: a
   * login's replay that read the row just before the delete looks at the notes after it.
   */
  private async deleteAcked(key: AckKey): Promise<void> {
    await this.kept.forget(key);
    this.after(NOTE_GRACE_MS, () => {
      this.pending
        .forgetAcked(key)
        .catch((err: unknown) => this.log.warn({ err, userId: key.userId, msgId: key.msgId }, "a noted ACK could not be forgotten; it goes with its pending hash"));
    });
  }

  /**
   * The node stops: notes not yet forgotten stay, to go with their pending hashes (PENDING_TTL_MS);
   * rows not yet deleted stay for a login's replay to skip and delete.
   */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /**
   * The im-ack processor: the ACK timeout of one batch of deliveries passed. `retried`: an earlier
   * run of this job failed or died, maybe after it had made delivery n+1 of some messages but before
   * their check was stored; those get that check now (a second one is harmless: records only move
   * from the state a check expects). An earlier run may likewise have kept messages but not yet
   * delivered them to a recipient's new session (the last attempt's keep, or keepForLater's look
   * again on an earlier one): those are looked at again.
   */
  async check(job: AckCheckJob, retried: boolean): Promise<CheckOutcome> {
    const final = job.attempt >= this.maxAttempts;
    const states = await this.pending.states(job.messages);
    // the others were ACKed, or a later delivery (a resend, a replay at login) owns their schedule
    const due = { fresh: [] as ReliableMessage[], kept: [] as ReliableMessage[] };
    const unchecked: ReliableMessage[] = [];
    const keptByEarlierRun: ReliableMessage[] = [];
    job.messages.forEach((m, i) => {
      const state = states[i];
      if (state?.attempt === job.attempt) (state.kept ? due.kept : due.fresh).push(m);
      else if (retried && state?.attempt === job.attempt + 1) unchecked.push(m);
      else if (retried && state?.attempt === 0) keptByEarlierRun.push(m);
    });
    // delivery n+1 went to the session it found; delivery n's is the best guess at it
    if (unchecked.length > 0) await this.pending.scheduleCheck(unchecked, job.attempt + 1, sessionsOf(job));
    // an earlier run may have failed deleting the row of a message ACKed while it kept it (keep):
    // an ACKed message has no record, and deleting a row that is not there costs nothing
    if (retried) await Promise.all(job.messages.filter((_, i) => states[i] === null).map((m) => this.deleteAcked(m)));
    const was = (kept: boolean): PendingState => ({ attempt: job.attempt, kept });
    if (final) {
      // attempts used up: kept for the next login (a late ACK still deletes it)
      const kept = await this.keep(due.fresh, was(false));
      const { moved: markedKept } = await this.pending.markKept(due.kept, was(true));
      // from "kept, none pending" only: a login's replay that took one over meanwhile owns it
      const { sent } = await this.deliver([...kept, ...keptByEarlierRun], 1, true, { from: KEPT_NONE_PENDING, skip: sameSessionAs(job) });
      return { resent: sent, kept: kept.length + markedKept.length };
    }
    const fresh = await this.deliver(due.fresh, job.attempt + 1, false);
    const keptBefore = await this.deliver(due.kept, job.attempt + 1, true);
    const kept = await this.keepForLater(fresh.offline, was(false));
    // already in MySQL, where the next login's replay finds them
    const { moved: markedKept } = await this.pending.markKept(keptBefore.offline, was(true));
    // the look again that an earlier run's keepForLater may not have got to
    const again = await this.deliver(keptByEarlierRun, 1, true, { from: KEPT_NONE_PENDING, skip: sameSessionAs(job) });
    return { resent: fresh.sent + keptBefore.sent + again.sent, kept: kept.length + markedKept.length };
  }

  /**
   * Deliver to the recipients online now (delivery n), except where `skip` says their session
   * already had it. Resolves to the messages of the others (offline) and how many were sent.
   * Delivery 1 starts a pending record (logged as `bizJobId`'s), or moves it on from `from` if
   * given; delivery n > 1 moves it on from n-1. A record moves only from the state expected, so a
   * message ACKed (or taken over by a login's replay) since its check read it is not sent again.
   */
  private async deliver(
    messages: ReliableMessage[],
    attempt: number,
    kept: boolean,
    opts: { from?: PendingState; skip?: SessionFilter; bizJobId?: string } = {},
  ): Promise<{ offline: ReliableMessage[]; sent: number }> {
    if (messages.length === 0) return { offline: [], sent: 0 };
    const { byNode, sessionOf } = await this.router.locate(messages);
    if (byNode.size === 0) return { offline: messages, sent: 0 };
    const located = [...byNode.values()].flat();
    const { skip } = opts;
    let sending = skip ? located.filter((m) => !skip(m, sessionOf.get(m) ?? "")) : located;
    const from = opts.from ?? (attempt > 1 ? { attempt: attempt - 1, kept } : null);
    if (from === null) await this.pending.record(sending, { attempt, kept }, opts.bizJobId);
    else sending = (await this.pending.advance(sending, from, { attempt, kept })).moved;
    if (sending.length < located.length) {
      const send = new Set(sending);
      for (const [node, list] of byNode) byNode.set(node, list.filter((m) => send.has(m)));
    }
    // the check is stored while the deliveries go out; both must be done before this job completes
    await Promise.all([this.router.publish(byNode), this.pending.scheduleCheck(sending, attempt, sessionOf)]);
    const delivered = new Set(located);
    return { offline: messages.filter((m) => !delivered.has(m)), sent: sending.length };
  }

  /**
   * Keep in MySQL for the recipient's next login, then look again: one who logged in meanwhile gets
   * them now. Resolves to the messages kept (see keep). They move on from "kept, none pending" only,
   * as in a final check: a login's replay that took one over meanwhile owns it.
   */
  private async keepForLater(messages: ReliableMessage[], recorded: PendingState): Promise<ReliableMessage[]> {
    const kept = await this.keep(messages, recorded);
    await this.deliver(kept, 1, true, { from: KEPT_NONE_PENDING });
    return kept;
  }

  /**
   * Keep in MySQL. `recorded`: the messages' pending record (a delivery's, or already "kept, none
   * pending"); it becomes "kept, none pending" where it still holds that. Where an ACK came
   * meanwhile, the row is deleted again; where a login's replay took the message over meanwhile,
   * the row stays (that replay's ACK deletes it). Resolves to the messages this call left kept with
   * nothing pending.
   */
  private async keep(messages: ReliableMessage[], recorded: PendingState): Promise<ReliableMessage[]> {
    if (messages.length === 0) return [];
    await this.kept.keep(messages);
    const { moved: kept, gone } = await this.pending.markKept(messages, recorded);
    await Promise.all(gone.map((m) => this.kept.forget(m)));
    if (this.log.isLevelEnabled("debug")) this.log.debug({ msgIds: kept.map((m) => m.msgId) }, "kept for the next login");
    return kept;
  }
}

/** Says whether a message's recipient, now logged in with `session`, already had its delivery. */
type SessionFilter = (message: ReliableMessage, session: string) => boolean;

/**
 * A message whose last delivery went to the session its recipient still has needs no more: it
 * stays kept for the next login. One whose recipient logged in again since (a reconnect) does: that
 * login's replay came before the message was kept, so it is delivered now, as a replay would have
 * (a new round of attempts, for the new session). An unknown session counts as the same.
 */
function sameSessionAs(job: AckCheckJob): SessionFilter {
  const last = sessionsOf(job);
  return (message, session) => {
    const before = last.get(message) ?? "";
    return before === "" || before === session;
  };
}

/** The session each of the job's deliveries went to ("" where unknown). */
function sessionsOf(job: AckCheckJob): Map<ReliableMessage, string> {
  return new Map(job.messages.map((m, i) => [m, job.sessions?.[i] ?? ""]));
}
