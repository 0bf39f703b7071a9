// Issue 2, the gateway: login over TCP and WebSocket, framing violations, in-order answers,
// heartbeats and presence bindings, idle close, logout, duplicate login across two nodes, and a
// killed node's users going offline. Real node processes, Redis and MySQL.
import { describe, expect, test } from "bun:test";
import { and, count, eq } from "drizzle-orm";
import { connectDatabase } from "../src/db/client";
import { imMessage } from "../src/db/schema";
import { Code } from "../src/protocol/codes";
import { encodeFrame, scanFrames } from "../src/protocol/frame";
import { createKeys } from "../src/redis/keys";
import { TOKENS_PER_MINUTE } from "../src/presence/tokens";
import { readFileSync } from "node:fs";
import { api, APP_ID, bindingKey, devJwt, imToken, metricValue, newUserId, onlineStatus } from "./support/http-api";
import { startInProcessNodes } from "./support/in-process-nodes";
import { startNodeProcesses, type ProcessCluster, type ProcessNode } from "./support/node-processes";
import { PausedWebSocket } from "./support/paused-ws";
import { frame, header, RawTcp, upgradeStatus } from "./support/raw-tcp";
import { record } from "./support/recorder";
import { TwoNodeSuite } from "./support/two-node-suite";
import { waitFor } from "./support/wait";

let A: ProcessNode;
let B: ProcessNode;
const suite = TwoNodeSuite.start((a, b) => ([A, B] = [a, b]));
const { clients, db } = suite;

const isError = (reason: string) => (f: { code: number; body: any }) => f.code === Code.ERROR && f.body.error === reason;

describe("TCP login", () => {
  test("a valid token logs in; the answer names the node, which /api/im/online then reports", async () => {
    const userId = newUserId();
    expect(await onlineStatus(suite.cluster, B, userId)).toEqual({ online: false });
    const client = await clients.make(A, { userId, transport: "tcp" });
    const info = await client.connect();
    expect(info).toMatchObject({ appId: APP_ID, userId, nodeId: A.nodeId, reconnected: false });
    expect(await onlineStatus(suite.cluster, B, userId)).toEqual({ online: true, nodeId: A.nodeId });
  });

  test("a bad token gets ERROR unauthorized, then the connection is closed", async () => {
    const conn = await suite.raw(A);
    conn.send(Code.LOGIN, { appId: APP_ID, userId: newUserId(), token: "not-a-token" });
    await conn.next(isError("unauthorized"), 3000, "ERROR unauthorized");
    await conn.closedWithin(3000);
  });

  test("another user's token gets ERROR unauthorized, then close", async () => {
    const conn = await suite.raw(A);
    conn.send(Code.LOGIN, { appId: APP_ID, userId: newUserId(), token: await imToken(A, newUserId()) });
    await conn.next(isError("unauthorized"), 3000, "ERROR unauthorized");
    await conn.closedWithin(3000);
  });

  test("a token serves several logins of its user and app (reconnects), and no other app's", async () => {
    const userId = newUserId();
    const token = await imToken(A, userId);
    for (const node of [A, B]) {
      const conn = await suite.raw(node);
      conn.send(Code.LOGIN, { appId: APP_ID, userId, token });
      const { body } = await conn.next((f) => f.code === Code.LOGIN || f.code === Code.ERROR, 3000, "the LOGIN answer");
      expect(body).toMatchObject({ appId: APP_ID, userId, data: "true", nodeId: node.nodeId });
      conn.close();
    }
    const otherApp = await suite.raw(A);
    otherApp.send(Code.LOGIN, { appId: APP_ID + 1, userId, token });
    await otherApp.next(isError("unauthorized"), 3000, "ERROR unauthorized for another app");
    await otherApp.closedWithin(3000);
  });

  test("an IM token lives 300 s; once it lapsed, a LOGIN with it gets ERROR unauthorized and a close", async () => {
    const userId = newUserId();
    const token = await imToken(A, userId);
    const key = createKeys(suite.cluster.prefix).token(token);
    const ttl = await db.pttl(key);
    expect(ttl).toBeGreaterThan(290_000);
    expect(ttl).toBeLessThanOrEqual(300_000);
    // what 300 s do to it
    await db.pexpire(key, 1);
    await waitFor(async () => (await db.exists(key)) === 0, 1000, "the token to lapse");
    const conn = await suite.raw(A);
    conn.send(Code.LOGIN, { appId: APP_ID, userId, token });
    await conn.next(isError("unauthorized"), 3000, "ERROR unauthorized for a lapsed token");
    await conn.closedWithin(3000);
  });

  test("a user JWT gets IM tokens for its own app only: the default app, or the one of its appId claim", async () => {
    const userId = newUserId();
    const config = async (jwt: string, appId: number) => (await api(A.http, "POST", "/api/im/config", { bearer: jwt, body: { appId } })).status;
    const plain = await devJwt(A, userId);
    expect(await config(plain, APP_ID)).toBe(200);
    // the same number in another app is someone else: its messages are not this user's to read
    expect(await config(plain, APP_ID + 1)).toBe(403);
    const ofOtherApp = await devJwt(A, userId, { appId: APP_ID + 1 });
    expect(await config(ofOtherApp, APP_ID + 1)).toBe(200);
    expect(await config(ofOtherApp, APP_ID)).toBe(403);
  });

  test("one user mints at most TOKENS_PER_MINUTE IM tokens a minute (then 429 rate_limited); another user is not held back", async () => {
    const userId = newUserId();
    const jwt = await devJwt(A, userId);
    const mint = async (bearer: string) => (await api(A.http, "POST", "/api/im/config", { bearer, body: { appId: APP_ID } })).status;
    for (let i = 0; i < TOKENS_PER_MINUTE; i++) expect(await mint(jwt)).toBe(200);
    const refused = await api(A.http, "POST", "/api/im/config", { bearer: jwt, body: { appId: APP_ID } });
    expect(refused.status).toBe(429);
    expect(refused.json.error.code).toBe("rate_limited");
    expect(await mint(await devJwt(A, newUserId()))).toBe(200);
  });

  test("a mint whose count fails in Redis is refused (500 internal), not made uncounted", async () => {
    const userId = newUserId();
    // a real Redis failure: the user's counter holds a hash, so its INCR fails (WRONGTYPE)
    await db.hset(createKeys(suite.cluster.prefix).tokensMinted(APP_ID, userId), "x", "1");
    const r = await api(A.http, "POST", "/api/im/config", { bearer: await devJwt(A, userId), body: { appId: APP_ID } });
    expect({ status: r.status, code: r.json.error?.code }).toEqual({ status: 500, code: "internal" });
  });

  test("a frame other than LOGIN before login gets ERROR not_logged_in, then close", async () => {
    const conn = await suite.raw(A);
    conn.send(Code.BIZ, { bizCode: 5556, data: { objectId: 1, content: "x" }, clientMsgId: "early" });
    await conn.next(isError("not_logged_in"), 3000, "ERROR not_logged_in");
    await conn.closedWithin(3000);
  });

  test("before login: a HEARTBEAT is tolerated; an unknown code, or a body that is not a JSON object, gets ERROR and a close", async () => {
    const unknown = await suite.raw(A);
    unknown.send(Code.HEARTBEAT);
    unknown.send(1999);
    await unknown.next(isError("unknown_code"), 3000, "ERROR unknown_code");
    await unknown.closedWithin(3000);
    const notObject = await suite.raw(A);
    notObject.write(encodeFrame(Code.LOGIN, "[1,2,3]"));
    await notObject.next(isError("invalid_body"), 3000, "ERROR invalid_body");
    await notObject.closedWithin(3000);
  });

  test("before login: 1,500 HEARTBEATs in one write (past the inbox bound) do not close the connection, and a LOGIN after them works", async () => {
    const conn = await suite.raw(A);
    const heartbeat = frame(Code.HEARTBEAT);
    const burst = new Uint8Array(heartbeat.length * 1500);
    for (let i = 0; i < 1500; i++) burst.set(heartbeat, i * heartbeat.length);
    conn.write(burst);
    // read after the burst on the same stream: answered only if the burst did not close the connection
    const userId = newUserId();
    conn.send(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(A, userId) });
    const answer = await conn.next((f) => f.code === Code.LOGIN || f.code === Code.ERROR, 3000, "the LOGIN answer");
    expect(answer.body).toMatchObject({ userId, data: "true" });
    expect(conn.closed).toBe(false);
  });

  test("after login: an unknown code, a body that is not a JSON object and a second LOGIN leave the connection working", async () => {
    const { conn, userId } = await suite.rawLogin(A);
    conn.send(1999);
    conn.write(encodeFrame(Code.BIZ, '"just a string"'));
    conn.send(Code.LOGIN, { appId: APP_ID, userId: newUserId(), token: "ignored" });
    conn.send(Code.HEARTBEAT);
    await conn.next((f) => f.code === Code.HEARTBEAT, 3000, "the HEARTBEAT answer");
    const answers = conn.frames.slice(1); // after the LOGIN answer
    // the second LOGIN is ignored: no answer, no ERROR, and the session is still the first user's
    expect(answers.map((f) => [f.code, f.body.error])).toEqual([
      [Code.ERROR, "unknown_code"],
      [Code.ERROR, "invalid_body"],
      [Code.HEARTBEAT, undefined],
    ]);
    expect(answers[2].body).toEqual({ appId: APP_ID, userId, data: "true" });
    expect(conn.closed).toBe(false);
  });

  test("a userId in a BIZ body never changes the sender", async () => {
    const { conn, userId: senderId } = await suite.rawLogin(A);
    const recipientId = newUserId();
    const events = record(await clients.online(B, { userId: recipientId, transport: "tcp" }));
    const someoneElse = newUserId();
    conn.send(Code.BIZ, { bizCode: 5556, userId: someoneElse, clientMsgId: "spoof", data: { userId: someoneElse, objectId: recipientId, content: "who am I" } });
    await conn.next((f) => f.code === Code.ACK && f.body.clientMsgId === "spoof", 3000, "the ACK");
    const [got] = await waitFor(() => events.private.length > 0 && events.private, 3000, "the delivery");
    expect(got.data).toMatchObject({ userId: senderId, objectId: recipientId, content: "who am I" });
  });

  test("a LOGIN arriving in pieces (partial frames) logs in", async () => {
    const userId = newUserId();
    const bytes = frame(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(A, userId) });
    const conn = await suite.raw(A);
    for (const cut of [[0, 3], [3, 10], [10, 25], [25, bytes.length]]) {
      conn.write(bytes.subarray(cut[0], cut[1]));
      await Bun.sleep(30); // separate TCP segments: the server must buffer, not wait for one read
    }
    const answer = await conn.next((f) => f.code === Code.LOGIN, 3000, "LOGIN answer");
    expect(answer.body).toMatchObject({ appId: APP_ID, userId, data: "true", nodeId: A.nodeId });
  });

  test("bad magic after login closes the connection (at most one ERROR first)", async () => {
    const { conn } = await suite.rawLogin(A);
    conn.write(header(Code.HEARTBEAT, 0, 0x1234));
    await conn.closedWithin(3000);
    expect(conn.frames.filter((f) => !f.taken).every((f) => f.code === Code.ERROR)).toBe(true);
    expect(conn.frames.filter((f) => !f.taken).length).toBeLessThanOrEqual(1);
  });

  test("frames before a framing violation in the same read are still answered, in order; then ERROR bad_frame and the close", async () => {
    const { conn } = await suite.rawLogin(A);
    conn.write(
      new Uint8Array([
        ...frame(Code.BIZ, { bizCode: 5556, data: { objectId: newUserId(), content: "before the garbage" }, clientMsgId: "before-1" }),
        ...frame(Code.HEARTBEAT),
        ...header(Code.HEARTBEAT, 0, 0x1234),
      ]),
    );
    await conn.closedWithin(3000);
    const answers = conn.frames.filter((f) => !f.taken);
    expect(answers.map((f) => f.code)).toEqual([Code.ACK, Code.HEARTBEAT, Code.ERROR]);
    expect(answers[0].body).toMatchObject({ clientMsgId: "before-1" });
    expect(answers[2].body.error).toBe("bad_frame");
  });

  test("a len over maxBody after login closes the connection", async () => {
    const { conn } = await suite.rawLogin(A);
    conn.write(header(Code.BIZ, suite.cluster.settings.maxBodyBytes + 1));
    await conn.closedWithin(3000);
    expect(conn.frames.filter((f) => !f.taken && f.code !== Code.ERROR)).toEqual([]);
  });

  test("frames of one connection are answered in order, even from one read with a partial frame", async () => {
    const userId = newUserId();
    const conn = await suite.raw(A);
    const tail = frame(Code.HEARTBEAT);
    conn.write(
      new Uint8Array([
        ...frame(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(A, userId) }),
        ...frame(Code.HEARTBEAT),
        ...frame(Code.BIZ, { bizCode: 5556, data: { objectId: "nope" }, clientMsgId: "bad-1" }),
        ...frame(Code.HEARTBEAT),
        ...tail.subarray(0, 5),
      ]),
    );
    await Bun.sleep(50);
    conn.write(tail.subarray(5));
    await waitFor(() => conn.frames.length >= 5, 3000, `5 answers (got ${conn.transcript()})`);
    expect(conn.frames.map((f) => f.code)).toEqual([Code.LOGIN, Code.HEARTBEAT, Code.ERROR, Code.HEARTBEAT, Code.HEARTBEAT]);
    expect(conn.frames[2].body).toMatchObject({ error: "invalid_body", clientMsgId: "bad-1" });
    expect(conn.closed).toBe(false);
  });
});

describe("a login that fails partway", () => {
  test("a kept-message replay that fails gets ERROR internal and a close; the next login replays the message", async () => {
    const userId = newUserId();
    const keys = createKeys(suite.cluster.prefix);
    const pushed = await api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6001, data: { n: 1 } } });
    expect(pushed.status).toBe(200);
    await waitFor(async () => (await db.exists(keys.keptMark(APP_ID, userId))) === 1, 5000, "the push kept for the offline user");
    // a real Redis failure: the replay's ACK-tracking hash is a string, so its HSET fails (WRONGTYPE)
    await db.set(keys.pending(APP_ID, userId), "not a hash");
    const conn = await suite.raw(A);
    conn.keepAlive(300); // so only the server's own decision closes it
    conn.send(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(A, userId) });
    await conn.next(isError("internal"), 3000, "ERROR internal");
    await conn.closedWithin(1000, "the half-logged-in connection closed");
    await waitFor(async () => !(await onlineStatus(suite.cluster, B, userId)).online, 2000, "the user offline again");
    await db.del(keys.pending(APP_ID, userId));
    const { conn: again } = await suite.rawLogin(A, userId);
    await again.next((f) => f.code === Code.BIZ && f.body.msgId === pushed.json.msgId, 3000, "the kept push replayed");
  });
});

describe("per-connection limits", () => {
  test("a flood of ACK frames past the inbox cap gets one ERROR rate_limited and a close; the node still serves others", async () => {
    const { conn } = await suite.rawLogin(A);
    conn.keepAlive(300);
    const ack = frame(Code.ACK, { msgId: "1" });
    const flood = new Uint8Array(ack.length * 20_000);
    for (let at = 0; at < flood.length; at += ack.length) flood.set(ack, at);
    conn.write(flood);
    await conn.next(isError("rate_limited"), 3000, "ERROR rate_limited");
    await conn.closedWithin(3000);
    expect(conn.frames.filter((f) => f.code === Code.ERROR).length).toBe(1);
    const { conn: other } = await suite.rawLogin(A);
    other.send(Code.HEARTBEAT);
    await other.next((f) => f.code === Code.HEARTBEAT, 3000, "a HEARTBEAT answer on another connection");
  }, 15_000);

  /** A HEARTBEAT answered: every frame `conn` sent before it was read and handled (ACKs applied or refused). */
  const roundTrip = async (conn: RawTcp, what: string) => {
    conn.send(Code.HEARTBEAT);
    await conn.next((f) => f.code === Code.HEARTBEAT || f.code === Code.ERROR, 5000, what);
  };

  /**
   * `kept` pushes to a new user, all kept (it is offline), then its login on a raw connection, which
   * `readAndAck` reads and ACKs. Then: the connection stays with no ERROR once the server has read
   * the last ACKs, and once it is closed the ACKed rows go and the next login replays nothing.
   */
  const keptReplayAcked = async (kept: number, readAndAck: (conn: RawTcp) => Promise<void>) => {
    const userId = newUserId();
    for (let i = 0; i < kept; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, kept - i) }, (_, j) =>
          api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6003, data: { n: i + j } } }),
        ),
      );
    }
    const database = connectDatabase(suite.cluster.databaseUrl, { timeoutMs: 10_000 });
    const rows = async () => (await database.db.select({ n: count() }).from(imMessage).where(and(eq(imMessage.appId, APP_ID), eq(imMessage.userId, userId))))[0].n;
    const keptMark = createKeys(suite.cluster.prefix).keptMark(APP_ID, userId);
    const login = async () => {
      const conn = await suite.raw(A);
      conn.send(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(A, userId) });
      return conn;
    };
    try {
      // a push is accepted once queued and kept by a worker a moment later; one kept while the login
      // runs is both replayed and delivered live (clients drop the repeat): log in once all are kept,
      // and the user's kept mark raised (a round trip after a row: a login that reads no mark reads no row)
      await waitFor(async () => (await rows()) === kept && (await db.exists(keptMark)) === 1, 10_000, `all ${kept} pushes kept`);
      const conn = await login();
      await readAndAck(conn);
      await roundTrip(conn, "a HEARTBEAT answer after the last ACKs");
      expect(conn.closed).toBe(false);
      expect(conn.frames.filter((f) => f.code === Code.ERROR)).toEqual([]);
      conn.close();
      await waitFor(async () => (await rows()) === 0, 5000, "the ACKed kept rows to be deleted");
      const again = await login();
      await again.next((f) => f.code === Code.LOGIN, 5000, "the second LOGIN answer");
      await roundTrip(again, "a HEARTBEAT answer after the (empty) replay");
      expect(again.frames.filter((f) => f.code === Code.BIZ)).toEqual([]);
    } finally {
      await database.close();
    }
  };

  test("a login replaying more kept messages than the inbox holds gets their ACKs as it goes: all arrive, the connection stays, none comes back", async () => {
    const kept = 1200;
    await keptReplayAcked(kept, async (conn) => {
      // ACK every delivery as it comes, while the LOGIN that replays them is still being handled
      let acked = 0;
      await waitFor(
        () => {
          const got = conn.frames.filter((f) => f.code === Code.BIZ);
          for (; acked < got.length; acked++) conn.send(Code.ACK, { msgId: got[acked].body.msgId });
          return got.length >= kept || conn.closed;
        },
        30_000,
        `${kept} kept messages`,
      );
      const msgIds = conn.frames.filter((f) => f.code === Code.BIZ).map((f) => BigInt(f.body.msgId));
      expect(msgIds.length).toBe(kept);
      expect(msgIds).toEqual([...msgIds].sort((x, y) => (x < y ? -1 : 1)));
    });
  }, 60_000);

  test("a client that reads a long replay at once and ACKs it in one write (1,200 ACKs read at once) has every ACK counted; the connection stays", async () => {
    const kept = 1200;
    await keptReplayAcked(kept, async (conn) => {
      await waitFor(() => conn.frames.filter((f) => f.code === Code.BIZ).length >= kept || conn.closed, 30_000, `${kept} kept messages`);
      // what a loaded server reads at once from a client that ACKs each delivery as it reads it
      const acks = conn.frames.filter((f) => f.code === Code.BIZ).flatMap((f) => [...frame(Code.ACK, { msgId: f.body.msgId })]);
      conn.write(new Uint8Array(acks));
    });
  }, 60_000);

  test("frames over the rate limit are refused in their turn: the LOGIN answer first, then every answer in order", async () => {
    const userId = newUserId();
    const conn = await suite.raw(A);
    // more BIZ frames than the rate-limit burst (MSG_RATE_BURST, 400 by default), in one write; each
    // is either refused before queueing (invalid data) or rate limited
    const count = 450;
    const bizs = Array.from({ length: count }, (_, i) => [...frame(Code.BIZ, { bizCode: 5556, data: { objectId: "nope" }, clientMsgId: `c-${i}` })]);
    conn.write(new Uint8Array([...frame(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(A, userId) }), ...bizs.flat()]));
    await waitFor(() => conn.frames.length >= count + 1, 5000, `${count + 1} answers (got ${conn.frames.length})`);
    expect(conn.frames[0].code).toBe(Code.LOGIN);
    const answers = conn.frames.slice(1);
    expect(answers.map((f) => f.body.clientMsgId)).toEqual(Array.from({ length: count }, (_, i) => `c-${i}`));
    expect(answers.every((f) => f.code === Code.ERROR && ["invalid_body", "rate_limited"].includes(f.body.error))).toBe(true);
    expect(answers.filter((f) => f.body.error === "rate_limited").length).toBeGreaterThan(0);
    expect(conn.closed).toBe(false);
  });
});

describe("MAX_CONNECTIONS", () => {
  test("a node serves MAX_CONNECTIONS connections and refuses more; refused ones take no place, so once the served ones leave, new ones are served", async () => {
    const cluster = await startInProcessNodes(1, {}, { MAX_CONNECTIONS: "2" });
    const [node] = cluster.nodes;
    const open: RawTcp[] = [];
    const loggedIn = async () => {
      const userId = newUserId();
      const conn = await RawTcp.connect(node.tcp);
      open.push(conn);
      conn.send(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(node, userId) });
      await conn.next((f) => f.code === Code.LOGIN, 3000, `a LOGIN answer with ${open.length - 1} other connection(s) open`);
      return conn;
    };
    try {
      const served = [await loggedIn(), await loggedIn()];
      for (let i = 0; i < 3; i++) {
        const refused = await RawTcp.connect(node.tcp);
        open.push(refused);
        await refused.next(isError("too_many_connections"), 3000, "ERROR too_many_connections");
        await refused.closedWithin(3000);
      }
      for (const conn of served) conn.close();
      await waitFor(async () => (await metricValue(node, 'im_connections{transport="tcp"}')) === 0, 5000, "no TCP connection counted once every client left");
      await loggedIn();
      await loggedIn();
    } finally {
      for (const conn of open) conn.close();
      await cluster.stop();
    }
  }, 30_000);
});

describe("PROXY protocol", () => {
  /** One node with PROXY_PROTOCOL on (the cluster settings have no such field: the node inherits our env). */
  async function proxyNode(loginTimeoutMs: number): Promise<ProcessCluster> {
    const env = { PROXY_PROTOCOL: "1", LOGIN_TIMEOUT_MS: String(loginTimeoutMs) };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      return await startNodeProcesses(1);
    } finally {
      for (const [k, v] of Object.entries(saved)) v === undefined ? delete process.env[k] : (process.env[k] = v);
    }
  }

  test("a socket that never sends its PROXY line is closed after the login timeout; one that does is served; one that sends frames instead is told", async () => {
    const cluster = await proxyNode(300);
    const [node] = cluster.nodes;
    // the token first: the PROXY line must follow the connect within the 300 ms
    const userId = newUserId();
    const login = frame(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(node, userId) });
    const silent = await RawTcp.connect(node.tcp);
    const proxied = await RawTcp.connect(node.tcp);
    const direct = await RawTcp.connect(node.tcp);
    try {
      proxied.write(new Uint8Array([...new TextEncoder().encode("PROXY TCP4 10.1.2.3 10.0.0.1 5555 9000\r\n"), ...login]));
      // a LOGIN is shorter than the longest PROXY line: it must not be taken for the start of one
      direct.write(login);
      await proxied.next((f) => f.code === Code.LOGIN, 3000, "the LOGIN answer after a PROXY line");
      const refused = await direct.next((f) => f.code === Code.ERROR, 3000, "an ERROR for frames without a PROXY line");
      expect(refused.body.error).toBe("bad_frame");
      await direct.closedWithin(2000, "the socket that sent frames without a PROXY line closed");
      await silent.closedWithin(2000, "the socket without a PROXY line closed");
      proxied.keepAlive(200);
      await waitFor(() => proxied.frames.filter((f) => f.code === Code.HEARTBEAT).length >= 3, 3000, "3 HEARTBEAT answers, past the login timeout");
      expect(proxied.closed).toBe(false);
    } finally {
      silent.close();
      proxied.close();
      direct.close();
      await cluster.stop();
    }
  }, 30_000);
});

describe("WebSocket login", () => {
  test("a token upgrade logs in at once; a bad token or another user's gets 401, a malformed parameter 400", async () => {
    const userId = newUserId();
    const token = await imToken(B, userId);
    expect(await upgradeStatus(B.http, `/ws?token=bad&userId=${userId}`)).toBe(401);
    expect(await upgradeStatus(B.http, `/ws?token=${token}&userId=${userId + 1}`)).toBe(401);
    for (const bad of ["roomId=7&roomSeq=abc", "roomId=7&roomSeq=", "roomId=-1", "appId=", "roomId=0x7", "roomId=7.0", "roomId=%207", "roomId=7e0"]) {
      expect(`${bad}: ${await upgradeStatus(B.http, `/ws?token=${token}&userId=${userId}&${bad}`)}`).toBe(`${bad}: 400`);
    }
    const ws = new WebSocket(`${B.ws}?token=${token}&userId=${userId}`);
    try {
      const first = await new Promise<string>((resolve, reject) => {
        ws.onmessage = (ev) => resolve(String(ev.data));
        ws.onclose = () => reject(new Error("closed before the LOGIN answer"));
        setTimeout(() => reject(new Error("no LOGIN answer within 3 s")), 3000);
      });
      expect(JSON.parse(first)).toEqual({ code: Code.LOGIN, body: { appId: APP_ID, userId, data: "true", nodeId: B.nodeId, heartbeatSeconds: suite.cluster.heartbeatMs / 1000 } });
    } finally {
      ws.close();
    }
  });

  test("a text message longer than maxBody plus the envelope is a framing violation: ERROR bad_frame, then close", async () => {
    const userId = newUserId();
    const ws = new WebSocket(`${B.ws}?token=${await imToken(B, userId)}&userId=${userId}`);
    const got: { code: number; body: any }[] = [];
    let closed = false;
    ws.onmessage = (ev) => got.push(JSON.parse(String(ev.data)));
    ws.onclose = () => (closed = true);
    // a HEARTBEAT whose body is `bytes` long ({"pad":""} is 10 bytes)
    const heartbeat = (bytes: number) => JSON.stringify({ code: Code.HEARTBEAT, body: { pad: "x".repeat(bytes - 10) } });
    const { maxBodyBytes } = suite.cluster.settings;
    try {
      await waitFor(() => got.length === 1, 3000, "the LOGIN answer");
      ws.send(heartbeat(maxBodyBytes));
      await waitFor(() => got.length === 2, 3000, "the answer to a body of exactly maxBody");
      ws.send(heartbeat(maxBodyBytes + 1000));
      await waitFor(() => closed, 3000, `the close (got ${JSON.stringify(got)})`);
      expect(got.map((m) => [m.code, m.body.error])).toEqual([[Code.LOGIN, undefined], [Code.HEARTBEAT, undefined], [Code.ERROR, "bad_frame"]]);
    } finally {
      ws.close();
    }
  });

  test("plain /ws with an in-band LOGIN; the server answers in the form the client last used", async () => {
    const userId = newUserId();
    const token = await imToken(B, userId);
    const ws = new WebSocket(B.ws);
    ws.binaryType = "arraybuffer";
    // each answer as [form, code]
    const got: Array<["text" | "binary", number]> = [];
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") got.push(["text", JSON.parse(ev.data).code]);
      else for (const f of scanFrames(new Uint8Array(ev.data as ArrayBuffer), 1 << 20).frames) got.push(["binary", f.code]);
    };
    try {
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      ws.send(JSON.stringify({ code: Code.LOGIN, body: { appId: APP_ID, userId, token } }));
      await waitFor(() => got.length === 1, 3000, "the LOGIN answer");
      ws.send(encodeFrame(Code.HEARTBEAT, "{}"));
      await waitFor(() => got.length === 2, 3000, "the answer to a binary HEARTBEAT");
      ws.send(JSON.stringify({ code: Code.HEARTBEAT, body: {} }));
      await waitFor(() => got.length === 3, 3000, "the answer to a text HEARTBEAT");
      expect(got).toEqual([
        ["text", Code.LOGIN],
        ["binary", Code.HEARTBEAT],
        ["text", Code.HEARTBEAT],
      ]);
    } finally {
      ws.close();
    }
  });

  test("a framing violation's ERROR comes in the form of the message that broke the rules", async () => {
    /** A WebSocket logged in by its upgrade (answers in text until it sends binary); each message as [form, code, error]. */
    const open = async () => {
      const userId = newUserId();
      const ws = new WebSocket(`${B.ws}?token=${await imToken(B, userId)}&userId=${userId}`);
      ws.binaryType = "arraybuffer";
      const got: Array<["text" | "binary", number, string | undefined]> = [];
      let closed = false;
      ws.onmessage = (ev) => {
        if (typeof ev.data === "string") {
          const { code, body } = JSON.parse(ev.data);
          got.push(["text", code, body.error]);
        } else {
          for (const f of scanFrames(new Uint8Array(ev.data as ArrayBuffer), 1 << 20).frames) got.push(["binary", f.code, JSON.parse(new TextDecoder().decode(f.body)).error]);
        }
      };
      ws.onclose = () => (closed = true);
      await waitFor(() => got.length === 1, 3000, "the LOGIN answer");
      return { ws, got, closed: () => closed };
    };
    const binary = await open();
    const badMagic = encodeFrame(Code.HEARTBEAT, "{}");
    badMagic[0] = 0x12;
    binary.ws.send(badMagic);
    await waitFor(binary.closed, 3000, "the close after a binary frame with a bad magic");
    expect(binary.got).toEqual([["text", Code.LOGIN, undefined], ["binary", Code.ERROR, "bad_frame"]]);

    const text = await open();
    text.ws.send(encodeFrame(Code.HEARTBEAT, "{}"));
    await waitFor(() => text.got.length === 2, 3000, "the answer to a binary HEARTBEAT");
    text.ws.send("not json");
    await waitFor(text.closed, 3000, "the close after a text message that is no envelope");
    expect(text.got).toEqual([["text", Code.LOGIN, undefined], ["binary", Code.HEARTBEAT, undefined], ["text", Code.ERROR, "bad_frame"]]);
  });

  test("ImClient logs in over WebSocket in text and in binary form", async () => {
    for (const wsForm of ["text", "binary"] as const) {
      const userId = newUserId();
      const info = await (await clients.make(B, { userId, wsForm })).connect();
      expect(info).toMatchObject({ userId, nodeId: B.nodeId });
    }
  });
});

describe("heartbeat and presence", () => {
  test("a HEARTBEAT is answered and pushes the binding's TTL back up", async () => {
    const { conn, userId } = await suite.rawLogin(A);
    const ttlMs = 2 * suite.cluster.heartbeatMs;
    const key = bindingKey(suite.cluster, userId);
    await waitFor(async () => (await db.pttl(key)) < ttlMs - 400, ttlMs, "the binding TTL to run down");
    conn.send(Code.HEARTBEAT);
    const answer = await conn.next((f) => f.code === Code.HEARTBEAT, 2000, "HEARTBEAT answer");
    expect(answer.body).toEqual({ appId: APP_ID, userId, data: "true" });
    await waitFor(async () => (await db.pttl(key)) > ttlMs - 200, 1000, "the binding TTL refreshed");
  });

  test("HEARTBEATs much faster than the interval are all answered, but refresh the binding at most once a quarter interval", async () => {
    const { conn, userId } = await suite.rawLogin(A);
    const key = bindingKey(suite.cluster, userId);
    const ttlMs = 2 * suite.cluster.heartbeatMs;
    const quarter = suite.cluster.heartbeatMs / 4;
    await waitFor(async () => (await db.pttl(key)) < ttlMs - 200, 1000, "the login's binding TTL to run down 200 ms");
    conn.send(Code.HEARTBEAT);
    await waitFor(async () => (await db.pttl(key)) > ttlMs - 100, 1000, "the binding refreshed by the first HEARTBEAT");
    const refreshedAt = Date.now();
    const afterRefresh = await db.pttl(key);
    for (let i = 0; i < 20; i++) conn.send(Code.HEARTBEAT);
    await waitFor(() => conn.frames.filter((f) => f.code === Code.HEARTBEAT).length === 21, 2000, "21 HEARTBEAT answers");
    const afterBurst = await db.pttl(key);
    // the TTL only ran down: none of the 20 went to Redis (if this machine took less than a quarter
    // interval for them, as any but a stalled one does)
    if (Date.now() - refreshedAt < quarter - 50) expect(afterBurst).toBeLessThanOrEqual(afterRefresh);
    // past a quarter interval, the next one refreshes it again
    await waitFor(async () => (await db.pttl(key)) < ttlMs - quarter - 50, 1000, "a quarter interval since the refresh");
    conn.send(Code.HEARTBEAT);
    await waitFor(async () => (await db.pttl(key)) > ttlMs - 100, 1000, "the binding refreshed again");
  });

  test("a silent connection is closed after 2 heartbeat intervals; a heartbeating client stays online", async () => {
    const steadyId = newUserId();
    const steady = await clients.online(A, { userId: steadyId, transport: "tcp", heartbeatMs: 300 });
    const steadyEvents = record(steady);
    const sentAt = Date.now();
    const { conn } = await suite.rawLogin(A);
    await conn.closedWithin(2 * suite.cluster.heartbeatMs + 2000, "the idle close");
    // PROTOCOL.md: closed after 2 intervals of silence, not before (the LOGIN was its last frame)
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(2 * suite.cluster.heartbeatMs - 100);
    expect(steady.status).toBe("online");
    expect(steadyEvents.reconnecting).toEqual([]);
    // logged in before the silent one, so its binding would have expired by now without heartbeats
    expect(await onlineStatus(suite.cluster, B, steadyId)).toEqual({ online: true, nodeId: A.nodeId });
  });

  test("LOGOUT clears presence at once (not by TTL)", async () => {
    const userId = newUserId();
    const client = await clients.online(A, { userId, transport: "tcp" });
    expect(await db.exists(bindingKey(suite.cluster, userId))).toBe(1);
    await client.logout();
    expect(client.status).toBe("closed");
    await waitFor(async () => (await db.exists(bindingKey(suite.cluster, userId))) === 0, 1000, "the binding removed by LOGOUT");
    expect(await onlineStatus(suite.cluster, B, userId)).toEqual({ online: false });
  });

  test("LOGOUT is answered with appId, userId and data \"true\", then the server closes the connection", async () => {
    const { conn, userId } = await suite.rawLogin(A);
    // beating on: only the LOGOUT can be what closes it, not the idle close
    conn.keepAlive(300);
    conn.send(Code.LOGOUT);
    const answer = await conn.next((f) => f.code === Code.LOGOUT, 3000, "the LOGOUT answer");
    expect(answer.body).toEqual({ appId: APP_ID, userId, data: "true" });
    await conn.closedWithin(3000, "the server's close after the LOGOUT answer");
    expect(conn.frames.at(-1)).toBe(answer);
  });

  test("a login on the other node kicks the older session, which does not come back; online follows", async () => {
    const userId = newUserId();
    const old = await clients.online(A, { userId, transport: "tcp" });
    const oldEvents = record(old);
    const newer = await clients.online(B, { userId });
    await waitFor(() => oldEvents.kicked.length === 1, 3000, "the older session kicked");
    expect(old.status).toBe("closed");
    expect(oldEvents.reconnecting).toEqual([]);
    expect(await onlineStatus(suite.cluster, A, userId)).toEqual({ online: true, nodeId: B.nodeId });
    expect((await newer.sendPrivate(newUserId(), "still here")).msgId).toMatch(/^[1-9][0-9]*$/);
  });

  test("the users of a node killed with SIGKILL are offline within 2 heartbeat intervals, and gone from the heartbeat index", async () => {
    const doomed = await suite.cluster.addNode();
    const userIds = [newUserId(), newUserId()];
    for (const userId of userIds) await clients.online(doomed, { userId, transport: userId === userIds[0] ? "tcp" : "ws", reconnect: false });
    for (const userId of userIds) expect(await onlineStatus(suite.cluster, A, userId)).toEqual({ online: true, nodeId: doomed.nodeId });
    await suite.cluster.kill9(doomed);
    await waitFor(
      async () => (await db.exists(...userIds.map((u) => bindingKey(suite.cluster, u)))) === 0,
      2 * suite.cluster.heartbeatMs + 1000,
      "the killed node's bindings to expire",
    );
    for (const userId of userIds) expect(await onlineStatus(suite.cluster, A, userId)).toEqual({ online: false });
    // nobody unbound them: their heartbeat shards (no one else beats there) must lapse by themselves
    const keys = createKeys(suite.cluster.prefix);
    await waitFor(
      async () => (await Promise.all(userIds.map((u) => db.zscore(keys.heartbeats(APP_ID, u), String(u))))).every((s) => s === null),
      2 * suite.cluster.heartbeatMs + 1000,
      "the killed node's users to leave the heartbeat index",
    );
  });
});

describe("backpressure: clients that stop reading (TCP partial writes, WebSocket)", () => {
  /** Node A's count of reliable deliveries written to (or queued for) its sockets. */
  const reliableDeliveries = () => metricValue(A, 'im_deliveries_total{kind="reliable"}');
  const slowClosed = (transport: string) => metricValue(A, `im_slow_clients_closed_total{transport="${transport}"}`);
  /**
   * Node A's log line for the user's connection closed as a client that does not read. The node logs
   * it before the close, but its logger writes to the file asynchronously: the line may land after
   * the client saw the close, so it is waited for.
   */
  const slowCloseLine = (userId: number) =>
    waitFor(
      () =>
        readFileSync(A.logPath, "utf8")
          .split("\n")
          // the last piece is a line still being written (or "")
          .slice(0, -1)
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l))
          .find((r) => r.userId === userId && r.msg === "client does not read what it is sent: closing it"),
      5000,
      `node A's log line for user ${userId} closed as a client that does not read`,
    );

  /** Push `count` messages of ~50 KB to the user, one request each; resolves to their msgIds. */
  async function pushBig(userId: number, count: number): Promise<string[]> {
    const content = "x".repeat(50_000);
    const msgIds: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = await api(A.http, "POST", "/api/im/push", { bearer: suite.cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6001, data: { i, content } } });
      expect(r.status).toBe(200);
      msgIds.push(r.json.msgId);
    }
    return msgIds;
  }

  test("a client that stops reading gets every frame whole once it reads again", async () => {
    const { conn, userId } = await suite.rawLogin(A);
    conn.keepAlive(300);
    conn.pause();
    const before = await reliableDeliveries();
    // 3 MB: far more than the kernel buffers of a connection whose reader is paused, so the server's
    // writes come up short and it queues the rest; well under the 8 MB it allows a connection
    const pushed = await pushBig(userId, 60);
    await waitFor(async () => (await reliableDeliveries()) - before >= pushed.length, 5000, "all 60 handed to node A's socket");
    conn.resume();
    const got = () => conn.frames.filter((f) => f.code === Code.BIZ && f.body.bizCode === 6001);
    await waitFor(() => new Set(got().map((f) => f.body.msgId)).size >= pushed.length, 10_000, "all 60 pushes at the client");
    // every frame decoded whole (a torn or interleaved write would fail to parse or lose a message)
    for (const f of got()) {
      const data = JSON.parse(f.body.data as string);
      expect(data.content.length).toBe(50_000);
    }
    expect([...new Set(got().map((f) => f.body.msgId))].sort()).toEqual(pushed.slice().sort());
    expect(conn.closed).toBe(false);
  }, 30_000);

  test("a client that never reads is cut once the server holds more than 8 MB for it: logged, counted, gone offline", async () => {
    const { conn, userId } = await suite.rawLogin(A);
    conn.keepAlive(300);
    conn.pause();
    const before = await slowClosed("tcp");
    await pushBig(userId, 200); // 10 MB
    await conn.closedWithin(10_000, "the server to cut the connection it cannot write to");
    // no ERROR can reach it (it would wait behind the 8 MB): the log and /metrics say why it went
    expect(await slowCloseLine(userId)).toMatchObject({ level: 40, transport: "tcp", connId: expect.any(String) });
    expect((await slowClosed("tcp")) - before).toBe(1);
    // cleaned up like any other close
    await waitFor(async () => !(await onlineStatus(suite.cluster, B, userId)).online, 5000, "the cut user to be offline");
  }, 30_000);

  test("a WebSocket client that never reads is closed once Bun holds more than 4 MB for it: logged, counted, gone offline", async () => {
    const userId = newUserId();
    const ws = await PausedWebSocket.open(A.ws, `token=${await imToken(A, userId)}&userId=${userId}`);
    ws.keepAlive(300);
    try {
      await waitFor(async () => (await onlineStatus(suite.cluster, B, userId)).online, 5000, "the WebSocket user online");
      const before = await slowClosed("ws");
      // 50 KB each, until it is closed: 4 MB in Bun, what the kernel buffers hold, and the resends
      for (let i = 0; i < 300 && !ws.closed; i++) await pushBig(userId, 1);
      await ws.closedWithin(10_000, "the server to close the WebSocket it cannot write to");
      expect(await slowCloseLine(userId)).toMatchObject({ level: 40, transport: "ws", connId: expect.any(String) });
      expect((await slowClosed("ws")) - before).toBe(1);
      await waitFor(async () => !(await onlineStatus(suite.cluster, B, userId)).online, 5000, "the closed user to be offline");
    } finally {
      ws.close();
    }
  }, 45_000);
});

