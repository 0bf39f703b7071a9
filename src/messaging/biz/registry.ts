// bizCode → handler. A bizCode clients may send is listed here; anything else from a client is
// refused at intake, and a backend may push any bizCode (push.ts).
import { UnrecoverableError, type Job } from "bullmq";
import type { BizJob } from "../../queues/jobs";
import { privateChat } from "./private-chat";
import { processPush } from "./push";
import { roomChat } from "./room-chat";
import type { BizDeps, BizHandler } from "./types";

const handlers = new Map<number, BizHandler>([
  [roomChat.bizCode, roomChat as BizHandler],
  [privateChat.bizCode, privateChat as BizHandler],
]);

export function clientBizHandler(bizCode: number): BizHandler | undefined {
  return handlers.get(bizCode);
}

/** The im-biz processor. */
export function bizProcessor(deps: BizDeps) {
  return async (job: Job<BizJob>): Promise<void> => {
    if (job.data.userIds !== undefined) return processPush(job.data, deps);
    const handler = handlers.get(job.data.bizCode);
    if (!handler) throw new UnrecoverableError(`no handler for bizCode ${job.data.bizCode}`);
    await handler.process(job.data, deps);
  };
}
