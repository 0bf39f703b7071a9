// A job that fails for good holds messages already ACKed to their senders: it stays in its queue's
// failed set for FAILED_JOB_AGE_S, for an operator to retry, however many others fail meanwhile (a
// MySQL outage longer than the retry window fails every job). The node's own queue options; only
// `attempts` is 1 here, so that no backoff is waited for.
import { afterAll, expect, test } from "bun:test";
import { Worker } from "bullmq";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { createQueues } from "../src/queues/queues";
import { QueueName } from "../src/queues/names";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { removeClusterKeys } from "./support/test-cluster";
import { waitFor } from "./support/wait";

const prefix = `failjobs${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const config = loadConfig({ NODE_ENV: "development", KEY_PREFIX: prefix });
const log = createLogger("failed-jobs-test", "warn");
const redis = connectRedis(config.redis.url, log);
const keys = createKeys(prefix);
const queues = createQueues(redis.bullmq, keys.bullPrefix(), log);

afterAll(async () => {
  await queues.close();
  await redis.close();
  await removeClusterKeys(prefix);
});

test("im-biz jobs that failed for good are all kept, the oldest too, not only the last few thousand", async () => {
  const worker = new Worker(QueueName.biz, async () => Promise.reject(new Error("MySQL is away")), {
    connection: redis.bullmq,
    prefix: keys.bullPrefix(),
    concurrency: 200,
  });
  try {
    const total = 5010;
    const ids: string[] = [];
    for (let i = 0; i < total; i += 500) {
      const batch = Array.from({ length: Math.min(500, total - i) }, (_, k) => ({
        name: "batch",
        data: { messages: [{ msgId: String(1_000_000 + i + k), appId: 1, senderId: 0, bizCode: 6001, data: {}, userIds: [42], ts: 0 }] },
        opts: { attempts: 1 },
      }));
      for (const job of await queues.biz.addBulk(batch)) ids.push(job.id!);
    }
    await waitFor(async () => (await queues.biz.getFailedCount()) >= total, 60_000, `all ${total} jobs in the failed set`);
    expect(await queues.biz.getJob(ids[0])).toBeDefined();
  } finally {
    await worker.close();
  }
}, 90_000);
