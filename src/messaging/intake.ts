// Intake of business messages (client BIZ and backend pushes): each message gets its msgId (and
// room seq) and is queued on im-biz. The messages a node accepts within a few ms share one
// reservation and one job, so the queue's cost per message shrinks as the load grows. A submit
// resolves once its job is stored in Redis: only then may the sender be told "accepted".
import type { Logger } from "../log";
import type { Queues } from "../queues/queues";
import type { BizMessage } from "../queues/jobs";
import type { Sequencer } from "./sequencer";
import { TickBatcher } from "../batching/tick-batcher";
import { ImError } from "../protocol/errors";

/** A message as submitted: everything but what intake assigns. */
export type Submission = Omit<BizMessage, "msgId" | "seq"> & {
  /** The room a room message goes to: it gets that room's next seq. */
  roomId?: number;
};

/** One im-biz job holds at most this many deliveries (a push counts one per recipient), or one push. */
const MAX_BATCH = 2000;
/**
 * Batches being reserved and queued at once. A batch takes two round trips to Redis (the
 * reservation, then the job); one at a time, a node far from Redis (30 ms each way) held every
 * message accepted meanwhile for up to 120 ms before its own batch could start. Batches may overlap
 * (see the constructor); this bounds what a stalled Redis lets pile up.
 */
const MAX_BATCHES_IN_FLIGHT = 8;

export class BizIntake {
  private readonly batcher: TickBatcher<Submission, BizMessage | null>;

  /**
   * @param lingerMs how long the first message of a batch waits for others (INTAKE_LINGER_MS): fewer,
   *   fuller jobs. A job's fixed cost (BullMQ's add, fetch and finish scripts on both ends) dominates
   *   a node's CPU at moderate rates: at 1,000 private msg/s, 10 ms instead of 2 ms cut the nodes'
   *   CPU by a third and p99 did not grow (bench/RESULTS.md, "Intake linger"); 20 ms instead of 10
   *   cut another 16 points of a core (median) at 1,000-5,000/s, for 5 ms more p50 ("Intake linger 20 ms").
   */
  constructor(sequencer: Sequencer, queues: Queues, log: Logger, lingerMs: number) {
    // Batches may be in flight together: each sends its reservation as it starts (before its first
    // await), batches start in accept order, and Redis runs one connection's commands in the order
    // sent, so msgIds and room seqs still follow the accept order. Their jobs may be stored out of
    // order, which changes nothing: workers take jobs concurrently anyway (room messages are put
    // back in seq order by the nodes, gateway/room-order.ts), and each sender's answers keep its
    // frames' order (Session.pipeline).
    this.batcher = new TickBatcher(async (submissions) => {
      const reserved = await sequencer.reserve(submissions.map((s) => s.roomId));
      // a room message whose room closed since its check took no seq: it is refused, not queued
      const results = submissions.map(({ roomId: _room, ...s }, i) => (reserved[i].roomClosed ? null : { ...s, ...reserved[i] }));
      const messages = results.filter((m) => m !== null);
      if (messages.length === 0) return results;
      // a fixed id: an add that ioredis sends again after a reconnect (its answer lost) finds the
      // job there and adds no second one, which would deliver the batch again
      const job = await queues.biz.add("batch", { messages }, { jobId: `b${messages[0].msgId}` });
      if (log.isLevelEnabled("debug")) log.debug({ jobId: job.id, msgIds: messages.map((m) => m.msgId) }, "biz queued");
      return results;
    }, MAX_BATCH, lingerMs, (s) => s.userIds?.length ?? 1, MAX_BATCHES_IN_FLIGHT);
  }

  /**
   * Reserve the message's msgId (and room seq) and queue it. Resolves once it is queued. The
   * message's place in line is taken by the call itself: messages submitted one after another get
   * increasing msgIds (and room seqs) in that order, whether or not the caller awaits in between.
   * A room message whose room closed since the caller's check is refused (room_not_live).
   */
  async submit(submission: Submission): Promise<BizMessage> {
    const [message] = await this.batcher.add([submission]);
    // its intake check saw the room live, but the room closed before the message took its place
    if (message === null) throw new ImError("room_not_live", `room ${submission.roomId} is not live`);
    return message;
  }

  /** Resolves once everything submitted so far is queued (or failed): a stopping node waits for it. */
  idle(): Promise<void> {
    return this.batcher.idle();
  }
}
