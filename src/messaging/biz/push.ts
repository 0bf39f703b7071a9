// Backend pushes (POST /api/im/push): any bizCode, to a list of users, delivered like 5556.
import type { BizJob } from "../../queues/jobs";
import type { BizDeps } from "./types";

export async function processPush(job: BizJob, deps: BizDeps): Promise<void> {
  const data = JSON.stringify(job.data);
  await deps.reliable.send(
    (job.userIds ?? []).map((userId) => ({
      appId: job.appId,
      userId,
      msgId: job.msgId,
      bizCode: job.bizCode,
      data,
      ts: job.ts,
      senderId: 0,
    })),
  );
}
