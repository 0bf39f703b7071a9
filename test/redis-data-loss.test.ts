// Production's Redis keeps nothing on disk: a restart comes back empty. Nodes and their connected
// clients outlive it, and what lived only in Redis (node registry, presence bindings, room node
// sets and members, room seqs and history) must come back from the nodes, not wait for each client
// to reconnect. Two in-process nodes on a redis-server of this test's own, restarted empty under them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ImClient, nativeConnectors } from "../src/client";
import type { Delivered, RoomData } from "../src/client/events";
import { Code } from "../src/protocol/codes";
import { api, APP_ID, imToken, newUserId, onlineStatus, openRoom } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { PrivateRedis } from "./support/private-redis";
import { RawTcp } from "./support/raw-tcp";
import type { TestNode } from "./support/test-cluster";
import { waitFor } from "./support/wait";

let redis: PrivateRedis;
let cluster: InProcessCluster;
const clients: ImClient[] = [];

beforeAll(async () => {
  redis = await PrivateRedis.start();
  // Redis goes away on purpose here, and each of a node's connections logs every failed reconnect
  // at error level: hundreds of expected lines that would bury the rest of the suite's output
  cluster = await startInProcessNodes(2, {}, { REDIS_URL: redis.url, LOG_LEVEL: "fatal" });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
  await redis?.kill();
});

/** A client that stays on `node` (a reconnect comes back to it), with what it was delivered. */
async function onNode(node: TestNode, transport: "tcp" | "ws", roomId?: number, earlier: { userId?: number; roomSeq?: number } = {}) {
  const userId = earlier.userId ?? newUserId();
  const client = new ImClient({
    userId,
    roomId,
    roomSeq: earlier.roomSeq,
    transport,
    connectors: nativeConnectors,
    heartbeatMs: 400,
    timeoutMs: 5000,
    reconnect: { initialMs: 50, maxMs: 500 },
    endpoint: async () => ({ token: await imToken(node, userId), wsUrl: node.ws, tcpAddress: node.tcp }),
  });
  clients.push(client);
  const room: Array<Delivered<RoomData>> = [];
  const logins: boolean[] = [];
  client.on("room", (d) => room.push(d));
  client.on("login", (info) => logins.push(info.reconnected));
  const login = await client.connect();
  return { userId, client, room, logins, login };
}

async function restartRedisEmpty(): Promise<void> {
  await redis.kill();
  await redis.up();
}

test("after Redis restarts empty, connected room members on both nodes get the room's messages again, and private messages reach them", async () => {
  const [A, B] = cluster.nodes;
  const roomId = await openRoom(A);
  const sender = await onNode(A, "ws", roomId);
  const viewers = [await onNode(A, "tcp", roomId), await onNode(B, "ws", roomId), await onNode(B, "tcp", roomId)];
  // more before the restart than after it: a client's roomSeq must follow the new, lower seqs
  for (let i = 0; i < 10; i++) await sender.client.sendRoom("before");
  for (const v of viewers) await waitFor(() => v.room.filter((d) => d.data.content === "before").length === 10, 5000, `the 10 room messages before the restart on user ${v.userId}`);

  await restartRedisEmpty();
  // said before the nodes notice (at their next registry refresh): no node holds the room then,
  // so this one is only in the room's new history
  const said = ["at once"];
  await sender.client.sendRoom("at once");

  // every session is bound again (its heartbeat finds its binding gone and makes it again)
  for (const v of [sender, ...viewers]) {
    await waitFor(async () => (await onlineStatus(cluster, A, v.userId).catch(() => ({ online: false }))).online, 10_000, `user ${v.userId} online again`);
  }
  for (let i = 0; i < 5; i++) {
    const content = `after-${i}`;
    await sender.client.sendRoom(content);
    said.push(content);
  }
  for (const v of viewers) {
    const got = () => v.room.filter((d) => d.data.content !== "before").map((d) => d.data.content);
    // on a timeout the comparison below shows what did come
    await waitFor(() => got().length >= said.length, 10_000, `the room messages since the restart on user ${v.userId}`).catch(() => {});
    expect(got()).toEqual(said);
    // the room's seq started over: a reconnect recovers from the new seq, not the old 10
    expect(v.client.roomSeq).toBe(said.length);
  }
  const privateTo = viewers[2];
  const privates: string[] = [];
  privateTo.client.on("private", (d) => privates.push(d.data.content));
  await viewers[0].client.sendPrivate(privateTo.userId, "private after");
  await waitFor(() => privates.includes("private after"), 10_000, "the private message after the restart");
  // none of it needed a reconnect
  for (const c of [sender, ...viewers]) expect(c.logins).toEqual([false]);
});

test("a client back after the restart with the roomSeq it had gets the room's new history (its seq started over), told recovered: false, and goes on from the new seq", async () => {
  const [A, B] = cluster.nodes;
  const roomId = await openRoom(A);
  const sender = await onNode(A, "ws", roomId);
  const viewer = await onNode(B, "tcp", roomId);
  for (let i = 0; i < 8; i++) await sender.client.sendRoom(`old-${i}`);
  await waitFor(() => viewer.room.length === 8, 5000, "the 8 room messages before the restart");
  const { userId, roomSeq } = { userId: viewer.userId, roomSeq: viewer.client.roomSeq };
  viewer.client.close();

  await restartRedisEmpty();
  await waitFor(async () => (await onlineStatus(cluster, A, sender.userId).catch(() => ({ online: false }))).online, 10_000, "the sender bound again");
  const said = ["new-0", "new-1", "new-2"];
  for (const content of said) await sender.client.sendRoom(content);

  const back = await onNode(B, "ws", roomId, { userId, roomSeq });
  expect(back.login.recovered).toBe(false);
  await waitFor(() => back.room.length >= said.length, 5000, "the room's new history replayed").catch(() => {});
  expect(back.room.map((d) => d.data.content)).toEqual(said);
  expect(back.client.roomSeq).toBe(3);
});

/**
 * Stop `down` with a user of `node` logged in over TCP, who then sends a BIZ: its answer comes once
 * the node's command connection gave up reconnecting (every connection is reconnecting by then).
 */
async function bizAnsweredWhileDown(node: TestNode, down: PrivateRedis) {
  const userId = newUserId();
  const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
  await down.kill();
  conn.send(Code.BIZ, { bizCode: 5556, clientMsgId: "while-down", data: { objectId: newUserId(), content: "hello" } });
  const answer = await conn.next((f) => f.code === Code.ERROR || f.code === Code.BIZ, 10_000, "an answer to the BIZ sent while Redis is down");
  return { userId, conn, answer };
}

test("while Redis is down, a frame or an HTTP request that needs it is refused as unavailable (503), not internal; once it is back, both work", async () => {
  const [A] = cluster.nodes;
  const online = (userId: number) => api(A.http, "GET", `/api/im/online?userId=${userId}&appId=${APP_ID}`, { bearer: cluster.apiKey });
  let userId = 0;
  try {
    const down = await bizAnsweredWhileDown(A, redis);
    userId = down.userId;
    down.conn.close();
    expect(down.answer.body).toMatchObject({ error: "unavailable", clientMsgId: "while-down" });
    const r = await online(userId);
    expect({ status: r.status, json: r.json }).toMatchObject({ status: 503, json: { error: { code: "unavailable" } } });
  } finally {
    if (!redis.running) await redis.up();
  }
  await waitFor(async () => (await online(userId)).status === 200, 10_000, "/api/im/online answering once Redis is back");
});

test("a node asked to stop as Redis comes back stops (BullMQ may never close a worker that is reconnecting, taskforcesh/bullmq#4656)", async () => {
  const own = await PrivateRedis.start();
  const pair = await startInProcessNodes(2, {}, { REDIS_URL: own.url, LOG_LEVEL: "fatal" });
  try {
    const { conn } = await bizAnsweredWhileDown(pair.nodes[0], own);
    await own.up();
    conn.close();
    // without the bound of Workers.close, this stop hangs
    const stopped = pair.stop().then(() => "stopped");
    expect(await Promise.race([stopped, Bun.sleep(15_000).then(() => "still stopping after 15 s")])).toBe("stopped");
  } finally {
    await own.kill();
  }
});
