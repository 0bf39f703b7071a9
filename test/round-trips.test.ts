// Round trips to Redis on user-visible paths, counted through a delaying proxy (a node in a far
// region, where each one costs tens of ms): what can go in one round trip does, in the order its
// guarantees need (Redis runs one connection's commands in the order sent). Nothing here is timed:
// the proxy notes, for each command, how many replies its connection had got when it was sent.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Code } from "../src/protocol/codes";
import { createKeys, type Keys } from "../src/redis/keys";
import { DelayProxy, sentAfterReplyTo, type SeenCommand } from "./support/delay-proxy";
import { api, APP_ID, connectTestRedis, devJwt, imToken, newUserId, openRoom } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster, type InProcessNode } from "./support/in-process-nodes";
import { RawTcp } from "./support/raw-tcp";
import { waitFor } from "./support/wait";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
/** Enough for a reply to come well after the commands sent with its command. */
const DELAY_MS = 5;

let proxy: DelayProxy;
let cluster: InProcessCluster;
let node: InProcessNode;
let keys: Keys;
const redis = connectTestRedis();
const conns: RawTcp[] = [];

beforeAll(async () => {
  const u = new URL(REDIS_URL);
  proxy = await DelayProxy.start({ host: u.hostname, port: Number(u.port || 6379) }, "redis", DELAY_MS);
  // a long heartbeat: no refresh of a binding is due during a test
  cluster = await startInProcessNodes(1, { heartbeatSeconds: 30 }, { REDIS_URL: proxy.url(REDIS_URL) });
  node = cluster.nodes[0];
  keys = createKeys(cluster.prefix);
  // every script loaded once (a first EVALSHA is refused, then sent again as EVAL)
  await loginWithKept(2);
});

afterAll(async () => {
  for (const c of conns) c.close();
  await cluster?.stop();
  await proxy?.close();
  redis.disconnect();
});

/** A script call (EVALSHA, or EVAL) whose first key is `key`. */
function scriptOn(key: string): (c: SeenCommand) => boolean {
  return (c) => c.args[0].startsWith("EVAL") && c.args[3] === key;
}

/** `count` pushes kept for a new offline user; resolves once they are. */
async function keptFor(count: number): Promise<number> {
  const userId = newUserId();
  for (let i = 0; i < count; i++) {
    const r = await api(node.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6001, data: { i } } });
    expect(r.status).toBe(200);
  }
  await waitFor(async () => (await redis.exists(keys.keptMark(APP_ID, userId))) === 1, 10_000, "the pushes kept");
  return userId;
}

/** A login that gets `count` kept messages replayed and ACKs them; resolves with the commands sent meanwhile. */
async function loginWithKept(count: number): Promise<{ userId: number; commands: SeenCommand[] }> {
  const userId = await keptFor(count);
  const token = await imToken(node, userId);
  const from = proxy.commands.length;
  const conn = await RawTcp.loggedIn(node.tcp, userId, token);
  conns.push(conn);
  for (let i = 0; i < count; i++) {
    const f = await conn.next((x) => x.code === Code.BIZ, 5000, "a replayed message");
    conn.send(Code.ACK, { msgId: f.body.msgId });
  }
  const pending = keys.pending(APP_ID, userId);
  await waitFor(async () => (await redis.hlen(pending)) === 0 || (await redis.hkeys(pending)).every((f) => f.startsWith("a:")), 5000, "the replay ACKed");
  return { userId, commands: proxy.since(from) };
}

test("a login that replays kept messages does not refresh the binding it has just made", async () => {
  const { userId, commands } = await loginWithKept(2);
  // the bind, and nothing more: the replay's first keep-alive found the binding fresh (a
  // delivery's lookup of the user may read it too)
  expect(commands.filter(scriptOn(keys.binding(APP_ID, userId))).map((c) => c.args[0])).toEqual(["EVALSHA"]);
});

/** The one command of `commands` that `match` keeps, after `after` if given; fails when there is none. */
function one(commands: SeenCommand[], what: string, match: (c: SeenCommand) => boolean, after?: SeenCommand): SeenCommand {
  const found = commands.filter((c) => match(c) && (after === undefined || (c.conn === after.conn && c.index > after.index)));
  if (found.length === 0) throw new Error(`no ${what} among ${JSON.stringify(commands.map((c) => c.args.slice(0, 3)))}`);
  return found[0];
}

test("a LOGIN into a room holds it, looks again whether it is live and reads its history in one round trip, in that order", async () => {
  const roomId = await openRoom(node);
  for (const [joiner, roomSeq] of [["first", undefined], ["second", 0]] as const) {
    const userId = newUserId();
    const token = await imToken(node, userId);
    const from = proxy.commands.length;
    const conn = await RawTcp.connect(node.tcp);
    conns.push(conn);
    conn.send(Code.LOGIN, { appId: APP_ID, userId, token, roomId, roomSeq });
    expect((await conn.next((f) => f.code === Code.LOGIN, 5000, "LOGIN answer")).body.roomSeq).toBe(0);
    const commands = proxy.since(from);
    const bind = one(commands, "bind", scriptOn(keys.binding(APP_ID, userId)));
    const look = one(commands, "second look", (c) => c.args[0] === "GET" && c.args[1] === keys.livingRoom(roomId), bind);
    const history = one(commands, "history read", (c) => c.args[0].startsWith("ZR") && c.args[1] === keys.roomLog(roomId), bind);
    expect(history.index).toBeGreaterThan(look.index);
    if (joiner === "first") {
      // this node did not hold the room yet: the hold goes first, the rest with it
      const hold = one(commands, "hold", (c) => c.args[0] === "SADD" && c.args[1] === keys.roomNodes(roomId), bind);
      expect(look.index).toBeGreaterThan(hold.index);
      expect(sentAfterReplyTo(look, hold)).toBe(false);
      expect(sentAfterReplyTo(history, hold)).toBe(false);
    }
    expect(sentAfterReplyTo(history, look)).toBe(false);
  }
});

test("a LOGIN reads the user's kept mark in its bind's script, not in a round trip of its own after it", async () => {
  for (const kept of [0, 2]) {
    const userId = kept === 0 ? newUserId() : await keptFor(kept);
    const token = await imToken(node, userId);
    const from = proxy.commands.length;
    const conn = await RawTcp.loggedIn(node.tcp, userId, token);
    conns.push(conn);
    for (let i = 0; i < kept; i++) await conn.next((f) => f.code === Code.BIZ, 5000, "a replayed message");
    // a HEARTBEAT is answered once the login's replay is done
    conn.send(Code.HEARTBEAT);
    await conn.next((f) => f.code === Code.HEARTBEAT, 5000, "the HEARTBEAT answer");
    const mark = keys.keptMark(APP_ID, userId);
    const reads = proxy.since(from, (c) => c.args.includes(mark) && c.args[0] !== "SET");
    // a mark found empty is cleared by a script of its own (KeptMarks.clear), which names it first
    expect(reads.filter((c) => !(c.args[0].startsWith("EVAL") && c.args[3] === mark)).map((c) => c.args[0])).toEqual(["EVALSHA"]);
    expect(reads[0].args[3]).toBe(keys.binding(APP_ID, userId));
  }
});

test("the frames after a LOGIN do not wait for its online event to be queued", async () => {
  const roomId = await openRoom(node);
  const userId = newUserId();
  const token = await imToken(node, userId);
  const queues = proxy.connectionNamed(`live-im:${node.nodeId}:bullmq`);
  if (queues === undefined) throw new Error("the node's BullMQ connection was not seen");
  const conn = await RawTcp.connect(node.tcp);
  conns.push(conn);
  // the node's queue adds get no answer for now
  proxy.holdReplies(queues);
  try {
    conn.send(Code.LOGIN, { appId: APP_ID, userId, token, roomId });
    conn.send(Code.HEARTBEAT);
    await conn.next((f) => f.code === Code.LOGIN, 5000, "the LOGIN answer");
    await conn.next((f) => f.code === Code.HEARTBEAT, 5000, "the HEARTBEAT answer while the online event's add waits");
  } finally {
    proxy.releaseReplies(queues);
  }
  // the event still went: the room counts the user
  await waitFor(async () => (await redis.hexists(keys.roomMembers(roomId), `${APP_ID}:${userId}`)) === 1, 5000, "the user a member of the room");
  expect(conn.closed).toBe(false);
});

test("POST /api/im/config counts the mint and stores the token in one round trip", async () => {
  const userId = newUserId();
  const jwt = await devJwt(node, userId);
  const from = proxy.commands.length;
  const r = await api(node.http, "POST", "/api/im/config", { bearer: jwt, body: { appId: APP_ID } });
  expect(r.status).toBe(200);
  const counter = keys.tokensMinted(APP_ID, userId);
  const token = keys.token(r.json.token);
  const sent = proxy.since(from, (c) => c.args.includes(counter) || c.args.includes(token));
  // one command, naming both: the count and the token go together
  expect(sent.length).toBe(1);
  expect(sent[0].args).toContain(counter);
  expect(sent[0].args).toContain(token);
});

test("GET /api/living/:roomId reads the room and its member count in one round trip", async () => {
  const roomId = await openRoom(node);
  const jwt = await devJwt(node, newUserId());
  const from = proxy.commands.length;
  const r = await api(node.http, "GET", `/api/living/${roomId}`, { bearer: jwt });
  expect(r.json).toMatchObject({ roomId, watchNum: 0, isAnchor: false });
  const commands = proxy.since(from);
  const room = one(commands, "room read", (c) => c.args[0] === "GET" && c.args[1] === keys.livingRoom(roomId));
  const count = one(commands, "count read", (c) => c.args[0] === "HLEN" && c.args[1] === keys.roomMembers(roomId));
  expect(count.conn).toBe(room.conn);
  expect(sentAfterReplyTo(count, room) || sentAfterReplyTo(room, count)).toBe(false);
});

test("room messages sent together are checked together (whether the room is live), and still take their places in frame order", async () => {
  const roomId = await openRoom(node);
  const userId = newUserId();
  const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId), roomId);
  conns.push(conn);
  const from = proxy.commands.length;
  for (let i = 0; i < 3; i++) conn.send(Code.BIZ, { bizCode: 5555, clientMsgId: `m${i}`, data: { roomId, content: `m${i}` } });
  // one to a room the connection is not in, between them: refused in its turn
  conn.send(Code.BIZ, { bizCode: 5555, clientMsgId: "elsewhere", data: { roomId: roomId + 1_000_000, content: "x" } });
  conn.send(Code.BIZ, { bizCode: 5555, clientMsgId: "m3", data: { roomId, content: "m3" } });
  const answers = [];
  for (let i = 0; i < 5; i++) answers.push(await conn.next((f) => f.code === Code.ACK || f.code === Code.ERROR, 5000, `answer ${i}`));
  expect(answers.map((f) => f.body.clientMsgId)).toEqual(["m0", "m1", "m2", "elsewhere", "m3"]);
  expect(answers[3].code).toBe(Code.ERROR);
  const acked = answers.filter((f) => f.code === Code.ACK).map((f) => BigInt(f.body.msgId));
  expect(acked).toEqual([...acked].sort((a, b) => (a < b ? -1 : 1)));
  // the room's history has them in seq order as sent
  await waitFor(async () => (await redis.zcard(keys.roomLog(roomId))) === 4, 5000, "the 4 messages in the room's history");
  const history = (await redis.zrange(keys.roomLog(roomId), "0", "-1")).map((m: string) => JSON.parse(m).data.content);
  expect(history).toEqual(["m0", "m1", "m2", "m3"]);
  // the looks at the room's liveness went out together: none waited for another's reply
  const looks = proxy.since(from, (c) => c.args[0] === "GET" && c.args[1] === keys.livingRoom(roomId));
  expect(looks.length).toBe(4);
  for (const look of looks.slice(1)) expect(sentAfterReplyTo(look, looks[0])).toBe(false);
});

test("a LOGIN that takes over a session on another node kicks it in the same round trip as it joins its room", async () => {
  const roomId = await openRoom(node);
  const userId = newUserId();
  const token = await imToken(node, userId);
  // the user's session elsewhere: a binding to another node (no one listens on its channel)
  const elsewhere = `${cluster.prefix}-elsewhere`;
  await redis.set(keys.binding(APP_ID, userId), `${elsewhere}|c1`, "PX", 60_000);
  const from = proxy.commands.length;
  conns.push(await RawTcp.loggedIn(node.tcp, userId, token, roomId));
  const commands = proxy.since(from);
  const kick = one(commands, "kick", (c) => c.args[0] === "PUBLISH" && c.args[1] === keys.nodeChannel(elsewhere));
  expect(JSON.parse(kick.args[2])).toMatchObject({ t: "kick", userId, connId: "c1" });
  const look = one(commands, "second look", (c) => c.args[0] === "GET" && c.args[1] === keys.livingRoom(roomId), kick);
  expect(sentAfterReplyTo(look, kick)).toBe(false);
});

test("a login's replay reads the kept messages' ACK notes and records their deliveries in one round trip", async () => {
  const { userId, commands } = await loginWithKept(2);
  const pending = keys.pending(APP_ID, userId);
  // before the replay's first write, nothing but the script that records the deliveries (and reads
  // the notes) touches the user's pending hash: no read of its own ahead of it
  const touching = commands.filter((c) => c.args.includes(pending));
  expect(touching[0].args[0]).toStartWith("EVAL");
  expect(touching.filter((c) => c.args[0] === "HMGET")).toEqual([]);
});

test("closing a room caches it as closed, reserves its notice's msgId and seq and reads the nodes in one round trip", async () => {
  const anchor = await devJwt(node, newUserId());
  const started = await api(node.http, "POST", "/api/living/start", { bearer: anchor, body: { type: 1 } });
  const roomId: number = started.json.roomId;
  const from = proxy.commands.length;
  expect((await api(node.http, "POST", "/api/living/close", { bearer: anchor, body: { roomId } })).status).toBe(200);
  const commands = proxy.since(from);
  const cache = one(commands, "the cache write", (c) => c.args[0] === "SET" && c.args[1] === keys.livingRoom(roomId) && c.args[2] === "null");
  const reserve = one(commands, "the reserve", (c) => c.args[0].startsWith("EVAL") && c.args.includes(keys.roomSeq(roomId)), cache);
  const nodes = one(commands, "the nodes read", (c) => c.args[0] === "ZRANGE" && c.args[1] === keys.nodes());
  expect(sentAfterReplyTo(reserve, cache)).toBe(false);
  expect(nodes.conn).toBe(cache.conn);
  expect(sentAfterReplyTo(nodes, cache) || sentAfterReplyTo(cache, nodes)).toBe(false);
  // then the closed mark, then the notice (its publish names the room's seq key first)
  const mark = one(commands, "the closed mark", (c) => c.args[0] === "SET" && c.args[1] === keys.roomClosed(roomId));
  const notice = one(commands, "the notice", (c) => c.args[0].startsWith("EVAL") && c.args[3] === keys.roomSeq(roomId), mark);
  expect(sentAfterReplyTo(notice, mark)).toBe(true);
});

test("a command is sent while the node's earlier commands are unanswered, not after their replies", async () => {
  const command = proxy.connectionNamed(`live-im:${node.nodeId}:command`);
  if (command === undefined) throw new Error("the node's command connection was not seen");
  const [first, second] = [newUserId(), newUserId()];
  const binding = (u: number) => (c: SeenCommand) => c.conn === command && c.args[0] === "GET" && c.args[1] === keys.binding(APP_ID, u);
  const online = (u: number) => api(node.http, "GET", `/api/im/online?userId=${u}&appId=${APP_ID}`, { bearer: cluster.apiKey });
  const from = proxy.commands.length;
  proxy.holdReplies(command);
  let answers: Promise<unknown>[] = [];
  try {
    answers = [online(first)];
    await waitFor(() => proxy.since(from, binding(first)).length === 1, 5000, "the first request's GET sent");
    answers.push(online(second));
    // the first GET is still unanswered: the second goes out anyway
    await waitFor(() => proxy.since(from, binding(second)).length === 1, 5000, "the second request's GET sent while the first waits for its reply");
  } finally {
    proxy.releaseReplies(command);
  }
  expect(await Promise.all(answers)).toMatchObject([
    { status: 200, json: { online: false } },
    { status: 200, json: { online: false } },
  ]);
});

test("a BIZ accepted while an earlier intake batch waits for its job to be stored gets its msgId meanwhile", async () => {
  const queues = proxy.connectionNamed(`live-im:${node.nodeId}:bullmq`);
  if (queues === undefined) throw new Error("the node's BullMQ connection was not seen");
  const userId = newUserId();
  const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
  conns.push(conn);
  const reserve = (c: SeenCommand) => c.args[0].startsWith("EVAL") && c.args[3] === keys.msgIdSeq();
  const from = proxy.commands.length;
  proxy.holdReplies(queues);
  try {
    conn.send(Code.BIZ, { bizCode: 5556, clientMsgId: "a", data: { objectId: newUserId(), content: "a" } });
    await waitFor(() => proxy.since(from, (c) => c.conn === queues && c.args.some((a) => a.includes(":bull:im-biz:"))).length > 0, 5000, "the first batch's job sent");
    conn.send(Code.BIZ, { bizCode: 5556, clientMsgId: "b", data: { objectId: newUserId(), content: "b" } });
    await waitFor(() => proxy.since(from, reserve).length === 2, 5000, "the second batch's reservation sent while the first's job is unanswered");
  } finally {
    proxy.releaseReplies(queues);
  }
  const acks = [await conn.next((f) => f.code === Code.ACK, 5000, "ACK a"), await conn.next((f) => f.code === Code.ACK, 5000, "ACK b")];
  expect(acks.map((f) => f.body.clientMsgId)).toEqual(["a", "b"]);
  expect(BigInt(acks[1].body.msgId)).toBeGreaterThan(BigInt(acks[0].body.msgId));
});
