// /metrics counts Redis and MySQL errors: the database and Redis connections report every failed
// query or command (in a transaction or a pipeline too) exactly once, and a node serves both series;
// and the other ops routes of one node. Real Redis, MySQL and an in-process node.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { sign } from "hono/jwt";
import { loadConfig } from "../src/config";
import { connectDatabase } from "../src/db/client";
import { createLogger } from "../src/log";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { newClusterIdentity } from "./support/test-cluster";
import { Code } from "../src/protocol/codes";
import { imToken, metricValue, newUserId } from "./support/http-api";
import { RawTcp, upgradeStatus } from "./support/raw-tcp";
import { waitFor } from "./support/wait";

const config = loadConfig();

describe("MySQL errors", () => {
  const errors: unknown[] = [];
  // the MySQL server with no database selected: these queries need none, and the server's shared
  // default database (live_im) may belong to someone else, or not exist
  const serverUrl = new URL(config.db.url);
  serverUrl.pathname = "/";
  const database = connectDatabase(serverUrl.toString(), { timeoutMs: config.db.timeoutMs, onError: (err) => errors.push(err) });
  afterAll(() => database.close());

  test("a failed query is reported once, a good one not at all", async () => {
    await database.db.execute(sql`SELECT 1`);
    expect(errors).toHaveLength(0);
    await expect(database.db.execute(sql`SELECT * FROM no_such_table_for_metrics`)).rejects.toThrow();
    expect(errors).toHaveLength(1);
  });

  test("a failed query inside a transaction is reported once", async () => {
    const before = errors.length;
    await expect(database.db.transaction((tx) => tx.execute(sql`SELECT * FROM no_such_table_for_metrics`))).rejects.toThrow();
    expect(errors.length - before).toBe(1);
  });
});

describe("Redis errors", () => {
  const errors: unknown[] = [];
  const redis = connectRedis(config.redis.url, createLogger("metrics-test", "silent"), { onError: (err) => errors.push(err) });
  const key = createKeys(newClusterIdentity().prefix).msgIdSeq();
  afterAll(async () => {
    await redis.command.del(key);
    await redis.close();
  });

  test("a refused command is reported once, a good one not at all", async () => {
    await redis.command.set(key, "1", "PX", 60_000);
    expect(errors).toHaveLength(0);
    await expect(redis.command.hget(key, "field")).rejects.toThrow("WRONGTYPE");
    expect(errors).toHaveLength(1);
  });

  test("a refused command in a pipeline is reported once", async () => {
    const before = errors.length;
    const results = await redis.command.pipeline().get(key).hget(key, "field").exec();
    expect(results?.[1][0]).toBeInstanceOf(Error);
    expect(errors.length - before).toBe(1);
  });
});

describe("ops routes: /healthz, /metrics, the API key", () => {
  let cluster: InProcessCluster;
  beforeAll(async () => {
    cluster = await startInProcessNodes(1);
  });
  afterAll(() => cluster.stop());

  test("/healthz names the node; a server route refuses a missing or wrong API key with 401", async () => {
    const [node] = cluster.nodes;
    expect(await (await fetch(`${node.http}/healthz`)).json()).toEqual({ ok: true, nodeId: node.nodeId });
    const refused: Array<Record<string, string>> = [{}, { authorization: "Bearer not-the-key" }, { authorization: `Bearer ${cluster.apiKey}x` }];
    for (const headers of refused) {
      const res = await fetch(`${node.http}/api/im/online?userId=1&appId=10001`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: "unauthorized" } });
    }
    const ok = await fetch(`${node.http}/api/im/online?userId=1&appId=10001`, { headers: { authorization: `Bearer ${cluster.apiKey}` } });
    expect(await ok.json()).toEqual({ online: false });
  });

  test("a node without the http role (ROLES) serves the ops routes, not the API, Bull Board or the page", async () => {
    const gatewayOnly = await startInProcessNodes(1, {}, { ROLES: "gateway,workers" });
    try {
      const { http } = gatewayOnly.nodes[0];
      expect((await fetch(`${http}/healthz`)).status).toBe(200);
      expect((await fetch(`${http}/metrics`)).status).toBe(200);
      for (const path of ["/api/living/list?type=1", "/admin/queues", "/"]) expect({ path, status: (await fetch(`${http}${path}`)).status }).toEqual({ path, status: 404 });
      for (const path of ["/api/dev/login", "/api/im/config", "/api/im/push"]) {
        const res = await fetch(`${http}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: 1 }) });
        expect({ path, status: res.status }).toEqual({ path, status: 404 });
      }
      expect((await fetch(`${http}/api/im/online?userId=1`)).status).toBe(404);
    } finally {
      await gatewayOnly.stop();
    }
  });

  test("a node in production has no dev login (404): a user JWT comes from the business backend only", async () => {
    const identity = newClusterIdentity();
    const production = await startInProcessNodes(1, {}, { NODE_ENV: "production", IM_JWT_SECRET: identity.jwtSecret, IM_API_KEY: identity.apiKey });
    try {
      const { http } = production.nodes[0];
      const res = await fetch(`${http}/api/dev/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId: 1 }) });
      expect(res.status).toBe(404);
      // the rest of the user API is there, for a JWT the backend signed with IM_JWT_SECRET
      const jwt = await sign({ sub: "42", exp: Math.floor(Date.now() / 1000) + 60 }, identity.jwtSecret, "HS256");
      const config = await fetch(`${http}/api/im/config`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${jwt}` }, body: "{}" });
      expect(config.status).toBe(200);
    } finally {
      await production.stop();
    }
  });

  const count = (series: string) => metricValue(cluster.nodes[0], series);

  test("counts frames in and out by code, and unknown codes under one label", async () => {
    const [node] = cluster.nodes;
    const userId = newUserId();
    const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
    try {
      const before = { in: await count('im_frames_in_total{code="1004"}'), out: await count('im_frames_out_total{code="1004"}'), other: await count('im_frames_in_total{code="other"}') };
      for (let i = 0; i < 3; i++) conn.send(Code.HEARTBEAT);
      conn.send(4242);
      await waitFor(() => conn.frames.filter((f) => f.code === Code.HEARTBEAT).length === 3 && conn.frames.some((f) => f.code === Code.ERROR), 3000, "3 HEARTBEAT answers and the ERROR");
      await waitFor(async () => (await count('im_frames_in_total{code="1004"}')) - before.in === 3, 2000, "3 HEARTBEATs counted in");
      expect((await count('im_frames_out_total{code="1004"}')) - before.out).toBe(3);
      expect((await count('im_frames_in_total{code="other"}')) - before.other).toBe(1);
    } finally {
      conn.close();
    }
  });

  test("counts a message kept for an offline user, its replay at that user's login, and a refused WebSocket upgrade", async () => {
    const [node] = cluster.nodes;
    const series = { kept: "im_kept_offline_total", reliable: 'im_deliveries_total{kind="reliable"}', unauthorized: 'im_refused_total{reason="unauthorized"}' };
    const before = { kept: await count(series.kept), reliable: await count(series.reliable), unauthorized: await count(series.unauthorized) };
    const senderId = newUserId();
    const offlineId = newUserId();
    const sender = await RawTcp.loggedIn(node.tcp, senderId, await imToken(node, senderId));
    try {
      sender.send(Code.BIZ, { bizCode: 5556, clientMsgId: "to-offline", data: { objectId: offlineId, content: "kept" } });
      const { body } = await sender.next((f) => f.code === Code.ACK && f.body.clientMsgId === "to-offline", 3000, "the sender's ACK");
      await waitFor(async () => (await count(series.kept)) - before.kept === 1, 3000, "the kept message counted");
      const back = await RawTcp.loggedIn(node.tcp, offlineId, await imToken(node, offlineId));
      try {
        await back.next((f) => f.code === Code.BIZ && f.body.msgId === body.msgId, 3000, "the kept message at login");
        // ACKed, so that no resend after the ACK timeout counts instead of the replay
        back.send(Code.ACK, { msgId: body.msgId });
        await waitFor(async () => (await count(series.reliable)) - before.reliable === 1, 2000, "the replay counted as a reliable delivery");
      } finally {
        back.close();
      }
    } finally {
      sender.close();
    }
    expect(await upgradeStatus(node.http, `/ws?token=not-a-token&userId=${senderId}`)).toBe(401);
    expect((await count(series.unauthorized)) - before.unauthorized).toBe(1);
  });

  test("has both backend error series from the start", async () => {
    const text = await (await fetch(`${cluster.nodes[0].http}/metrics`)).text();
    expect(text).toMatch(/^im_backend_errors_total\{backend="redis"\} \d+$/m);
    expect(text).toMatch(/^im_backend_errors_total\{backend="mysql"\} \d+$/m);
  });

  test("samples the event-loop lag into a histogram, every 100 ms", async () => {
    const samples = async () => {
      const text = await (await fetch(`${cluster.nodes[0].http}/metrics`)).text();
      const m = /^im_event_loop_lag_seconds_count (\d+)$/m.exec(text);
      if (!m) throw new Error("no im_event_loop_lag_seconds_count in /metrics");
      return Number(m[1]);
    };
    const first = await samples();
    await waitFor(async () => (await samples()) >= first + 2, 2000, "two more lag samples");
  });
});
