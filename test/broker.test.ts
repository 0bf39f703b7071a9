// The Redis Broker on real Redis: room messages reach each node holding the room once, in order,
// even when a retried im-biz job publishes them again.
import { afterAll, expect, test } from "bun:test";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { RedisBroker } from "../src/router/broker";
import type { NodeMessage } from "../src/router/node-message";
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
