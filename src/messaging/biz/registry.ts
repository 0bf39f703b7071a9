// bizCode → handler, and the im-biz processor. A bizCode clients may send is listed here; anything
// else from a client is refused at intake, and a backend may push any other bizCode (push.ts).
import type { Job } from "bullmq";
import type { Logger } from "../../log";
import type { BizBatchJob, BizMessage, ReliableMessage } from "../../queues/jobs";
import type { Broker, RoomLogEntry } from "../../router/broker";
import type { ReliableDelivery } from "../reliable-delivery";
import { privateChat } from "./private-chat";
import { routePush, routeRoomPush } from "./push";
import { roomChat } from "./room-chat";
import type { BizHandler, Route } from "./types";

const handlers = new Map<number, BizHandler>([
  [roomChat.bizCode, roomChat as BizHandler],
  [privateChat.bizCode, privateChat as BizHandler],
]);

export function clientBizHandler(bizCode: number): BizHandler | undefined {
  return handlers.get(bizCode);
}

export interface BizDeps {
  broker: Broker;
  reliable: ReliableDelivery;
  log: Logger;
}

function routeOf(m: BizMessage): Route {
  if (m.userIds !== undefined) return routePush(m);
  if (m.toRoom !== undefined) return routeRoomPush(m);
  const handler = handlers.get(m.bizCode);
  if (!handler) throw new Error(`no handler for bizCode ${m.bizCode}`);
  return handler.route(m);
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
