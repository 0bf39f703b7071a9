// An im-biz job that fails after it delivered part of its batch is retried whole (BullMQ). The retry
// must finish what the failed run left undone without delivering again what it delivered: an ACKed
// message is never delivered again (PROTOCOL.md section 5), and an unACKed one keeps its count of
// ACK_MAX_ATTEMPTS deliveries. The failure is a real one: MySQL refuses to keep the batch's message
// for an offline recipient because its table is renamed away for a moment.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Queue } from "bullmq";
import mysql from "mysql2/promise";
import { Code } from "../src/protocol/codes";
import { QueueName } from "../src/queues/names";
import { createKeys } from "../src/redis/keys";
import { ackChecksRun, markerDelivered } from "./support/ack-checks";
import { api, APP_ID, connectTestRedis, imToken, newUserId } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { DEFAULT_SETTINGS } from "./support/test-cluster";
import { RawTcp, type ServerFrame } from "./support/raw-tcp";
import { waitFor } from "./support/wait";

let cluster: InProcessCluster;
let sql: mysql.Connection;
let bizQueue: Queue;
const redis = connectTestRedis();
const raws: RawTcp[] = [];

beforeAll(async () => {
  cluster = await startInProcessNodes(2);
  sql = await mysql.createConnection(cluster.databaseUrl);
  bizQueue = new Queue(QueueName.biz, { connection: redis, prefix: createKeys(cluster.prefix).bullPrefix() });
});
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  // a failed test must not leave the table away for the next one
  await sql.query("RENAME TABLE im_message_away TO im_message").catch(() => {});
});
afterAll(async () => {
  await bizQueue.close();
  await sql.end();
  await cluster.stop();
  redis.disconnect();
});

/** A raw TCP session of a new user on the second node: it records every frame and ACKs nothing by itself. */
async function rawRecipient() {
  const userId = newUserId();
  const node = cluster.nodes[1];
  const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
  conn.keepAlive(300);
  raws.push(conn);
  return { userId, conn, pending: createKeys(cluster.prefix).pending(APP_ID, userId) };
}

/**
 * One push (one message, one im-biz job) to an online raw session and to an offline user, while
 * MySQL cannot keep the offline user's copy: the online delivery is made, then the job fails.
 * Resolves once it has failed at least once; `restoreMysql` lets the retries succeed.
 */
async function pushThatFailsAfterDelivering() {
  const online = await rawRecipient();
  const offlineId = newUserId();
  await sql.query("RENAME TABLE im_message TO im_message_away");
  const res = await api(cluster.nodes[0].http, "POST", "/api/im/push", {
    bearer: cluster.apiKey,
    body: { appId: APP_ID, userIds: [online.userId, offlineId], bizCode: 6001, data: { order: 7 } },
  });
  expect(res.status).toBe(200);
  const delivery = await online.conn.next((f) => f.code === Code.BIZ && f.body.bizCode === 6001, 3000, "the online recipient's delivery");
  const msgId: string = delivery.body.msgId;
  const jobOf = async () => (await bizQueue.getJobs(["active", "waiting", "delayed", "failed", "completed"])).find((j) => j.data.messages.some((m: { msgId: string }) => m.msgId === msgId));
  await waitFor(async () => ((await jobOf())?.attemptsMade ?? 0) >= 1, 5000, "the im-biz job to fail while MySQL is away");
  const isIt = (f: ServerFrame) => f.code === Code.BIZ && f.body.msgId === msgId;
  return {
    online,
    offlineId,
    msgId,
    isIt,
    async restoreMysqlAndWaitForTheJob() {
      await sql.query("RENAME TABLE im_message_away TO im_message");
      // its retries wait 250 ms, doubling (queues.ts)
      const job = await waitFor(async () => {
        const j = await jobOf();
        return (await j?.isCompleted()) === true && j;
      }, 10_000, "the retried im-biz job to complete");
      return job.id ?? "";
    },
  };
}

async function keptRows(userId: number): Promise<number> {
  const [[row]] = await sql.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM im_message WHERE user_id = ?", [userId]);
  return Number(row.n);
}

describe("a retried im-biz job", () => {
  test("does not deliver again what the failed run delivered and the recipient ACKed; the offline recipient gets it kept, once", async () => {
    const { online, offlineId, msgId, isIt, restoreMysqlAndWaitForTheJob } = await pushThatFailsAfterDelivering();
    online.conn.send(Code.ACK, { msgId });
    await waitFor(async () => (await redis.hexists(online.pending, msgId)) === 0, 3000, "the ACK to settle");
    const jobId = await restoreMysqlAndWaitForTheJob();
    await waitFor(async () => (await redis.exists(createKeys(cluster.prefix).bizJobRecords(jobId))) === 0, 3000, "the completed job's record log to be deleted");
    // a delivery made by the retry would have recorded a pending ACK again before the job completed
    expect(await redis.hexists(online.pending, msgId)).toBe(0);
    expect(await keptRows(online.userId)).toBe(0);
    expect(await keptRows(offlineId)).toBe(1);
    const later = await RawTcp.loggedIn(cluster.nodes[0].tcp, offlineId, await imToken(cluster.nodes[0], offlineId));
    raws.push(later);
    await later.next(isIt, 3000, "the kept push at the offline recipient's login");
    // the check of its delivery, which would resend it, has run: the ACKed push never comes again
    await ackChecksRun(redis, cluster, msgId, 1, DEFAULT_SETTINGS.ackTimeoutMs + 5000);
    await markerDelivered(cluster, cluster.nodes[0], online.conn, online.userId);
    expect(online.conn.frames.filter(isIt)).toHaveLength(1);
  });

  test("leaves an unACKed delivery of the failed run its count: ACK_MAX_ATTEMPTS deliveries in all, then kept", async () => {
    const { online, msgId, isIt, restoreMysqlAndWaitForTheJob } = await pushThatFailsAfterDelivering();
    await restoreMysqlAndWaitForTheJob();
    const { ackTimeoutMs, ackMaxAttempts } = DEFAULT_SETTINGS;
    await waitFor(async () => (await redis.hget(online.pending, msgId)) === "0k", (ackMaxAttempts + 2) * ackTimeoutMs + 3000, "the push to be kept after its last attempt");
    // its last check has run: no delivery beyond the count
    await ackChecksRun(redis, cluster, msgId, ackMaxAttempts, ackTimeoutMs + 5000);
    await markerDelivered(cluster, cluster.nodes[0], online.conn, online.userId);
    expect(online.conn.frames.filter(isIt)).toHaveLength(ackMaxAttempts);
  });
});
