// KEPT_RETENTION_DAYS: kept messages older than the retention are deleted undelivered, by one node
// an hour; younger ones stay and are delivered at login. Real node processes, Redis and MySQL.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { and, eq } from "drizzle-orm";
import { connectDatabase, type Database } from "../src/db/client";
import { imMessage } from "../src/db/schema";
import { Code } from "../src/protocol/codes";
import { api, APP_ID, imToken, newUserId } from "./support/http-api";
import { startNodeProcesses, type ProcessCluster, type ProcessNode } from "./support/node-processes";
import { RawTcp } from "./support/raw-tcp";
import { waitFor } from "./support/wait";

const DAY_MS = 24 * 3600_000;
let cluster: ProcessCluster;
let A: ProcessNode;
let database: Database;

beforeAll(async () => {
  cluster = await startNodeProcesses(1);
  [A] = cluster.nodes;
  database = connectDatabase(cluster.databaseUrl, { timeoutMs: 10_000 });
});

afterAll(async () => {
  await database.close();
  await cluster.stop();
});

async function pushTo(userId: number, n: number): Promise<string> {
  const r = await api(A.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6001, data: { n } } });
  expect(r.status).toBe(200);
  return r.json.msgId;
}

const keptOf = async (userId: number) =>
  (await database.db.select({ msgId: imMessage.msgId }).from(imMessage).where(and(eq(imMessage.appId, APP_ID), eq(imMessage.userId, userId)))).map((r) => String(r.msgId));

test("a node with KEPT_RETENTION_DAYS=2 deletes the kept messages older than 2 days; a younger one is delivered at login", async () => {
  const userId = newUserId();
  const old = await pushTo(userId, 1);
  const young = await pushTo(userId, 2);
  await waitFor(async () => (await keptOf(userId)).length === 2, 5000, "both pushes kept for the offline user");
  // as if accepted 3 days and 1 day ago
  await database.db.update(imMessage).set({ ts: Date.now() - 3 * DAY_MS }).where(eq(imMessage.msgId, Number(old)));
  await database.db.update(imMessage).set({ ts: Date.now() - 1 * DAY_MS }).where(eq(imMessage.msgId, Number(young)));
  // node A (no retention) left them alone; a node with a retention sweeps as it starts
  expect(await keptOf(userId)).toEqual([old, young]);
  await cluster.addNode({ KEPT_RETENTION_DAYS: "2" });
  await waitFor(async () => (await keptOf(userId)).length === 1, 10_000, "the 3-day-old kept message deleted");
  expect(await keptOf(userId)).toEqual([young]);
  const conn = await RawTcp.loggedIn(A.tcp, userId, await imToken(A, userId));
  try {
    await conn.next((f) => f.code === Code.BIZ && f.body.msgId === young, 3000, "the younger kept message at login");
    expect(conn.frames.filter((f) => f.code === Code.BIZ).map((f) => f.body.msgId)).toEqual([young]);
  } finally {
    conn.close();
  }
});

test("within the hour after a sweep, a node that starts with a retention leaves even old kept messages to the next sweep", async () => {
  const userId = newUserId();
  const old = await pushTo(userId, 1);
  await waitFor(async () => (await keptOf(userId)).length === 1, 5000, "the push kept for the offline user");
  await database.db.update(imMessage).set({ ts: Date.now() - 3 * DAY_MS }).where(eq(imMessage.msgId, Number(old)));
  const late = await cluster.addNode({ KEPT_RETENTION_DAYS: "2", LOG_LEVEL: "debug" });
  await waitFor(() => readFileSync(late.logPath, "utf8").includes("is another node's this hour"), 5000, "the node to find the sweep another node's");
  expect(await keptOf(userId)).toEqual([old]);
});
