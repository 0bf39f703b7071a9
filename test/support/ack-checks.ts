// "Never delivered again" shown without a sleep: wait until the im-ack checks of a message have run
// (the last one that could resend it completed, none waits), then send the recipient a marker push.
// A resend a check made was published before that check completed, so before the marker, on the
// same path (Redis pub/sub to the recipient's node, then its socket): once the marker is in, any
// resend is too.
import { Queue } from "bullmq";
import type Redis from "ioredis";
import type { AckCheckJob } from "../../src/queues/jobs";
import { QueueName } from "../../src/queues/names";
import { Code } from "../../src/protocol/codes";
import { createKeys } from "../../src/redis/keys";
import { api, APP_ID } from "./http-api";
import type { RawTcp } from "./raw-tcp";
import type { ClusterIdentity, TestNode } from "./test-cluster";
import { waitFor } from "./wait";

/**
 * Resolves once the check of delivery `attempt` (or a later one) of `msgId` completed and no check
 * of it is waiting, delayed or running; fails after timeoutMs.
 */
export async function ackChecksRun(redis: Redis, cluster: ClusterIdentity, msgId: string, attempt: number, timeoutMs: number): Promise<void> {
  const queue = new Queue<AckCheckJob>(QueueName.ack, { connection: redis, prefix: createKeys(cluster.prefix).bullPrefix() });
  try {
    const ofIt = (jobs: Array<{ data: AckCheckJob } | undefined>) => jobs.filter((j) => j?.data.messages.some((m) => m.msgId === msgId));
    await waitFor(
      async () => {
        if (ofIt(await queue.getJobs(["waiting", "prioritized", "delayed", "active"])).length > 0) return false;
        return ofIt(await queue.getJobs(["completed"])).some((j) => j!.data.attempt >= attempt);
      },
      timeoutMs,
      `the ACK check of delivery ${attempt} of ${msgId} to complete, and none after it to wait`,
    );
  } finally {
    await queue.close();
  }
}

/** Push a marker to `conn`'s user (logged in as `userId`) through `node`, and wait for it there. */
export async function markerDelivered(cluster: ClusterIdentity, node: TestNode, conn: RawTcp, userId: number): Promise<void> {
  const r = await api(node.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6099, data: { marker: true } } });
  if (r.status !== 200) throw new Error(`marker push: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  await conn.next((f) => f.code === Code.BIZ && f.body.msgId === r.json.msgId, 5000, "the marker push, sent after the ACK checks");
}
