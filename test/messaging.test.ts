// Issue 3, messaging: private chat across nodes and transports, sender ACKs, redelivery until the
// recipient ACKs, kept messages for offline users, room chat fan-out with seq, backend pushes, and
// refused BIZ bodies. Real node processes, Redis and MySQL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Queue } from "bullmq";
import mysql from "mysql2/promise";
import type { ImClient } from "../src/client";
import { Code } from "../src/protocol/codes";
import { createKeys } from "../src/redis/keys";
import { QueueName } from "../src/queues/names";
import { ackChecksRun, markerDelivered } from "./support/ack-checks";
import { api, APP_ID, connectTestRedis, devJwt, imToken, newUserId, openRoom } from "./support/http-api";
import type { Clients } from "./support/clients";
import type { ProcessNode } from "./support/node-processes";
import type { TestNode } from "./support/test-cluster";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { frame, RawTcp } from "./support/raw-tcp";
import { record } from "./support/recorder";
import { TwoNodeSuite } from "./support/two-node-suite";
import { waitFor } from "./support/wait";

const DECIMAL = /^[1-9][0-9]*$/;

let A: ProcessNode;
let B: ProcessNode;
const suite = TwoNodeSuite.start((a, b) => ([A, B] = [a, b]));
const { clients, db } = suite;

/** A connected client of a new (or the given) user, with everything it emits recorded. */
async function user(node: TestNode, opts: Parameters<Clients["online"]>[1] = {}) {
  const userId = opts.userId ?? newUserId();
  const client = await clients.online(node, { ...opts, userId });
  return { userId, client, events: record(client) };
}

/** How many messages MySQL keeps for the user (of APP_ID). */
async function keptCount(userId: number): Promise<number> {
  const sql = await mysql.createConnection(suite.cluster.databaseUrl);
  try {
    const [rows] = await sql.query("SELECT COUNT(*) AS n FROM im_message WHERE app_id = ? AND user_id = ?", [APP_ID, userId]);
    return Number((rows as Array<{ n: number }>)[0].n);
  } finally {
    await sql.end();
  }
}

/**
 * A private message from a new user on A to a raw TCP session on B that never ACKs by itself.
 * `isIt` matches the message's deliveries among the raw session's frames.
 */
async function toSessionThatDoesNotAck(content: string) {
  const sender = await user(A, { transport: "tcp" });
  const recipientId = newUserId();
  const { conn: raw } = await suite.rawLogin(B, recipientId);
  raw.keepAlive(300);
  const { msgId } = await sender.client.sendPrivate(recipientId, content);
  const isIt = (f: { code: number; body: any }) => f.code === Code.BIZ && f.body.msgId === msgId;
  return { raw, recipientId, msgId, isIt, pending: createKeys(suite.cluster.prefix).pending(APP_ID, recipientId) };
}

describe("private chat (5556)", () => {
  test("TCP on A → WS on B and back: the sender's ACK carries the msgId the recipient gets", async () => {
    const tcp = await user(A, { transport: "tcp" });
    const ws = await user(B, { wsForm: "binary" });
    const there = await tcp.client.sendPrivate(ws.userId, "hello over there");
    expect(there.msgId).toMatch(DECIMAL);
    const [got] = await waitFor(() => ws.events.private.length > 0 && ws.events.private, 3000, "the delivery on B");
    expect(got.msgId).toBe(there.msgId);
    expect(got.bizCode).toBe(5556);
    expect(got.data).toMatchObject({ userId: tcp.userId, objectId: ws.userId, content: "hello over there" });
    expect(typeof got.data.createTime).toBe("number");
    // data may also be sent as a JSON string (PROTOCOL.md section 4)
    const back = await ws.client.send(5556, JSON.stringify({ objectId: tcp.userId, content: "and back" }));
    const [reply] = await waitFor(() => tcp.events.private.length > 0 && tcp.events.private, 3000, "the reply on A");
    expect(reply).toMatchObject({ msgId: back.msgId, data: { userId: ws.userId, objectId: tcp.userId, content: "and back" } });
    expect(BigInt(back.msgId)).toBeGreaterThan(BigInt(there.msgId));
  });

  test("a recipient that does not ACK gets the same msgId again after the ACK timeout, and not once it ACKs", async () => {
    const { raw, recipientId, msgId, isIt, pending } = await toSessionThatDoesNotAck("ack me");
    const first = await raw.next(isIt, 3000, "the first delivery");
    const firstAt = Date.now();
    expect(first.body).toMatchObject({ msgId, appId: APP_ID, userId: recipientId, bizCode: 5556 });
    const ackTimeout = suite.cluster.settings.ackTimeoutMs;
    const again = await raw.next(isIt, 2 * ackTimeout + 3000, "the redelivery");
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(ackTimeout / 2);
    expect(again.body).toEqual(first.body);
    raw.send(Code.ACK, { msgId });
    await waitFor(async () => (await db.hexists(pending, msgId)) === 0, 2000, "the server to record the ACK");
    // the check of the second delivery, which would resend it, has run: an ACKed message is never sent again
    await ackChecksRun(db, suite.cluster, msgId, 2, 2 * ackTimeout + 5000);
    await markerDelivered(suite.cluster, A, raw, recipientId);
    expect(raw.frames.filter(isIt)).toHaveLength(2);
  });

  test("a session that never ACKs gets ACK_MAX_ATTEMPTS deliveries of a message or push and no more; both are kept for its next login", async () => {
    const { raw, recipientId, msgId, isIt, pending } = await toSessionThatDoesNotAck("never ACKed");
    const push = await api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: { appId: APP_ID, userIds: [recipientId], bizCode: 6001, data: { order: 42 } } });
    expect(push.json).toMatchObject({ accepted: 1 });
    const isPush = (f: { code: number; body: any }) => f.code === Code.BIZ && f.body.bizCode === 6001;
    const pushId: string = (await raw.next(isPush, 3000, "the push's first delivery")).body.msgId;
    const { ackTimeoutMs, ackMaxAttempts } = suite.cluster.settings;
    // "0k": kept in MySQL, no delivery pending (messaging/pending-acks.ts)
    const bothKept = async () => (await db.hmget(pending, msgId, pushId)).every((v) => v === "0k");
    await waitFor(bothKept, (ackMaxAttempts + 2) * ackTimeoutMs + 3000, "the message and the push to be kept");
    // the last checks have run: the same session gets nothing more
    for (const id of [msgId, pushId]) await ackChecksRun(db, suite.cluster, id, ackMaxAttempts, ackTimeoutMs + 5000);
    await markerDelivered(suite.cluster, A, raw, recipientId);
    expect(raw.frames.filter(isIt)).toHaveLength(ackMaxAttempts);
    expect(raw.frames.filter(isPush)).toHaveLength(ackMaxAttempts);
    raw.close();
    const next = await user(A, { userId: recipientId, transport: "tcp" });
    await waitFor(() => next.events.private.length > 0 && next.events.push.length > 0, 3000, "the kept message and push at the next login");
    expect(next.events.private).toMatchObject([{ msgId, data: { content: "never ACKed" } }]);
    expect(next.events.push).toMatchObject([{ msgId: pushId, bizCode: 6001, data: { order: 42 } }]);
  });

  test("an offline recipient gets its kept messages at the next login, in msgId order, and only once", async () => {
    const sender = await user(A, { transport: "tcp" });
    const offlineId = newUserId();
    const sent: string[] = [];
    for (const content of ["one", "two", "three"]) sent.push((await sender.client.sendPrivate(offlineId, content)).msgId);
    // a message is accepted once queued, and kept by a worker a moment later, each job on its own
    // (on either node): one kept only after the login read the kept ones comes live, after them.
    // The user's kept mark is raised after a row is in: a login that reads none reads no row
    const keptMark = createKeys(suite.cluster.prefix).keptMark(APP_ID, offlineId);
    await waitFor(async () => (await keptCount(offlineId)) === sent.length && (await db.exists(keptMark)) === 1, 5000, "the 3 messages kept, and the mark raised");
    const first = await user(B, { userId: offlineId });
    await waitFor(() => first.events.private.length >= 3, 3000, "3 kept messages at login");
    expect(first.events.private.map((p) => p.msgId)).toEqual(sent);
    expect(first.events.private.map((p) => p.data.content)).toEqual(["one", "two", "three"]);
    await first.client.logout(); // its ACKs were sent before the LOGOUT, and are handled in order

    const second = await user(A, { userId: offlineId, transport: "tcp" });
    const { msgId: fresh } = await sender.client.sendPrivate(offlineId, "new");
    // kept messages come before any new one: once "new" is here, no replay can follow
    await waitFor(() => second.events.private.some((p) => p.msgId === fresh), 3000, "the new message");
    expect(second.events.private.map((p) => p.msgId)).toEqual([fresh]);
  });
});

describe("a reconnect during the last ACK timeout", () => {
  // one delivery in all, checked 3 s later: the new login surely comes before the check, whatever
  // the machine, so its replay cannot have had the message (it is kept only by that check)
  let slow: InProcessCluster;
  beforeAll(async () => {
    slow = await startInProcessNodes(2, { ackTimeoutMs: 3000, ackMaxAttempts: 1 });
  });
  afterAll(() => slow.stop());

  test("the recipient's new session gets the message when it is kept, not at some later login", async () => {
    const [a, b] = slow.nodes;
    const sender = await clients.online(a, { transport: "tcp" });
    const recipientId = newUserId();
    const raw = await RawTcp.loggedIn(b.tcp, recipientId, await imToken(b, recipientId));
    try {
      const { msgId } = await sender.sendPrivate(recipientId, "across a reconnect");
      await raw.next((f) => f.code === Code.BIZ && f.body.msgId === msgId, 3000, "the only delivery, to the session that never ACKs");
      const pending = createKeys(slow.prefix).pending(APP_ID, recipientId);
      // a reconnect, as of a client whose link dropped: the message is still pending, not kept
      const again = await user(a, { userId: recipientId, transport: "tcp" });
      expect(await db.hget(pending, msgId)).toBe("1");
      const [got] = await waitFor(() => again.events.private.length > 0 && again.events.private, 3000 + 3000, "the message on the new session");
      expect(got).toMatchObject({ msgId, data: { content: "across a reconnect" } });
      await waitFor(async () => (await db.hexists(pending, msgId)) === 0, 2000, "the new session's ACK to settle it");
    } finally {
      raw.close();
    }
  }, 15_000);
});

describe("kept marks (which users may have kept messages)", () => {
  test("a Redis that lost the marks still lets a login find its kept messages, and the marks are rebuilt", async () => {
    const keys = createKeys(suite.cluster.prefix);
    const sender = await user(A, { transport: "tcp" });
    const offlineId = newUserId();
    const { msgId } = await sender.client.sendPrivate(offlineId, "kept while Redis forgot");
    await waitFor(async () => (await db.exists(keys.keptMark(APP_ID, offlineId))) === 1, 3000, "the message kept and its mark raised");
    // what a Redis restart does to the marks (under this suite.cluster's own prefix)
    await db.del(keys.keptMark(APP_ID, offlineId), keys.keptMarksReady());
    const back = await user(B, { userId: offlineId });
    const [got] = await waitFor(() => back.events.private.length > 0 && back.events.private, 3000, "the kept message at login");
    expect(got.msgId).toBe(msgId);
    await waitFor(async () => (await db.exists(keys.keptMarksReady())) === 1, 3000, "the marks rebuilt from im_message");
  });
});

describe("a session whose binding lapsed", () => {
  test("gets the messages kept for it meanwhile at its next HEARTBEAT, which binds it again", async () => {
    const keys = createKeys(suite.cluster.prefix);
    const sender = await user(A, { transport: "tcp" });
    // what follows fits in the session's idle deadline (2 heartbeat intervals after its LOGIN)
    const { conn: raw, userId } = await suite.rawLogin(B);
    // what a stall of 2 heartbeat intervals (this node's or Redis') does to the binding
    await db.del(keys.binding(APP_ID, userId));
    const { msgId } = await sender.client.sendPrivate(userId, "while the binding had lapsed");
    await waitFor(async () => (await db.hget(keys.pending(APP_ID, userId), msgId)) === "0k", 3000, "the message to be kept for the next login");
    expect(raw.frames.some((f) => f.body.msgId === msgId)).toBe(false);
    raw.send(Code.HEARTBEAT);
    const got = await raw.next((f) => f.code === Code.BIZ && f.body.msgId === msgId, 3000, "the kept message after the HEARTBEAT");
    expect(got.body).toMatchObject({ userId, bizCode: 5556 });
    expect(await db.exists(keys.binding(APP_ID, userId))).toBe(1);
  });

  test("a new message sent while that HEARTBEAT replays many kept ones comes after all of them", async () => {
    const keys = createKeys(suite.cluster.prefix);
    const { conn: raw, userId } = await suite.rawLogin(B);
    await db.del(keys.binding(APP_ID, userId));
    // 4,000 of 2 KB kept for it meanwhile (written straight into MySQL, ids below any the cluster
    // gives): more than the socket's buffers and the replay's bound hold, so the replay waits for
    // the client to read
    const total = 4000;
    const sql = await mysql.createConnection(suite.cluster.databaseUrl);
    try {
      for (let from = 1; from <= total; from += 1000) {
        const rows = Array.from({ length: 1000 }, (_, i) => [APP_ID, userId, from + i, 7, 6001, JSON.stringify({ n: from + i, pad: "x".repeat(2000) }), Date.now()]);
        await sql.query("INSERT INTO im_message (app_id, user_id, msg_id, sender_id, biz_code, data, ts) VALUES ?", [rows]);
      }
    } finally {
      await sql.end();
    }
    await db.set(keys.keptMark(APP_ID, userId), "kept-by-test");
    // the client stops reading; its HEARTBEAT makes the binding again and starts the replay
    raw.pause();
    raw.send(Code.HEARTBEAT);
    raw.keepAlive(300);
    await waitFor(async () => (await db.exists(keys.binding(APP_ID, userId))) === 1, 3000, "the binding made again");
    const push = await api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6002, data: {} } });
    await waitFor(async () => (await db.hexists(keys.pending(APP_ID, userId), push.json.msgId)) === 1, 3000, "the new push delivered to the session");
    raw.resume();
    await waitFor(() => raw.frames.some((f) => f.code === Code.BIZ && f.body.bizCode === 6002), 15_000, "the new push at the client");
    const order = raw.frames.filter((f) => f.code === Code.BIZ).map((f) => f.body.bizCode);
    expect(order.indexOf(6002)).toBe(total);
  });
});

describe("room chat (5555)", () => {
  test("members on both nodes get every message but their own, with consecutive seq", async () => {
    const roomId = await openRoom(A);
    const sender = await user(A, { transport: "tcp", roomId });
    const members = [await user(A, { roomId }), await user(B, { transport: "tcp", roomId }), await user(B, { wsForm: "binary", roomId })];
    const outsider = await user(B, {});
    for (const content of ["r1", "r2", "r3"]) await sender.client.sendRoom(content);
    for (const m of members) await waitFor(() => m.events.room.length >= 3, 3000, `3 room messages at member ${m.userId}`);
    // seq places each message: consecutive, the same at every member, and arriving in seq order
    const placed = members[0].events.room.map((r) => [r.data.seq, r.data.content, r.data.userId, r.data.roomId]);
    const first = members[0].events.room[0].data.seq;
    expect(placed.map(([seq]) => seq)).toEqual([first, first + 1, first + 2]);
    expect(placed.map(([, content]) => content).sort()).toEqual(["r1", "r2", "r3"]);
    expect(placed.every(([, , from, room]) => from === sender.userId && room === roomId)).toBe(true);
    for (const m of members) {
      expect(m.events.room.map((r) => [r.data.seq, r.data.content, r.data.userId, r.data.roomId])).toEqual(placed);
      expect(m.client.roomSeq).toBe(first + 2);
    }
    // a reply from node B continues the seq and reaches the first sender, who saw none of its own
    await members[1].client.sendRoom("reply");
    await waitFor(() => sender.events.room.length > 0, 3000, "the reply at the first sender");
    expect(sender.events.room.map((r) => [r.data.seq, r.data.content])).toEqual([[first + 3, "reply"]]);
    expect(outsider.events.room).toEqual([]);
  });

  test("a user of another app with the sender's userId is someone else: it gets the message, live and in a replay", async () => {
    const roomId = await openRoom(A);
    const userId = newUserId();
    const sender = await user(A, { userId, roomId, transport: "tcp" });
    // TCP on the sender's node: the fan-out loop that leaves the sender out
    const twin = await user(A, { userId, appId: APP_ID + 1, roomId, transport: "tcp" });
    await sender.client.sendRoom("to both apps");
    const [live] = await waitFor(() => twin.events.room.length > 0 && twin.events.room, 3000, "the message at the other app's user");
    expect(live.data).toMatchObject({ userId, content: "to both apps" });
    expect(sender.events.room).toEqual([]);
    twin.client.close();
    // recorded from before the login: a replay comes with it
    const back = await clients.make(B, { userId, appId: APP_ID + 1, roomId, roomSeq: live.data.seq - 1, transport: "tcp" });
    const replayed = record(back).room;
    await back.connect();
    await waitFor(() => replayed.length > 0, 3000, "the message replayed to the other app's user");
    expect(replayed.map((r) => r.msgId)).toEqual([live.msgId]);
  });

  test("on the wire a room delivery has no top-level userId; its data names the sender, room, seq, name, avatar and time", async () => {
    const roomId = await openRoom(A);
    const senderId = newUserId();
    const jwt = await devJwt(A, senderId, { nickName: "Ann", avatar: "https://example.invalid/ann.png" });
    const { token } = (await api(A.http, "POST", "/api/im/config", { bearer: jwt, body: { appId: APP_ID } })).json;
    const sender = await RawTcp.loggedIn(A.tcp, senderId, token, roomId);
    const viewerId = newUserId();
    const viewer = await RawTcp.loggedIn(B.tcp, viewerId, await imToken(B, viewerId), roomId);
    try {
      sender.send(Code.BIZ, { bizCode: 5555, clientMsgId: "r", data: { roomId, content: "hello room" } });
      const { body: ack } = await sender.next((f) => f.code === Code.ACK, 3000, "the sender's ACK");
      const { body } = await viewer.next((f) => f.code === Code.BIZ, 3000, "the room delivery");
      expect(Object.keys(body).sort()).toEqual(["appId", "bizCode", "data", "msgId", "ts"]);
      expect(body).toMatchObject({ msgId: ack.msgId, appId: APP_ID, bizCode: 5555 });
      const data = JSON.parse(body.data);
      expect(data).toEqual({ userId: senderId, roomId, content: "hello room", senderName: "Ann", senderAvatar: "https://example.invalid/ann.png", seq: expect.any(Number), createTime: expect.any(Number) });
    } finally {
      sender.close();
      viewer.close();
    }
  });

  test("room messages keep their send order: seq follows msgId, with senders and workers on both nodes", async () => {
    const roomId = await openRoom(A);
    const senders = [await user(A, { transport: "tcp", roomId }), await user(B, { roomId })];
    const viewer = await user(B, { roomId });
    const sent = Array.from({ length: 100 }, (_, i) => `m${i}`);
    // each sender sends back to back (the next right after the previous one's ACK), both at once
    await Promise.all(senders.map(async (s, k) => {
      for (const content of sent) await s.client.sendRoom(`${k}:${content}`);
    }));
    await waitFor(() => viewer.events.room.length === 2 * sent.length, 10_000, "every room message at the viewer");
    const seen = viewer.events.room;
    const seqs = seen.map((r) => r.data.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
    const msgIds = seen.map((r) => BigInt(r.msgId));
    expect(msgIds).toEqual(msgIds.slice().sort((a, b) => (a < b ? -1 : 1)));
    for (const k of [0, 1]) {
      expect(seen.filter((r) => r.data.content?.startsWith(`${k}:`)).map((r) => r.data.content)).toEqual(sent.map((c) => `${k}:${c}`));
    }
  });
});

describe("backend push", () => {
  test("POST /api/im/push reaches online users on both nodes and an offline one at login; a wrong key gets 401", async () => {
    const onA = await user(A, { transport: "tcp" });
    const onB = await user(B, {});
    const offlineId = newUserId();
    const body = { appId: APP_ID, userIds: [onA.userId, onB.userId, offlineId], bizCode: 6001, data: { gift: "rose", count: 3 } };
    const refused = await api(A.http, "POST", "/api/im/push", { bearer: "wrong-key", body });
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe("unauthorized");
    const r = await api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body });
    expect(r.status).toBe(200);
    expect(r.json.accepted).toBe(3);
    const offline = await user(B, { userId: offlineId });
    for (const u of [onA, onB, offline]) {
      const [p] = await waitFor(() => u.events.push.length > 0 && u.events.push, 3000, `the push at ${u.userId}`);
      expect(p).toMatchObject({ bizCode: 6001, data: { gift: "rose", count: 3 } });
      expect(p.msgId).toBe(onA.events.push[0].msgId);
    }
  });

  test("a push repeated with its Idempotency-Key (on either node, also at once) is accepted once: repeats get the first answer and take no msgId; the key with another push is 422, a malformed key 400", async () => {
    const onB = await user(B, { transport: "tcp" });
    const key = `order-${newUserId()}`;
    const body = { appId: APP_ID, userIds: [onB.userId], bizCode: 6001, data: { order: key } };
    const push = (node: TestNode, headerKey: string, pushBody: object = body) =>
      api(node.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: pushBody, headers: { "Idempotency-Key": headerKey } });
    const first = await push(A, key);
    expect(first.status).toBe(200);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const msgIdSeq = createKeys(suite.cluster.prefix).msgIdSeq();
    const seqBefore = await db.get(msgIdSeq);
    const repeats = await Promise.all([push(A, key), push(B, key), push(B, key)]);
    for (const r of repeats) {
      expect(r.status).toBe(200);
      expect(r.json).toEqual(first.json);
      expect(r.headers.get("idempotent-replayed")).toBe("true");
    }
    // nothing was queued again: not one msgId was taken by the repeats
    expect(await db.get(msgIdSeq)).toBe(seqBefore);
    const reused = await push(B, key, { ...body, data: { order: "another" } });
    expect(reused.status).toBe(422);
    expect(reused.json.error.code).toBe("idempotency_key_reused");
    expect((await push(A, "has a space")).status).toBe(400);
    expect((await push(A, "k".repeat(256))).status).toBe(400);
    // the same key at once on both nodes: one is accepted, the others get its answer or are told to wait
    const raceKey = `race-${newUserId()}`;
    const seqBeforeRace = Number(await db.get(msgIdSeq));
    const raced = await Promise.all([A, B, A, B].map((n) => push(n, raceKey, { ...body, data: { order: raceKey } })));
    const accepted = raced.filter((r) => r.status === 200);
    expect(accepted.length).toBeGreaterThan(0);
    expect(new Set(accepted.map((r) => r.json.msgId)).size).toBe(1);
    expect(Number(await db.get(msgIdSeq))).toBe(seqBeforeRace + 1);
    for (const r of raced.filter((r) => r.status !== 200)) expect(r.json.error.code).toBe("idempotency_conflict");
    const pushesOf = (order: string) => onB.events.push.filter((p) => (p.data as { order?: string }).order === order);
    await waitFor(() => pushesOf(key).length > 0 && pushesOf(raceKey).length > 0, 5000, "both pushes at the user");
    expect(pushesOf(key).map((p) => p.msgId)).toEqual([first.json.msgId]);
    expect(pushesOf(raceKey).map((p) => p.msgId)).toEqual([accepted[0].json.msgId]);
  });

  test("a repeat with its Idempotency-Key whose JSON differs only in key order (the data's, nested too) or in its userIds' order is the same push: it gets the first answer", async () => {
    const [u1, u2] = [newUserId(), newUserId()];
    const key = `reordered-${newUserId()}`;
    const push = (body: object) => api(B.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body, headers: { "Idempotency-Key": key } });
    // what a backend's map serialises in another order after a restart (a Rust HashMap, say)
    const first = await push({ appId: APP_ID, userIds: [u1, u2], bizCode: 6003, data: { order: key, amount: 5, item: { sku: "a", qty: 1 } } });
    expect(first.status).toBe(200);
    const repeat = await push({ data: { item: { qty: 1, sku: "a" }, amount: 5, order: key }, bizCode: 6003, userIds: [u2, u1, u2], appId: APP_ID });
    expect({ status: repeat.status, json: repeat.json, replayed: repeat.headers.get("idempotent-replayed") }).toEqual({ status: 200, json: first.json, replayed: "true" });
    // another value is another push
    const other = await push({ appId: APP_ID, userIds: [u1, u2], bizCode: 6003, data: { order: key, amount: 6, item: { sku: "a", qty: 1 } } });
    expect(other.status).toBe(422);
  });

  test("a push that would not fit in one frame (MAX_BODY_BYTES), or too large in all, gets 413; one that fits reaches a TCP client; an appId or bizCode past 32 bits, a bizCode of the table (or 5557) or data nested too deep gets 400", async () => {
    const onA = await user(A, { transport: "tcp" });
    const push = (data: Record<string, unknown>, appId = APP_ID, bizCode = 6002) =>
      api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: { appId, userIds: [onA.userId], bizCode, data } });
    const tooLarge = await push({ text: "x".repeat(65_536) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json.error.code).toBe("payload_too_large");
    expect((await push({ n: 1 }, 3_000_000_000)).status).toBe(400);
    expect((await push({ n: 1 }, APP_ID, 10_000_000_000)).status).toBe(400);
    // the table's codes have data of a fixed shape, 5557 is the server's own; data nested too deep to encode
    for (const bizCode of [5555, 5556, 5557]) expect((await push({ n: 1 }, APP_ID, bizCode)).status).toBe(400);
    const depth = 100_000;
    const nested = await fetch(`${A.http}/api/im/push`, {
      method: "POST",
      headers: { authorization: `Bearer ${suite.cluster.apiKey}`, "content-type": "application/json" },
      body: `{"userIds":[${onA.userId}],"bizCode":6002,"data":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`,
    });
    expect(nested.status).toBe(400);
    // each fits in a frame, but 300 recipients of 60 KB are more than one push may carry in all
    const many = await api(A.http, "POST", "/api/im/push", {
      bearer: suite.cluster.apiKey,
      body: { appId: APP_ID, userIds: Array.from({ length: 300 }, () => newUserId()), bizCode: 6002, data: { text: "z".repeat(60_000) } },
    });
    expect(many.status).toBe(413);
    expect(many.json.error.message).toContain("split the recipients");
    const fits = await push({ text: "y".repeat(60_000) });
    expect(fits.status).toBe(200);
    const [p] = await waitFor(() => onA.events.push.length > 0 && onA.events.push, 3000, "the push that fits");
    expect(p.msgId).toBe(fits.json.msgId);
    expect((p.data as { text: string }).text.length).toBe(60_000);
    // the refused one was never queued: only the push that fits arrived, and the client stayed online
    expect(onA.events.push.length).toBe(1);
    expect(onA.client.status).toBe("online");
  });
});

describe("refused BIZ", () => {
  test("bad bodies get ERROR with their clientMsgId, and the connection keeps working", async () => {
    const u = await user(A, {});
    const reason = (p: Promise<unknown>) => p.then(() => "accepted", (e: { reason: string }) => e.reason);
    const client: ImClient = u.client;
    expect(await reason(client.send(5556, { objectId: "nope", content: "x" }))).toBe("invalid_body");
    expect(await reason(client.send(5556, "{not json"))).toBe("invalid_body");
    expect(await reason(client.send(5556, { objectId: newUserId(), content: "" }))).toBe("invalid_body");
    expect(await reason(client.send(4242, { anything: 1 }))).toBe("unknown_biz_code");
    expect(await reason(client.send(5555, { roomId: 12345, content: "not my room" }))).toMatch(/^(not_in_room|room_not_live)$/);
    expect((await client.sendPrivate(newUserId(), "fine")).msgId).toMatch(DECIMAL);
    // every ERROR was matched to its send by clientMsgId: none was left over as a stray error
    expect(u.events.error).toEqual([]);
    expect(u.events.reconnecting).toEqual([]);
    expect(client.status).toBe("online");
  });

  test("room chat to a live room the connection is not in gets ERROR not_in_room, not an ACK, and reaches none of the room's members", async () => {
    const roomId = await openRoom(A);
    const otherRoom = await openRoom(A);
    const inRoom = async (node: TestNode, room?: number) => {
      const userId = newUserId();
      return RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId), room);
    };
    const viewer = await inRoom(B, roomId);
    const member = await inRoom(A, roomId);
    // a connection in no room, and one in another live room
    const outsiders = [await inRoom(A), await inRoom(B, otherRoom)];
    try {
      for (const [i, outsider] of outsiders.entries()) {
        outsider.send(Code.BIZ, { bizCode: 5555, clientMsgId: `out-${i}`, data: { roomId, content: `from outside ${i}` } });
        const answer = await outsider.next((f) => f.body.clientMsgId === `out-${i}`, 3000, "the answer to a message for a room it is not in");
        expect(answer).toMatchObject({ code: Code.ERROR, body: { error: "not_in_room", clientMsgId: `out-${i}` } });
      }
      // sent after those answers: an outsider's message taken all the same would have its seq before
      // this one, and come first
      member.send(Code.BIZ, { bizCode: 5555, clientMsgId: "in", data: { roomId, content: "from a member" } });
      await viewer.next((f) => f.code === Code.BIZ, 3000, "the member's message");
      expect(viewer.frames.filter((f) => f.code === Code.BIZ).map((f) => JSON.parse(f.body.data).content)).toEqual(["from a member"]);
    } finally {
      for (const conn of [viewer, member, ...outsiders]) conn.close();
    }
  });
});

describe("BIZ frames of one connection", () => {
  test("a burst shares intake jobs, yet every answer comes in frame order, and a HEARTBEAT after it waits for it", async () => {
    const { conn, userId: senderId } = await suite.rawLogin(A);
    const recipient = await user(B, {});
    const BURST = 30;
    const BAD = 10;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < BURST; i++) {
      const data = { objectId: recipient.userId, content: i === BAD ? "" : `burst ${i}` };
      frames.push(frame(Code.BIZ, { bizCode: 5556, clientMsgId: `b${i}`, data }));
    }
    frames.push(frame(Code.HEARTBEAT));
    conn.write(Buffer.concat(frames));
    await conn.next((f) => f.code === Code.HEARTBEAT, 5000, "the HEARTBEAT answer");

    const answers = conn.frames.filter((f) => f.code === Code.ACK || f.code === Code.ERROR || f.code === Code.HEARTBEAT);
    expect(answers.map((f) => (f.code === Code.HEARTBEAT ? "heartbeat" : f.body.clientMsgId))).toEqual([
      ...Array.from({ length: BURST }, (_, i) => `b${i}`),
      "heartbeat",
    ]);
    expect(answers[BAD]).toMatchObject({ code: Code.ERROR, body: { error: "invalid_body" } });
    const acked = answers.filter((f) => f.code === Code.ACK).map((f) => f.body.msgId as string);
    expect(acked.length).toBe(BURST - 1);
    for (let i = 1; i < acked.length; i++) expect(BigInt(acked[i])).toBeGreaterThan(BigInt(acked[i - 1]));

    const delivered = await waitFor(() => recipient.events.private.length >= acked.length && recipient.events.private, 5000, "every delivery");
    expect(delivered.map((m) => m.msgId).sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1))).toEqual(acked);

    // one connection's frames did not each wait a whole intake batch for the one before: they
    // shared im-biz jobs (frame after frame, they would have made one job each; together, usually
    // one or two, but a slow machine may split the burst over a few batches)
    const redis = connectTestRedis();
    const queue = new Queue(QueueName.biz, { connection: redis, prefix: createKeys(suite.cluster.prefix).bullPrefix() });
    try {
      const jobs = await queue.getJobs(["completed", "active", "waiting"]);
      const ours = jobs.filter((j) => (j.data.messages as Array<{ senderId: number }>).some((m) => m.senderId === senderId));
      expect(ours.length).toBeGreaterThan(0);
      expect(ours.length).toBeLessThanOrEqual(BURST / 3);
    } finally {
      await queue.close();
      redis.disconnect();
    }
  });
});
