// A node that dies (SIGKILL) while it holds an im-biz job leaves the job to the others: BullMQ finds
// it stalled and another node's worker takes it over, however many nodes die in turn holding it (a
// crash loop, an OOM killer). Its messages were accepted (HTTP 200, or an ACK): they must arrive.
//
// To keep the job in a worker's hands at the kill, the worker nodes reach MySQL through a proxy the
// test pauses: the job waits on the INSERT that keeps the offline recipient's message.
import { afterAll, expect, test } from "bun:test";
import { Queue } from "bullmq";
import { Code } from "../src/protocol/codes";
import { QueueName } from "../src/queues/names";
import { createKeys } from "../src/redis/keys";
import { api, APP_ID, connectTestRedis, imToken, newUserId } from "./support/http-api";
import { MysqlProxy } from "./support/mysql-proxy";
import { ProcessCluster, type ProcessNode } from "./support/node-processes";
import { RawTcp } from "./support/raw-tcp";
import { DEFAULT_SETTINGS } from "./support/test-cluster";
import { waitFor } from "./support/wait";

const cluster = new ProcessCluster(DEFAULT_SETTINGS);
const redis = connectTestRedis();
const queue = new Queue(QueueName.biz, { connection: redis, prefix: createKeys(cluster.prefix).bullPrefix() });
let proxy: MysqlProxy | null = null;

afterAll(async () => {
  await queue.close();
  await cluster.stop();
  await proxy?.close();
  redis.disconnect();
});

/** A stalled job is taken over within the lock (10 s) and two stalled checks (5 s apart), and a node's start. */
const TAKEOVER_MS = 30_000;

test("a push survives two worker nodes killed in turn, each while it held the push's im-biz job", async () => {
  // the HTTP API and the gateway, no workers: it never takes the job
  const front = await cluster.addNode({ ROLES: "gateway,http" });
  proxy = await MysqlProxy.start();
  const stuckWorker = async (): Promise<ProcessNode> => {
    proxy!.resume();
    const node = await cluster.addNode({ ROLES: "workers", DATABASE_URL: proxy!.url(cluster.databaseUrl), MYSQL_TIMEOUT_MS: "600000" });
    proxy!.pause();
    return node;
  };
  const job = async (jobId: string) => {
    const state = await queue.getJobState(jobId);
    if (state === "failed") throw new Error(`job ${jobId} failed for good: ${(await queue.getJob(jobId))?.failedReason}`);
    return { state, started: (await queue.getJob(jobId))?.attemptsStarted ?? 0 };
  };

  const first = await stuckWorker();
  const recipient = newUserId();
  const push = await api(front.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [recipient], bizCode: 6001, data: { order: 1 } } });
  expect(push.status).toBe(200);
  const msgId = String(push.json.msgId);
  const jobId = `b${msgId}`;
  await waitFor(async () => (await job(jobId)).state === "active", 10_000, "the first worker to take the job");
  await cluster.kill9(first);

  const second = await stuckWorker();
  await waitFor(async () => {
    const j = await job(jobId);
    return j.state === "active" && j.started >= 2;
  }, TAKEOVER_MS, "the second worker to take the stalled job over");
  await cluster.kill9(second);

  // a worker that MySQL answers
  proxy.resume();
  await cluster.addNode({ ROLES: "workers" });
  await waitFor(async () => (await job(jobId)).state === "completed", TAKEOVER_MS, "the job completed by the third worker");

  const conn = await RawTcp.loggedIn(front.tcp, recipient, await imToken(front, recipient));
  try {
    const got = await conn.next((f) => f.code === Code.BIZ && String(f.body.msgId) === msgId, 5000, "the push at the recipient's login");
    expect(got.body).toMatchObject({ bizCode: 6001, userId: recipient });
  } finally {
    conn.close();
  }
}, 120_000);
