// The Redis Broker and the Router on real Redis: room messages reach each node holding the room
// once, in order, even when a retried im-biz job publishes them again; a node's deliveries go in
// messages small enough for Redis to keep the subscriber.
import { afterAll, expect, test } from "bun:test";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { Presence } from "../src/presence/presence";
import { RedisBroker } from "../src/router/broker";
import type { Delivery, NodeMessage } from "../src/router/node-message";
import { MAX_MESSAGE_BYTES, Router } from "../src/router/router";
import { removeClusterKeys } from "./support/test-cluster";
import { waitFor } from "./support/wait";

const prefix = `brokertest${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const keys = createKeys(prefix);
const log = createLogger("brokertest", "warn");
const { url } = loadConfig({ ...process.env, NODE_ENV: "development" }).redis;
const publisherRedis = connectRedis(url, log);
const nodeRedis = connectRedis(url, log);
const publisher = new RedisBroker(publisherRedis.command, publisherRedis.subscriber, keys, log);
const node = new RedisBroker(nodeRedis.command, nodeRedis.subscriber, keys, log);

afterAll(async () => {
  await node.unsubscribe();
  await Promise.all([publisherRedis.close(), nodeRedis.close()]);
  await removeClusterKeys(prefix);
});

test("room messages published again (a retried job) reach a node once; the history holds them once", async () => {
  const roomId = 41;
  const got: NodeMessage[] = [];
  node.onMessage((m) => got.push(m));
  await node.subscribe("node-1");
  await nodeRedis.command.sadd(keys.roomNodes(roomId), "node-1");
  const entries = [1, 2, 3].map((seq) => ({
    seq,
    msg: { msgId: String(9000 + seq), appId: 10001, bizCode: 5555, ts: 1, data: { userId: 5, roomId, content: `m${seq}` } },
  }));

  await publisher.publishToRoom(roomId, entries.slice(0, 2));
  // the retry repeats the first two and brings the third
  await publisher.publishToRoom(roomId, entries);
  await waitFor(() => got.length >= 3, 3000, "three room messages at the node");
  // a marker published after them: once it is here, any repeat would have come before it
  await publisher.publishToNode("node-1", { t: "kick", appId: 0, userId: 0, connId: "marker" });
  await waitFor(() => got.some((m) => m.t === "kick"), 3000, "the marker");

  const seqs = got.filter((m) => m.t === "room").map((m) => (m.t === "room" ? m.seq : 0));
  expect(seqs).toEqual([1, 2, 3]);
  expect(await nodeRedis.command.zcard(keys.roomLog(roomId))).toBe(3);
});

test("a node's deliveries of over a megabyte go in several messages, none much over MAX_MESSAGE_BYTES, in order", async () => {
  const got: Array<{ bytes: number; msgIds: string[] }> = [];
  node.onMessage((m) => {
    if (m.t === "deliver") got.push({ bytes: JSON.stringify(m).length, msgIds: m.deliveries.map((d) => d.msgId) });
  });
  await node.subscribe("node-2");
  const router = new Router(new Presence(publisherRedis.command, keys, "publisher", 2000), publisher, log);
  const deliveries: Delivery[] = Array.from({ length: 30 }, (_, i) => ({
    appId: 10001,
    userId: 100 + i,
    msgId: String(7000 + i),
    bizCode: 6001,
    data: JSON.stringify({ text: "p".repeat(100_000) }),
    ts: 1,
  }));
  await router.publish(new Map([["node-2", deliveries]]));
  await waitFor(() => got.flatMap((g) => g.msgIds).length === 30, 5000, "all 30 deliveries at the node");
  expect(got.flatMap((g) => g.msgIds)).toEqual(deliveries.map((d) => d.msgId));
  expect(got.length).toBeGreaterThanOrEqual(3);
  // one delivery may cross the line; none is as large as a second one
  for (const g of got) expect(g.bytes).toBeLessThan(MAX_MESSAGE_BYTES + 100_000);
});

test("once its subscriber connection dropped and is back, the broker says so, listening again: messages published from then on arrive", async () => {
  const got: NodeMessage[] = [];
  let resubscribed = 0;
  node.onMessage((m) => got.push(m));
  node.onResubscribed(() => resubscribed++);
  await node.subscribe("node-3");
  expect(resubscribed).toBe(0);
  nodeRedis.subscriber.disconnect(true);
  await waitFor(() => resubscribed === 1, 5000, "the broker to say it listens again");
  await publisher.publishToNode("node-3", { t: "kick", appId: 0, userId: 0, connId: "after the reconnect" });
  await waitFor(() => got.some((m) => m.t === "kick" && m.connId === "after the reconnect"), 3000, "a message published once it listens again");
});
