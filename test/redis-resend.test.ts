// After a reconnect, ioredis sends again each command whose answer the dropped connection lost
// (autoResendUnfulfilledCommands), so Redis may run it twice. A proxy between ioredis and Redis
// here lets one chosen command through, swallows Redis' answer and cuts the connection: Redis ran
// it, ioredis runs it again after reconnecting, and the caller gets the second run's answer. The
// scripts that move state must answer as the first run did, and a queued im-biz batch must stay
// one job.
import { afterAll, beforeAll, expect, test } from "bun:test";
import Redis from "ioredis";
import net from "node:net";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { BizIntake } from "../src/messaging/intake";
import { PendingAcks } from "../src/messaging/pending-acks";
import { PushOnce } from "../src/messaging/push-once";
import { Sequencer } from "../src/messaging/sequencer";
import { createQueues, type Queues } from "../src/queues/queues";
import { connectRedis, type RedisConnections } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { connectTestRedis } from "./support/http-api";
import { removeClusterKeys } from "./support/test-cluster";

/** A TCP proxy to Redis. cutAfter(s): the next client write holding `s` reaches Redis, but its answer does not come back: the connection is cut. */
class AnswerLosingProxy {
  private server: net.Server | null = null;
  private armed: string | null = null;
  port = 0;
  /** Answers swallowed so far. */
  lost = 0;

  async start(target: { host: string; port: number }): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      let swallowNext = false;
      const cut = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("data", (d) => {
        if (this.armed !== null && d.toString("latin1").includes(this.armed)) {
          this.armed = null;
          swallowNext = true;
        }
        upstream.write(d);
      });
      upstream.on("data", (d) => {
        if (!swallowNext) return void client.write(d);
        this.lost++;
        cut();
      });
      for (const s of [client, upstream]) {
        s.on("error", cut);
        s.on("close", cut);
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  cutAfter(marker: string): void {
    this.armed = marker;
  }

  stop(): void {
    this.server?.close();
  }
}

const prefix = `resend${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const keys = createKeys(prefix);
const redisUrl = new URL(loadConfig({ NODE_ENV: "development" }).redis.url);
const proxy = new AnswerLosingProxy();
const plain = connectTestRedis();
const log = createLogger("resend-test", "silent");
let connections: RedisConnections;
let command: Redis;
let bullmq: Redis;
let queues: Queues;

beforeAll(async () => {
  await proxy.start({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
  // the command and BullMQ connections of a node
  connections = connectRedis(`redis://127.0.0.1:${proxy.port}`, log);
  ({ command, bullmq } = connections);
  queues = createQueues(bullmq, keys.bullPrefix(), log);
});

afterAll(async () => {
  await queues.close();
  command.disconnect();
  bullmq.disconnect();
  connections.subscriber.disconnect();
  plain.disconnect();
  proxy.stop();
  await removeClusterKeys(prefix);
});

test("an ACK's settle run twice still answers what it found: a kept message's ACK is not taken for a repeat (its row is deleted)", async () => {
  const pending = new PendingAcks(command, keys, queues, 60_000);
  const m = { appId: 10001, userId: 42, msgId: "1000001" };
  await pending.record([{ ...m, bizCode: 5556, data: "{}", ts: 1, senderId: 7 }], { attempt: 1, kept: true });
  proxy.cutAfter(keys.pending(m.appId, m.userId));
  expect(await pending.settle(m.appId, m.userId, m.msgId)).toEqual({ attempt: 1, kept: true });
  expect(proxy.lost).toBe(1);
  expect(await plain.hexists(keys.pending(m.appId, m.userId), m.msgId)).toBe(0);
});

test("a resend's advance run twice still answers moved: the resend is made and checked", async () => {
  const pending = new PendingAcks(command, keys, queues, 60_000);
  const m = { appId: 10001, userId: 43, msgId: "1000002" };
  await pending.record([{ ...m, bizCode: 5556, data: "{}", ts: 1, senderId: 7 }], { attempt: 1, kept: false });
  const lostBefore = proxy.lost;
  proxy.cutAfter(keys.pending(m.appId, m.userId));
  const { moved, gone } = await pending.advance([m], { attempt: 1, kept: false }, { attempt: 2, kept: false });
  expect(proxy.lost).toBe(lostBefore + 1);
  expect({ moved: moved.length, gone: gone.length }).toEqual({ moved: 1, gone: 0 });
  expect(await plain.hget(keys.pending(m.appId, m.userId), m.msgId)).toBe("2");
});

test("an im-biz batch whose queueing is sent twice is one job", async () => {
  const intake = new BizIntake(new Sequencer(plain, keys), queues, log, 1);
  const lostBefore = proxy.lost;
  proxy.cutAfter("queued once only");
  const accepted = await intake.submit({ appId: 10001, senderId: 7, bizCode: 5556, data: { objectId: 8, content: "queued once only" }, ts: Date.now() });
  expect(proxy.lost).toBe(lostBefore + 1);
  const jobs = await queues.biz.getJobs(["wait", "active", "delayed", "prioritized"]);
  expect(jobs.map((j) => j.data.messages.map((msg) => msg.msgId))).toEqual([[accepted.msgId]]);
});

test("a push's Idempotency-Key claim sent twice is still its own: the push is accepted at once, not told to wait while nothing is being accepted", async () => {
  const pushOnce = new PushOnce(command, keys, log);
  const lostBefore = proxy.lost;
  proxy.cutAfter("claim:");
  let accepted = 0;
  const first = await pushOnce.run(10001, "resent-claim", { userIds: [1] }, async () => ({ msgId: String(++accepted) }));
  expect(proxy.lost).toBe(lostBefore + 1);
  expect(first).toEqual({ answer: { msgId: "1" }, replayed: false });
  // a repeat gets the answer, not a wait for a claim nobody holds
  expect(await pushOnce.run(10001, "resent-claim", { userIds: [1] }, async () => ({ msgId: String(++accepted) }))).toEqual({ answer: { msgId: "1" }, replayed: true });
  expect(accepted).toBe(1);
});
