// A MySQL that stalls (connections open, nothing answered: a hung server or a blackholed network),
// through a TCP proxy of the test's own between one real node and MariaDB, or that is slow (a
// statement waiting on a lock). Queries fail within
// MYSQL_TIMEOUT_MS as "unavailable", so nothing waits on MySQL for good: readiness says so, HTTP
// answers 503, room chat (Redis only) keeps flowing, a login that needs MySQL is told to retry, and
// everything works again once MySQL answers.
import { afterEach, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import mysql from "mysql2/promise";
import { connectDatabase } from "../src/db/client";
import { livingRoom } from "../src/db/schema";
import { findImError } from "../src/protocol/errors";
import { createLogger } from "../src/log";
import { Code } from "../src/protocol/codes";
import { createKeys } from "../src/redis/keys";
import type { LivingRooms } from "../src/rooms/living-rooms";
import type { RoomMembership } from "../src/rooms/membership";
import { RoomList } from "../src/rooms/room-list";
import { api, APP_ID, connectTestRedis, devJwt, imToken, metricValue, newUserId, openRoom } from "./support/http-api";
import { startInProcessNodes } from "./support/in-process-nodes";
import { MysqlProxy } from "./support/mysql-proxy";
import { RawTcp } from "./support/raw-tcp";
import { dropOwnDatabase, openOwnDatabase, ownDatabaseUrl } from "./support/test-cluster";
import { waitFor } from "./support/wait";

const MYSQL_TIMEOUT_MS = 500;

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** One node whose MySQL is reached through a proxy the test pauses; its database is its own. */
async function nodeBehindProxy(env: Record<string, string> = {}) {
  const proxy = await MysqlProxy.start();
  const directUrl = ownDatabaseUrl(`out${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  // registered first, so run last, and also when the node fails to start: the cluster drops its
  // own database, not this one, which its node made through the proxy
  cleanups.push(async () => {
    await proxy.close();
    await dropOwnDatabase(directUrl);
  });
  const cluster = await startInProcessNodes(1, {}, { DATABASE_URL: proxy.url(directUrl), MYSQL_TIMEOUT_MS: String(MYSQL_TIMEOUT_MS), ...env });
  const conns: RawTcp[] = [];
  cleanups.push(async () => {
    for (const c of conns) c.close();
    proxy.resume();
    await cluster.stop();
  });
  const direct = await mysql.createConnection(directUrl);
  cleanups.push(() => direct.end());
  const redis = connectTestRedis();
  cleanups.push(() => redis.disconnect());
  const keys = createKeys(cluster.prefix);
  const node = cluster.nodes[0];
  return {
    proxy,
    node,
    directUrl,
    async login(userId: number, roomId?: number): Promise<RawTcp> {
      const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId), roomId);
      conn.keepAlive(300);
      conns.push(conn);
      return conn;
    },
    /** The user's kept rows, read past the proxy. */
    async keptRows(userId: number): Promise<number> {
      const [rows] = await direct.query("SELECT COUNT(*) AS n FROM im_message WHERE user_id = ?", [userId]);
      return Number((rows as Array<{ n: number }>)[0].n);
    },
    /** Whether the user's kept mark is raised: a worker raises it once the rows are in, and only then does a login read them. */
    async keptMarked(userId: number): Promise<boolean> {
      return (await redis.exists(keys.keptMark(APP_ID, userId))) === 1;
    },
    push: (userId: number) => api(node.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6001, data: { to: userId } } }),
  };
}

test("while MySQL stalls, /readyz and requests that need MySQL answer 503 unavailable (not hang); all is well once it answers again", async () => {
  const { proxy, node } = await nodeBehindProxy();
  const jwt = await devJwt(node, newUserId());
  expect((await fetch(`${node.http}/readyz`)).status).toBe(200);
  proxy.pause();

  const readyz = await fetch(`${node.http}/readyz`, { signal: AbortSignal.timeout(5000) });
  expect(readyz.status).toBe(503);
  expect((await readyz.json()).checks).toMatchObject({ mysql: false, redis: true });
  const refused = await api(node.http, "POST", "/api/living/start", { bearer: jwt, body: { type: 1 } });
  expect({ status: refused.status, code: refused.json.error?.code }).toEqual({ status: 503, code: "unavailable" });

  proxy.resume();
  await waitFor(async () => (await fetch(`${node.http}/readyz`)).status === 200, 10_000, "/readyz to answer 200 again");
  expect((await api(node.http, "POST", "/api/living/start", { bearer: jwt, body: { type: 1 } })).status).toBe(200);
});

test("room chat keeps flowing while MySQL stalls under pushes waiting to be kept; those are kept once MySQL answers", async () => {
  // each im-biz job keeping a push for an offline user holds a worker slot while it waits on MySQL:
  // as many such jobs (no linger: one push, one job) as slots
  const { proxy, node, login, keptRows, push } = await nodeBehindProxy({ WORKER_CONCURRENCY: "2", INTAKE_LINGER_MS: "0" });
  const roomId = await openRoom(node); // cached as live in Redis: its chat needs no MySQL
  const [alice, bob] = [await login(newUserId(), roomId), await login(newUserId(), roomId)];
  proxy.pause();
  const offline = [newUserId(), newUserId()];
  for (const userId of offline) expect((await push(userId)).status).toBe(200);

  alice.send(Code.BIZ, { bizCode: 5555, data: { roomId, content: "still there?" }, clientMsgId: "c1" });
  await alice.next((f) => f.code === Code.ACK, 5000, "the sender's ACK");
  await bob.next((f) => f.code === Code.BIZ && JSON.parse(f.body.data).content === "still there?", 10_000, "the room message, past the jobs waiting on MySQL");

  proxy.resume();
  for (const userId of offline) await waitFor(async () => (await keptRows(userId)) === 1, 20_000, `the push to offline user ${userId} kept (its job retried)`);
});

test("a login whose replay MySQL does not answer is told to retry (ERROR unavailable) and closed, not answered and left deaf", async () => {
  const { proxy, node, keptRows, keptMarked, push } = await nodeBehindProxy();
  const userId = newUserId();
  expect((await push(userId)).status).toBe(200);
  // the row, then the mark (a round trip later): a login that read no mark would not look at MySQL
  await waitFor(async () => (await keptRows(userId)) === 1 && (await keptMarked(userId)), 10_000, "the push kept for the offline user (its row and its mark)");
  const token = await imToken(node, userId);
  proxy.pause();

  const conn = await RawTcp.connect(node.tcp);
  cleanups.push(() => conn.close());
  conn.send(Code.LOGIN, { appId: APP_ID, userId, token });
  const error = await conn.next((f) => f.code === Code.ERROR, 5000, "an ERROR for the login whose kept messages cannot be read");
  expect(error.body.error).toBe("unavailable");
  await conn.closedWithin(3000);
});

test("an ACKed kept message whose delete MySQL refused is deleted once MySQL lets it, without waiting for a login", async () => {
  const { node, directUrl, login, keptRows, keptMarked, push } = await nodeBehindProxy();
  const userId = newUserId();
  expect((await push(userId)).status).toBe(200);
  await waitFor(async () => (await keptRows(userId)) === 1 && (await keptMarked(userId)), 10_000, "the push kept for the offline user (its row and its mark)");
  const conn = await login(userId);
  const replayed = await conn.next((f) => f.code === Code.BIZ, 5000, "the kept push replayed at login");

  // another transaction holds the row: the node's DELETE waits on the lock past MYSQL_TIMEOUT_MS and
  // is ended on the server too, so it never applies later by itself
  const holder = await mysql.createConnection(directUrl);
  cleanups.push(() => holder.end());
  await holder.query("BEGIN");
  await holder.query("SELECT msg_id FROM im_message WHERE user_id = ? FOR UPDATE", [userId]);
  const mysqlErrors = 'im_backend_errors_total{backend="mysql"}';
  const errorsBefore = await metricValue(node, mysqlErrors);
  conn.send(Code.ACK, { msgId: replayed.body.msgId });
  await waitFor(async () => (await metricValue(node, mysqlErrors)) > errorsBefore, 5000, "the delete of the ACKed row to fail on the lock");
  await holder.query("ROLLBACK");
  expect(await keptRows(userId)).toBe(1);
  // the user stays online and does not log in again: only the node's own new try can delete the row
  await waitFor(async () => (await keptRows(userId)) === 0, 10_000, "the ACKed row deleted once the lock is gone");
});

test("the room list's rebuild starts no new MySQL query while the last one still waits", async () => {
  const redis = connectTestRedis();
  const keys = createKeys(`outlist${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  let queries = 0;
  const stalled = { allOfType: () => (queries++, new Promise<never>(() => {})) } as unknown as LivingRooms;
  const list = new RoomList(redis, keys, stalled, {} as RoomMembership, "n1", createLogger("outlist", "silent"));
  cleanups.push(async () => {
    list.stop();
    await redis.del(keys.livingListLock());
    redis.disconnect();
  });
  list.start();
  await waitFor(() => queries === 1, 3000, "the first rebuild's query");
  // an observation window, not a synchronisation: three more periods (1 s each) pass without a second query
  await Bun.sleep(3500);
  expect(queries).toBe(1);
});

test("a statement past the deadline (a lock wait) ends on the server too; in a transaction it is reported once, and named in the error", async () => {
  const { database: setup, url } = await openOwnDatabase(`outlk${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  await setup.close();
  const errors: unknown[] = [];
  const database = connectDatabase(url, { timeoutMs: MYSQL_TIMEOUT_MS, onError: (err) => errors.push(err) });
  const holder = await mysql.createConnection(url);
  cleanups.push(async () => {
    await holder.end();
    await database.close();
    await dropOwnDatabase(url);
  });
  const [inserted] = await holder.query("INSERT INTO living_room (anchor_id, type, status) VALUES (1, 1, 1)");
  const roomId = (inserted as { insertId: number }).insertId;
  await holder.query("BEGIN");
  await holder.query("SELECT id FROM living_room WHERE id = ? FOR UPDATE", [roomId]);

  const err = await database.db
    .transaction(async (tx) => {
      await tx.select().from(livingRoom).where(eq(livingRoom.id, roomId)).for("update");
    })
    .then(() => null, (e: unknown) => e);
  // whichever ends it first, the server (its max_statement_time) or the client (dropping the
  // connection, whose rollback then fails with the statement's own error): one failure, reported
  // once, "unavailable", naming the statement
  expect(findImError(err)?.reason).toBe("unavailable");
  const messages: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) messages.push(e.message);
  expect(messages.join(" / ")).toContain("for update");
  expect(errors).toHaveLength(1);
  // the server ended the waiting statement as well: nothing of ours is left running there
  const running = async () => {
    const [rows] = await holder.query("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command = 'Query'");
    return Number((rows as Array<{ n: number }>)[0].n);
  };
  await waitFor(async () => (await running()) === 0, 3000, "no statement of the dropped connection left running on the server");
  await holder.query("ROLLBACK");
});
