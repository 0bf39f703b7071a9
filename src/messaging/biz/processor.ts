// The im-biz processor: routes each message of a job (registry.ts) and delivers the batch.
import type { Job } from "bullmq";
import type { Logger } from "../../log";
import type { BizBatchJob, ReliableMessage } from "../../queues/jobs";
import type { Broker, RoomLogEntry } from "../../router/broker";
import type { ReliableDelivery } from "../reliable-delivery";
import { routeOf } from "./registry";
import type { Route } from "./types";

export interface BizDeps {
  broker: Broker;
  reliable: ReliableDelivery;
  log: Logger;
}

/**
 * The im-biz processor: one job is one node's batch of accepted messages. Reliable deliveries of the
 * whole batch are routed together (one presence lookup, one message per node); room messages are
 * published per room, in seq order. A failure fails the job, and BullMQ retries all of it: reliable
 * deliveries go on from where the failed run left them (ReliableDelivery.send), and room messages
 * already in their room's history are not published again (Broker.publishToRoom).
 */
export function bizProcessor(deps: BizDeps) {
  return async (job: Job<BizBatchJob>): Promise<BizJobOutcome> => {
    const reliable: ReliableMessage[] = [];
    const rooms = new Map<number, RoomLogEntry[]>();
    for (const m of job.data.messages) {
      let route: Route;
      try {
        route = routeOf(m);
      } catch (err) {
        // a message no handler can route would fail its whole batch on every retry: drop it alone
        deps.log.error({ err, msgId: m.msgId, bizCode: m.bizCode, jobId: job.id }, "biz message cannot be routed; dropped");
        continue;
      }
      if (route.kind === "reliable") reliable.push(...route.messages);
      else {
        const entries = rooms.get(route.roomId);
        if (entries) entries.push({ seq: route.seq, msg: route.msg });
        else rooms.set(route.roomId, [{ seq: route.seq, msg: route.msg }]);
      }
    }
    if (deps.log.isLevelEnabled("debug")) deps.log.debug({ jobId: job.id, msgIds: job.data.messages.map((m) => m.msgId) }, "biz processing");
    // every part is let finish before the job fails: a retry must not overlap a part still running
    const [sent, ...published] = await Promise.allSettled([
      deps.reliable.send(reliable, { id: job.id ?? "", retried: job.attemptsStarted > 1 }),
      // published even if the room closed since intake: they were accepted while it was live, and
      // their seqs come before the closing notice's, which nodes would otherwise hold back for them
      ...[...rooms].map(([roomId, entries]) => deps.broker.publishToRoom(roomId, entries)),
    ]);
    for (const o of [sent, ...published]) if (o.status === "rejected") throw o.reason;
    return { recorded: reliable.length > 0, kept: sent.status === "fulfilled" ? sent.value.kept : 0 };
  };
}

/** What an im-biz run returns (BullMQ keeps it as the job's returnvalue). */
export interface BizJobOutcome {
  /** It made reliable deliveries, so it has a record log (ReliableDelivery.send). */
  recorded: boolean;
  /** Reliable deliveries kept for the next login at once (their recipients were offline). */
  kept: number;
}

/**
 * An im-biz job's completion is recorded (the worker's "completed" event, after BullMQ stored it):
 * only now can its record log go, since a job that lost its lock before that is run again.
 */
export function bizJobCompleted(deps: BizDeps, job: Job<BizBatchJob, BizJobOutcome>): void {
  if (!job.returnvalue?.recorded) return;
  const jobId = job.id ?? "";
  deps.reliable.jobDone(jobId).catch((err: unknown) => deps.log.error({ err, jobId }, "an im-biz job's record log could not be deleted; it expires"));
}
