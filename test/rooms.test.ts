// Issue 4: live rooms on MySQL (start, close, list, get), caches, the locked list rebuild, and room
// recovery after a reconnect. Two real nodes in this process, real Redis and MySQL.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import type Redis from "ioredis";
import { ImClient, nativeConnectors, type Delivered, type RoomData } from "../src/client";
import { connectDatabase, type Database } from "../src/db/client";
import { livingRoom, livingRoomRecord } from "../src/db/schema";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { Sequencer } from "../src/messaging/sequencer";
import { RedisBroker, type Broker, type RoomLogEntry } from "../src/router/broker";
import { RoomLog } from "../src/router/room-log";
import { LivingRooms } from "../src/rooms/living-rooms";
import { RoomMembership } from "../src/rooms/membership";
import { RoomClosing } from "../src/rooms/room-closing";
import { Code } from "../src/protocol/codes";
import { api, APP_ID, connectTestRedis, devJwt, imToken, newUserId, roomOnlineCount } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { RawTcp } from "./support/raw-tcp";
import type { TestNode } from "./support/test-cluster";
import { waitFor } from "./support/wait";

let cluster: InProcessCluster;
let A: TestNode;
let B: TestNode;
const clients: ImClient[] = [];
let database: Database;

beforeAll(async () => {
  cluster = await startInProcessNodes(2);
  [A, B] = cluster.nodes;
  database = connectDatabase(cluster.databaseUrl, { timeoutMs: 10_000 });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await database.close();
  await cluster.stop();
});

async function startRoom(node: TestNode, anchorJwt: string, roomName = "test room"): Promise<number> {
  const r = await api(node.http, "POST", "/api/living/start", { bearer: anchorJwt, body: { type: 1, roomName, covertImg: "https://example.invalid/c.png" } });
  expect(r.status).toBe(200);
  return r.json.roomId;
}

/** `redis` as a client whose SETs wait for release(); `reached` resolves at the first one. */
function holdingSets(redis: Redis): { client: Redis; reached: Promise<void>; release: () => void } {
  let reach!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const client = new Proxy(redis, {
    get(target, prop) {
      if (prop === "set") {
        return async (...args: Parameters<Redis["set"]>) => {
          reach();
          await released;
          return target.set(...args);
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  return { client, reached, release };
}

async function listAll(node: TestNode, type = 1): Promise<any[]> {
  const rows: any[] = [];
  for (let page = 1; page < 500; page++) {
    const r = await api(node.http, "GET", `/api/living/list?type=${type}&page=${page}&pageSize=100`);
    expect(r.status).toBe(200);
    rows.push(...r.json.list);
    if (!r.json.hasNext) return rows;
  }
  throw new Error("list never ended");
}

/** A viewer over TCP in `roomId` that records room messages; no automatic reconnect. */
async function viewer(node: TestNode, userId: number, roomId: number, roomSeq?: number) {
  const seen: Delivered<RoomData>[] = [];
  const client = await ImClient.fromConfig(node.http, await devJwt(node, userId), {
    transport: "tcp",
    connectors: nativeConnectors,
    roomId,
    roomSeq,
    heartbeatMs: 400,
    reconnect: false,
  });
  clients.push(client);
  client.on("room", (d) => seen.push(d));
  const login = await client.connect();
  return { client, seen, login };
}

describe("live rooms", () => {
  test("start → list → get → close → gone from list and cache at once; the record row is there", async () => {
    const anchor = newUserId();
    const anchorJwt = await devJwt(A, anchor);
    const viewerJwt = await devJwt(B, newUserId());
    const roomId = await startRoom(A, anchorJwt, "lifecycle");

    const listed = await waitFor(async () => (await listAll(B)).find((r) => r.id === roomId), 5000, "the room in the list");
    expect(listed).toMatchObject({ anchorId: anchor, roomName: "lifecycle", type: 1, watchNum: 0 });

    expect((await api(B.http, "GET", `/api/living/${roomId}`, { bearer: anchorJwt })).json).toMatchObject({ roomId, isAnchor: true });
    expect((await api(A.http, "GET", `/api/living/${roomId}`, { bearer: viewerJwt })).json).toMatchObject({ roomId, isAnchor: false });

    expect((await api(B.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } })).status).toBe(200);
    // the room object cache was invalidated by the close itself: no waiting
    expect((await api(A.http, "GET", `/api/living/${roomId}`, { bearer: viewerJwt })).json.roomId).toBe(-1);
    await waitFor(async () => !(await listAll(A)).some((r) => r.id === roomId), 5000, "the room to leave the list");

    const [record] = await database.db.select().from(livingRoomRecord).where(eq(livingRoomRecord.id, roomId));
    expect(record).toMatchObject({ anchorId: anchor, roomName: "lifecycle", status: 0 });
    expect(record.endTime).toBeInstanceOf(Date);
  });

  test("start_time is when the room started whatever the MySQL server's time zone: pooled connections run in UTC, as Drizzle reads and writes datetimes", async () => {
    const conns = await Promise.all([database.pool.getConnection(), database.pool.getConnection()]);
    try {
      for (const conn of conns) {
        const [rows] = await conn.query("SELECT @@session.time_zone AS tz");
        expect((rows as Array<{ tz: string }>)[0].tz).toBe("+00:00");
      }
    } finally {
      for (const conn of conns) conn.release();
    }
    const before = Date.now();
    const roomId = await startRoom(A, await devJwt(A, newUserId()), "started now");
    const [row] = await database.db.select().from(livingRoom).where(eq(livingRoom.id, roomId));
    // MySQL's CURRENT_TIMESTAMP set it; seconds of clock skew at most, never hours of a time zone
    expect(Math.abs(row.startTime.getTime() - before)).toBeLessThan(60_000);
  });

  test("a lookup of a room id that read MySQL just before the room started cannot cache it as not live", async () => {
    const redis = connectTestRedis();
    // the lookup runs the real code; its last step, caching what it read, is held until the start is done
    const held = holdingSets(redis);
    try {
      const anchorJwt = await devJwt(A, newUserId());
      const nextId = (await startRoom(A, await devJwt(A, newUserId()), "before")) + 1;
      const lookup = new LivingRooms(database.db, held.client, createKeys(cluster.prefix)).get(nextId);
      await held.reached;
      expect(await startRoom(A, anchorJwt, "started during a lookup")).toBe(nextId);
      held.release();
      expect(await lookup).toBeNull();
      expect((await api(B.http, "GET", `/api/living/${nextId}`, { bearer: anchorJwt })).json).toMatchObject({ roomId: nextId, isAnchor: true });
    } finally {
      held.release();
      redis.disconnect();
    }
  });

  test("a close that lands while a start caches its room leaves it cached as not live (a repeated start answers the room at once)", async () => {
    const redis = connectTestRedis();
    // the start runs the real code; its caching of the new room is held while the anchor, whose
    // repeated start got the room at once, closes it
    const held = holdingSets(redis);
    try {
      const anchor = newUserId();
      const anchorJwt = await devJwt(A, anchor);
      const starting = new LivingRooms(database.db, held.client, createKeys(cluster.prefix)).start(APP_ID, anchor, { type: 1, roomName: "closed while starting" });
      await held.reached;
      const roomId = await startRoom(A, anchorJwt, "the same start again");
      expect((await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } })).status).toBe(200);
      held.release();
      expect(await starting).toBe(roomId);
      expect((await api(B.http, "GET", `/api/living/${roomId}`, { bearer: anchorJwt })).json.roomId).toBe(-1);
    } finally {
      held.release();
      redis.disconnect();
    }
  });

  test("a room that closes leaves the room lists of the nodes that had its members", async () => {
    const keys = createKeys(cluster.prefix);
    const redis = connectTestRedis();
    try {
      const anchorJwt = await devJwt(A, newUserId());
      const roomId = await startRoom(A, anchorJwt, "leaves the node lists");
      await viewer(A, newUserId(), roomId);
      await viewer(B, newUserId(), roomId);
      await waitFor(async () => (await roomOnlineCount(A, roomId)) === 2, 5000, "both viewers in the room");
      expect(await redis.sismember(keys.nodeRooms(A.nodeId), String(roomId))).toBe(1);
      expect((await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } })).status).toBe(200);
      expect(await redis.sismember(keys.nodeRooms(A.nodeId), String(roomId))).toBe(0);
      expect(await redis.sismember(keys.nodeRooms(B.nodeId), String(roomId))).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  test("10 concurrent starts by one anchor open one room: same roomId, listed once, one close removes it, then a new one", async () => {
    const anchor = newUserId();
    const anchorJwt = await devJwt(A, anchor);
    const starts = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        api(i % 2 ? A.http : B.http, "POST", "/api/living/start", { bearer: anchorJwt, body: { type: 1, roomName: `concurrent ${i}` } }),
      ),
    );
    expect(starts.map((r) => r.status)).toEqual(Array(10).fill(200));
    const roomId = starts[0].json.roomId;
    expect(Number.isInteger(roomId)).toBe(true);
    expect(starts.map((r) => r.json.roomId)).toEqual(Array(10).fill(roomId));
    const liveRows = () => database.db.select({ id: livingRoom.id }).from(livingRoom).where(eq(livingRoom.anchorId, anchor));
    expect(await liveRows()).toEqual([{ id: roomId }]);

    const anchorsRooms = async (node: TestNode) => (await listAll(node)).filter((r) => r.anchorId === anchor).map((r) => r.id);
    await waitFor(async () => (await anchorsRooms(B)).includes(roomId), 5000, "the room in the list");
    // across more than one rebuild of the list (every second): the anchor's room, once
    for (let i = 0; i < 8; i++) {
      expect(await anchorsRooms(i % 2 ? A : B)).toEqual([roomId]);
      await Bun.sleep(200);
    }

    expect((await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } })).status).toBe(200);
    expect(await liveRows()).toEqual([]);
    await waitFor(async () => (await anchorsRooms(A)).length === 0 && (await anchorsRooms(B)).length === 0, 5000, "the anchor to leave the list");

    const next = await startRoom(B, anchorJwt, "again");
    expect(next).not.toBe(roomId);
    expect(await liveRows()).toEqual([{ id: next }]);
    await waitFor(async () => (await anchorsRooms(A)).includes(next), 5000, "the new room in the list");
    expect((await api(B.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId: next } })).status).toBe(200);
  });

  test("close: 403 for a user who is not the anchor, 404 for an unknown or closed room", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const otherJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(A, anchorJwt);
    // the room is cached by a look at it; a refused close must leave that be (or anyone could keep a
    // busy room's lookups going to MySQL)
    expect((await api(A.http, "GET", `/api/living/${roomId}`, { bearer: otherJwt })).json.roomId).toBe(roomId);
    const cached = createKeys(cluster.prefix).livingRoom(roomId);
    const redis = connectTestRedis();
    try {
      expect(await redis.exists(cached)).toBe(1);
      const denied = await api(A.http, "POST", "/api/living/close", { bearer: otherJwt, body: { roomId } });
      expect(denied.status).toBe(403);
      expect(denied.json.error.code).toBe("forbidden");
      expect(await redis.exists(cached)).toBe(1);
    } finally {
      redis.disconnect();
    }
    expect((await api(B.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } })).status).toBe(200);
    expect((await api(B.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } })).status).toBe(404);
    expect((await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId: 2_000_000_000 } })).status).toBe(404);
  });

  test("an anchor is a user of one app: the same userId in another app opens its own room, is not this one's anchor and may not close it (403)", async () => {
    const userId = newUserId();
    const ours = await devJwt(A, userId);
    const otherApp = await devJwt(A, userId, { appId: APP_ID + 1 });
    const roomId = await startRoom(A, ours);
    const theirs = await startRoom(B, otherApp);
    expect(theirs).not.toBe(roomId);
    const seen = await api(B.http, "GET", `/api/living/${roomId}`, { bearer: otherApp });
    expect([seen.json.roomId, seen.json.isAnchor]).toEqual([roomId, false]);
    expect((await api(A.http, "GET", `/api/living/${roomId}`, { bearer: ours })).json.isAnchor).toBe(true);
    const denied = await api(B.http, "POST", "/api/living/close", { bearer: otherApp, body: { roomId } });
    expect([denied.status, denied.json.error?.code]).toEqual([403, "forbidden"]);
    expect((await api(A.http, "GET", `/api/living/${roomId}`, { bearer: ours })).json.roomId).toBe(roomId);
    expect((await api(A.http, "POST", "/api/living/close", { bearer: ours, body: { roomId } })).status).toBe(200);
    // the other app's room closes with a notice of its app
    const viewerId = newUserId();
    const viewer = await RawTcp.loggedIn(B.tcp, viewerId, await imToken(B, viewerId), theirs);
    try {
      expect((await api(A.http, "POST", "/api/living/close", { bearer: otherApp, body: { roomId: theirs } })).status).toBe(200);
      const notice = await viewer.next((f) => f.code === Code.BIZ && f.body.bizCode === 5557, 5000, "the 5557 notice");
      expect([notice.body.appId, JSON.parse(notice.body.data).anchorId]).toEqual([APP_ID + 1, userId]);
    } finally {
      viewer.close();
    }
  });

  test("the list holds only rooms of the asked type; a full page before the last says hasNext", async () => {
    const started = await api(A.http, "POST", "/api/living/start", { bearer: await devJwt(A, newUserId()), body: { type: 2, roomName: "pk" } });
    expect(started.status).toBe(200);
    const pk: number = started.json.roomId;
    const normal = [await startRoom(A, await devJwt(A, newUserId()), "normal 1"), await startRoom(A, await devJwt(A, newUserId()), "normal 2")];
    const ids = async (type: number) => (await listAll(A, type)).map((r) => r.id as number);
    // the lists are rebuilt every second: wait for this test's rooms
    await waitFor(async () => (await ids(2)).includes(pk), 5000, "the pk room listed");
    await waitFor(async () => {
      const listed = await ids(1);
      return normal.every((id) => listed.includes(id));
    }, 5000, "both normal rooms listed");
    const pkRooms = await listAll(A, 2);
    expect(pkRooms.every((r) => r.type === 2)).toBe(true);
    expect(pkRooms.map((r) => r.id)).not.toContain(normal[0]);
    const normalRooms = await listAll(A, 1);
    expect(normalRooms.every((r) => r.type === 1)).toBe(true);
    expect(normalRooms.map((r) => r.id)).not.toContain(pk);
    const first = await api(A.http, "GET", "/api/living/list?type=1&page=1&pageSize=1");
    expect(first.json.list).toHaveLength(1);
    expect(first.json.hasNext).toBe(true);
  });

  test("list pagination edges: past the end is empty without a next page; pageSize 101, or a number not in decimal digits, is 400", async () => {
    const all = await listAll(A);
    const past = await api(A.http, "GET", `/api/living/list?type=1&page=${Math.ceil((all.length + 1) / 10) + 1}&pageSize=10`);
    expect(past.json).toEqual({ list: [], hasNext: false });
    const bad = await api(A.http, "GET", "/api/living/list?type=1&page=1&pageSize=101");
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe("bad_request");
    // "0x2" and "1e1" are numbers to JavaScript, not to a query string
    for (const query of ["type=1&page=0x2", "type=1&pageSize=1e1", "type=0x1"]) expect((await api(A.http, "GET", `/api/living/list?${query}`)).status).toBe(400);
    expect((await api(A.http, "GET", "/api/living/0x10/online")).status).toBe(400);
    expect((await api(A.http, "GET", "/api/im/online?userId=0x10", { bearer: cluster.apiKey })).status).toBe(400);
  });

  test("the list, rebuilt every second by one of two nodes, is never half built nor duplicated", async () => {
    const jwts = await Promise.all([0, 1, 2, 3, 4].map(() => devJwt(A, newUserId())));
    const ids = await Promise.all(jwts.map((j, i) => startRoom(i % 2 ? A : B, j, `rebuild ${i}`)));
    await waitFor(async () => {
      const rows = await listAll(B);
      return ids.every((id) => rows.some((r) => r.id === id));
    }, 5000, "all five rooms in the list");
    // sample across several rebuilds: every sample holds all five, each once
    for (let i = 0; i < 25; i++) {
      const rows = await listAll(i % 2 ? A : B);
      const seen = rows.map((r) => r.id);
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of ids) expect(seen).toContain(id);
      await Bun.sleep(100);
    }
    for (const [i, id] of ids.entries()) await api(A.http, "POST", "/api/living/close", { bearer: jwts[i], body: { roomId: id } });
  });
});

describe("room push (POST /api/living/:roomId/push)", () => {
  const roomPush = (node: TestNode, roomId: number | string, body: object, opts: { key?: string; bearer?: string } = {}) =>
    api(node.http, "POST", `/api/living/${roomId}/push`, {
      bearer: opts.bearer ?? cluster.apiKey,
      body,
      headers: opts.key === undefined ? {} : { "Idempotency-Key": opts.key },
    });

  test("reaches every member on both nodes, the anchor too, in the room's seq order; a viewer that missed it recovers it; repeats with its Idempotency-Key get its answer", async () => {
    const anchorId = newUserId();
    const anchorJwt = await devJwt(A, anchorId);
    const roomId = await startRoom(A, anchorJwt, "room push");
    const anchor = await viewer(A, anchorId, roomId);
    const onB = await viewer(B, newUserId(), roomId);
    const stayingOnB = await viewer(B, newUserId(), roomId);
    const chat = await onB.client.sendRoom("before the gift");
    expect(chat.msgId).toBeTruthy();
    await waitFor(() => anchor.seen.length === 1, 5000, "the chat message at the anchor");
    const chatSeq = anchor.seen[0].data.seq;
    onB.client.close();

    const key = `gift-${newUserId()}`;
    const gift = { bizCode: 7001, data: { text: "Ann sent a rose", giftId: 3, from: { userId: 42 } } };
    const r = await roomPush(B, roomId, gift, { key });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ msgId: expect.stringMatching(/^[1-9][0-9]*$/), seq: chatSeq + 1 });
    const repeat = await roomPush(A, roomId, gift, { key });
    expect(repeat.json).toEqual(r.json);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");

    const [got] = await waitFor(() => anchor.seen.length === 2 && anchor.seen.slice(1), 5000, "the room push at the anchor");
    await waitFor(() => stayingOnB.seen.length === 2, 5000, "the room push at the viewer on B");
    expect(stayingOnB.seen[1].msgId).toBe(r.json.msgId);
    expect(got.msgId).toBe(r.json.msgId);
    expect(got.bizCode).toBe(7001);
    expect(got.data).toEqual({ text: "Ann sent a rose", giftId: 3, from: { userId: 42 }, userId: 0, roomId, seq: chatSeq + 1, createTime: expect.any(Number) });
    // the viewer on B was away: its recovery replays the push, once (the repeat was not published)
    const back = await viewer(B, onB.login.userId, roomId, chatSeq);
    expect(back.login.recovered).toBe(true);
    await anchor.client.sendRoom("after the gift");
    await waitFor(() => back.seen.length === 2, 5000, "the push replayed, then the anchor's live message");
    expect(back.seen.map((d) => [d.bizCode, d.data.seq])).toEqual([
      [7001, chatSeq + 1],
      [5555, chatSeq + 2],
    ]);
    expect(anchor.seen.length).toBe(2);
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  test("refused: no server key 401; a room not live (unknown, closed) 409; data with a field the server sets, a bizCode of the table or a bad roomId 400; data over a frame 413", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(A, anchorJwt, "room push refusals");
    const ok = { bizCode: 7002, data: { text: "flash sale" } };
    expect((await roomPush(A, roomId, ok, { bearer: await devJwt(A, newUserId()) })).status).toBe(401);
    for (const field of ["userId", "roomId", "seq", "createTime"]) {
      const r = await roomPush(A, roomId, { bizCode: 7002, data: { [field]: 1 } });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toContain("the server sets them");
    }
    for (const bizCode of [5555, 5556, 5557]) expect((await roomPush(A, roomId, { ...ok, bizCode })).status).toBe(400);
    expect((await roomPush(A, "abc", ok)).status).toBe(400);
    // each stays in the room's history and is replayed at recovery: 16 KB at most, well below a frame
    const tooLarge = await roomPush(A, roomId, { bizCode: 7002, data: { text: "x".repeat(16_400) } });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json.error.message).toContain("at most 16384 bytes");
    expect((await roomPush(A, roomId, { bizCode: 7002, data: { text: "x".repeat(16_000) } })).status).toBe(200);
    expect((await roomPush(A, roomId, ok)).status).toBe(200);
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
    // a refused push leaves its key free: the key with another room is refused for that room, not as reused
    const key = `closed-${newUserId()}`;
    for (const id of [roomId, 999_999_999]) {
      const r = await roomPush(B, id, ok, { key });
      expect(r.status).toBe(409);
      expect(r.json.error.code).toBe("room_not_live");
    }
  });
});

describe("room recovery (LOGIN roomSeq)", () => {
  test("a viewer that misses 5 messages gets exactly those 5 at reconnect, in order, then live ones; never its own", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(A, anchorJwt, "recovery");
    const sender = await viewer(A, newUserId(), roomId);
    const v = await viewer(B, newUserId(), roomId);
    await sender.client.sendRoom("before");
    await waitFor(() => v.seen.some((d) => d.data.content === "before"), 5000, "the first message at the viewer");
    const lastSeq = v.seen.at(-1)!.data.seq;
    // the viewer's own message comes after the last seq it saw: the replay must leave it out
    await v.client.sendRoom("mine");
    await waitFor(() => sender.seen.some((d) => d.data.content === "mine"), 5000, "the viewer's own message in the room");
    v.client.close();

    for (let i = 1; i <= 5; i++) await sender.client.sendRoom(`missed ${i}`);
    const back = await viewer(A, v.login.userId, roomId, lastSeq);
    expect(back.login.recovered).toBe(true);
    await waitFor(() => back.seen.length >= 5, 5000, "the 5 missed messages");
    expect(back.seen.map((d) => d.data.content)).toEqual(["missed 1", "missed 2", "missed 3", "missed 4", "missed 5"]);
    expect(back.seen.map((d) => d.data.seq)).toEqual([2, 3, 4, 5, 6].map((n) => lastSeq + n));
    await sender.client.sendRoom("live");
    await waitFor(() => back.seen.length === 6, 5000, "the live message after the recovered ones");
    expect(back.seen[5].data).toMatchObject({ content: "live", seq: lastSeq + 7 });
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  /** Publish room messages with these seqs through the broker directly, as workers would. */
  async function publishSeqs(roomId: number, seqs: number[], content?: string): Promise<void> {
    const redis = connectRedis(loadConfig().redis.url, createLogger("test", "warn"));
    const broker = new RedisBroker(redis.command, redis.subscriber, createKeys(cluster.prefix), createLogger("test", "warn"));
    try {
      for (let i = 0; i < seqs.length; i += 500) {
        const entries = seqs.slice(i, i + 500).map((seq) => ({
          seq,
          msg: { msgId: String(seq), appId: 10001, bizCode: 5555, ts: Date.now(), data: { userId: 1, roomId, content: content ?? `m${seq}` } },
        }));
        await broker.publishToRoom(roomId, entries);
      }
    } finally {
      await redis.close();
    }
  }

  /** A new user's WebSocket into `roomId`, recovering from `roomSeq` by the upgrade URL; what it gets, parsed. */
  async function recoveringByUrl(node: TestNode, roomId: number, roomSeq: number) {
    const userId = newUserId();
    const ws = new WebSocket(`${node.ws}?token=${await imToken(node, userId)}&userId=${userId}&roomId=${roomId}&roomSeq=${roomSeq}`);
    const got: Array<{ code: number; body: any }> = [];
    ws.onmessage = (ev) => got.push(JSON.parse(String(ev.data)));
    return { userId, got, ws };
  }

  test("a seq that was never published (its intake failed) leaves no hole in recovery: recovered stays true", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(B, anchorJwt, "with a gap");
    await publishSeqs(roomId, [1, 2, 3, 5, 6]);
    const v = await viewer(A, newUserId(), roomId, 2);
    expect(v.login).toMatchObject({ recovered: true, roomSeq: 6 });
    await waitFor(() => v.seen.length >= 3, 5000, "the 3 kept messages after seq 2");
    expect(v.seen.map((d) => d.data.seq)).toEqual([3, 5, 6]);
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  test("over WebSocket the upgrade URL carries roomId and roomSeq: the LOGIN answer, then the missed messages", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(B, anchorJwt, "recover by URL");
    await publishSeqs(roomId, [1, 2, 3]);
    const { userId, got, ws } = await recoveringByUrl(B, roomId, 1);
    try {
      await waitFor(() => got.length >= 3, 5000, "the LOGIN answer and 2 missed messages");
      expect(got[0]).toMatchObject({ code: 1001, body: { userId, roomSeq: 3, recovered: true } });
      expect(got.slice(1).map((m) => JSON.parse(m.body.data).seq)).toEqual([2, 3]);
    } finally {
      ws.close();
    }
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  test("a viewer that reconnects while this node holds messages behind a gap gets each once, in seq order", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(A, anchorJwt, "a gap during a login");
    const first = await viewer(A, newUserId(), roomId);
    await publishSeqs(roomId, [1]);
    await waitFor(() => first.seen.length === 1, 5000, "seq 1 at the first viewer");
    const userId = newUserId();
    const token = await imToken(A, userId);
    // seq 2's worker is late: node A holds 3 and 4 behind the gap (for up to a second)
    await publishSeqs(roomId, [3, 4]);
    const back = await RawTcp.connect(A.tcp);
    try {
      back.send(Code.LOGIN, { appId: APP_ID, userId, token, roomId, roomSeq: 1 });
      const login = await back.next((f) => f.code === Code.LOGIN, 5000, "the LOGIN answer");
      // the node had passed on seq 1 only: 3 and 4 come live after 2, not in the replay
      expect(login.body).toMatchObject({ roomSeq: 1, recovered: true });
      await publishSeqs(roomId, [2]);
      const seqs = () => back.frames.filter((f) => f.code === Code.BIZ).map((f) => JSON.parse(f.body.data).seq);
      await waitFor(() => seqs().includes(4), 5000, "seq 4 at the viewer that came back");
      // observe a moment longer: a repeat would come right behind
      await Bun.sleep(200);
      expect(seqs()).toEqual([2, 3, 4]);
      expect(first.seen.map((d) => d.data.seq)).toEqual([1, 2, 3, 4]);
    } finally {
      back.close();
    }
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  test("a long replay over WebSocket (1,000 messages of 12 KB) is written as the client reads: all arrive and the connection stays", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(B, anchorJwt, "long messages");
    // 4,000 characters of 3 UTF-8 bytes: the longest content a client may send
    await publishSeqs(roomId, Array.from({ length: 1000 }, (_, i) => i + 1), "界".repeat(4000));
    const { got, ws } = await recoveringByUrl(B, roomId, 0);
    let closed = false;
    ws.onclose = () => (closed = true);
    const replayed = () => got.filter((m) => m.code === Code.BIZ).length;
    try {
      await waitFor(() => closed || replayed() === 1000, 20_000, "the 1,000 messages (or the close)");
      expect(closed).toBe(false);
    } finally {
      ws.close();
    }
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  test("a viewer that missed more than the history keeps gets recovered=false", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(B, anchorJwt, "too far behind");
    // 3,000 messages are more than the kept history
    await publishSeqs(roomId, Array.from({ length: 3000 }, (_, i) => i + 1));
    const v = await viewer(A, newUserId(), roomId, 1);
    expect(v.login.recovered).toBe(false);
    expect(v.login.roomSeq).toBe(3000);
    // what is still kept is delivered, in order, ending at the latest
    await waitFor(() => v.seen.at(-1)?.data.seq === 3000, 5000, "the kept tail of the history");
    const seqs = v.seen.map((d) => d.data.seq);
    expect(seqs.length).toBeGreaterThanOrEqual(1000);
    expect(seqs).toEqual(seqs.slice().sort((a, b) => a - b));
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
  });

  test("closing a room tells its viewers (5557) and empties its online count", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(A, anchorJwt, "closing");
    const pushes: number[] = [];
    const v = await viewer(B, newUserId(), roomId);
    v.client.on("push", (d) => pushes.push(d.bizCode));
    await waitFor(async () => (await roomOnlineCount(A, roomId)) === 1, 5000, "online count 1");
    await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
    await waitFor(() => v.seen.some((d) => d.bizCode === 5557) || pushes.includes(5557), 5000, "the 5557 room-closed notice");
    expect(await roomOnlineCount(B, roomId)).toBe(0);
    await expect(v.client.sendRoom("after close")).rejects.toMatchObject({ reason: "room_not_live" });
  });

  test("a closed room's history and seq expire within the hour, not the week of a live room's, even after a late publish", async () => {
    const anchorJwt = await devJwt(A, newUserId());
    const roomId = await startRoom(A, anchorJwt, "history after close");
    const v = await viewer(B, newUserId(), roomId);
    await v.client.sendRoom("before close");
    const keys = createKeys(cluster.prefix);
    const redis = connectTestRedis();
    try {
      await waitFor(async () => (await redis.ttl(keys.roomLog(roomId))) > 3600, 5000, "the live room's history, kept for days");
      await api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
      await waitFor(() => v.seen.some((d) => d.bizCode === 5557), 5000, "the 5557 room-closed notice");
      const expiresSoon = async (key: string) => {
        const ttl = await redis.ttl(key);
        return ttl > 0 && ttl <= 3600;
      };
      expect(await expiresSoon(keys.roomLog(roomId))).toBe(true);
      expect(await expiresSoon(keys.roomSeq(roomId))).toBe(true);
      // a room message accepted before the close whose job is retried after it
      const log = createLogger("test", "silent");
      const conns = connectRedis(loadConfig().redis.url, log);
      try {
        const late = { msgId: "1", appId: APP_ID, bizCode: 5555, ts: Date.now(), data: { userId: 1, roomId, content: "late" } };
        await new RedisBroker(conns.command, conns.subscriber, keys, log).publishToRoom(roomId, [{ seq: 99, msg: late }]);
      } finally {
        await conns.close();
      }
      expect(await expiresSoon(keys.roomLog(roomId))).toBe(true);
      expect(await expiresSoon(keys.roomSeq(roomId))).toBe(true);
    } finally {
      redis.disconnect();
    }
  });

  test("a room message published between the close notice and the closed mark leaves the closed room's history its hour, not a week", async () => {
    const anchorId = newUserId();
    const roomId = await startRoom(A, await devJwt(A, anchorId), "late publish during the close");
    const log = createLogger("test", "silent");
    const redis = connectRedis(loadConfig().redis.url, log);
    const keys = createKeys(cluster.prefix);
    const broker = new RedisBroker(redis.command, redis.subscriber, keys, log);
    const sequencer = new Sequencer(redis.command, keys);
    // a room message accepted before the close whose im-biz job publishes it right after the notice
    const [{ msgId, seq }] = await sequencer.reserve([roomId]);
    const late: RoomLogEntry = { seq: seq!, msg: { msgId, appId: APP_ID, bizCode: 5555, ts: Date.now(), data: { userId: 1, roomId, content: "late" } } };
    const lateAfterNotice: Broker = Object.assign(Object.create(broker) as Broker, {
      publishToRoom: async (id: number, entries: RoomLogEntry[]) => {
        await broker.publishToRoom(id, entries);
        if (entries.some((e) => e.msg.closesRoom)) await broker.publishToRoom(id, [late]);
      },
    });
    const closing = new RoomClosing(new LivingRooms(database.db, redis.command, keys), new RoomMembership(redis.command, keys), lateAfterNotice, sequencer, log);
    try {
      await closing.close(APP_ID, anchorId, roomId);
      const ttl = await redis.command.ttl(keys.roomLog(roomId));
      expect(ttl > 0 && ttl <= 3600).toBe(true);
    } finally {
      await redis.close();
    }
  });

  test("a room that closes while a viewer's LOGIN reads its history: the viewer is told (no roomSeq, or the 5557 notice)", async () => {
    const anchorId = newUserId();
    const anchorJwt = await devJwt(A, anchorId);
    const roomId = await startRoom(A, anchorJwt, "closes during a login");
    // the close runs between the login's join (room live) and its history read: the window is
    // milliseconds wide, so the test opens it by running the close inside the read
    const latestSeq = RoomLog.prototype.latestSeq;
    let closeOnce: (() => Promise<unknown>) | null = () => api(A.http, "POST", "/api/living/close", { bearer: anchorJwt, body: { roomId } });
    RoomLog.prototype.latestSeq = async function (this: RoomLog, id: number) {
      const close = closeOnce;
      closeOnce = null;
      if (close) expect((await close()) as { status: number }).toMatchObject({ status: 200 });
      return latestSeq.call(this, id);
    };
    try {
      const pushes: number[] = [];
      const v = await viewer(A, newUserId(), roomId);
      v.client.on("push", (d) => pushes.push(d.bizCode));
      expect(closeOnce).toBeNull();
      await waitFor(
        () => v.login.roomSeq === undefined || v.seen.some((d) => d.bizCode === 5557) || pushes.includes(5557),
        5000,
        `a LOGIN answer without roomSeq, or the 5557 notice (answer: ${JSON.stringify(v.login)})`,
      );
      await expect(v.client.sendRoom("after close")).rejects.toMatchObject({ reason: "room_not_live" });
    } finally {
      RoomLog.prototype.latestSeq = latestSeq;
    }
  });

  // the first try of one Redis step fails as it would with Redis gone for a moment; the next ones go through
  for (const step of ["caching the room as closed", "publishing the notice"] as const) {
    test(`a close whose announcement fails once at ${step} (Redis out of reach) is still closed, and its viewers are told on the retry`, async () => {
      const anchorId = newUserId();
      const roomId = await startRoom(A, await devJwt(A, anchorId), "announce later");
      const pushes: number[] = [];
      const v = await viewer(B, newUserId(), roomId);
      v.client.on("push", (d) => pushes.push(d.bizCode));
      await waitFor(async () => (await roomOnlineCount(A, roomId)) === 1, 5000, "online count 1");
      const log = createLogger("test", "silent");
      const redis = connectRedis(loadConfig().redis.url, log);
      const keys = createKeys(cluster.prefix);
      const broker = new RedisBroker(redis.command, redis.subscriber, keys, log);
      const rooms = new LivingRooms(database.db, redis.command, keys);
      let failures = 1;
      const failOnce = <T>(run: () => Promise<T>) => (failures-- > 0 ? Promise.reject(new Error("connection lost")) : run());
      const flakyBroker: Broker =
        step === "publishing the notice"
          ? Object.assign(Object.create(broker) as Broker, { publishToRoom: (id: number, entries: RoomLogEntry[]) => failOnce(() => broker.publishToRoom(id, entries)) })
          : broker;
      const flakyRooms: LivingRooms =
        step === "caching the room as closed" ? Object.assign(Object.create(rooms) as LivingRooms, { cacheClosed: (id: number) => failOnce(() => rooms.cacheClosed(id)) }) : rooms;
      const closing = new RoomClosing(flakyRooms, new RoomMembership(redis.command, keys), flakyBroker, new Sequencer(redis.command, keys), log, [50]);
      try {
        await closing.close(APP_ID, anchorId, roomId);
        await waitFor(() => v.seen.some((d) => d.bizCode === 5557) || pushes.includes(5557), 5000, "the 5557 notice, on the retry");
        expect(failures).toBe(-1);
        expect((await api(A.http, "GET", `/api/living/${roomId}`, { bearer: await devJwt(A, anchorId) })).json.roomId).toBe(-1);
        expect(await roomOnlineCount(B, roomId)).toBe(0);
      } finally {
        await redis.close();
      }
    });
  }
});
