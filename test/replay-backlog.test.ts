// A login replays kept messages no faster than the client reads them: a backlog far larger than the
// transport's bound for unread bytes (TCP 8 MiB) reaches a slow reader in full, instead of getting
// its connection cut mid-replay at every login, forever (PROTOCOL.md section 5: kept messages are
// delivered at the next login), and the user stays bound (online) all the while.
import { afterAll, beforeAll, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { Code } from "../src/protocol/codes";
import { createKeys } from "../src/redis/keys";
import { api, APP_ID, bindingKey, connectTestRedis, imToken, metricValue, newUserId, onlineStatus } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { RawTcp } from "./support/raw-tcp";
import { DEFAULT_SETTINGS, type TestNode } from "./support/test-cluster";
import { waitFor } from "./support/wait";

let cluster: InProcessCluster;
const redis = connectTestRedis();
beforeAll(async () => {
  cluster = await startInProcessNodes(1);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  redis.disconnect();
});

const PUSHES = 300;
const DATA_CHARS = 60_000;

test(`${PUSHES} kept pushes of ${DATA_CHARS / 1000} KB (18 MB) reach a client that stops reading for a while after LOGIN, and are ACKed`, async () => {
  const node = cluster.nodes[0];
  const userId = newUserId();
  for (let i = 0; i < PUSHES; i++) {
    const r = await api(node.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6001, data: { i, text: "p".repeat(DATA_CHARS) } } });
    expect(r.status).toBe(200);
  }
  const db = await mysql.createConnection(cluster.databaseUrl);
  try {
    const kept = async () => ((await db.query("SELECT COUNT(*) AS n FROM im_message WHERE user_id = ?", [userId])) as unknown as [Array<{ n: number }>])[0][0].n;
    await waitFor(async () => (await kept()) === PUSHES, 30_000, `all ${PUSHES} pushes kept for the offline user`);

    const raw = await RawTcp.connect(node.tcp);
    raw.keepAlive(300);
    raw.send(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(node, userId) });
    // a slow reader (a phone's link, a busy UI thread): nothing is read for a while, so what the
    // server writes piles up on its side
    raw.pause();
    // for longer than the binding lives (2 intervals): the replay holds up the HEARTBEATs behind
    // the LOGIN, yet the user stays bound, so online and reachable
    await Bun.sleep(2 * DEFAULT_SETTINGS.heartbeatSeconds * 1000 + 1000);
    expect(await redis.exists(bindingKey(cluster, userId))).toBe(1);
    expect(await onlineStatus(cluster, node, userId)).toMatchObject({ online: true });
    raw.resume();
    const acked = new Set<string>();
    await waitFor(
      () => {
        for (const f of raw.frames) {
          const msgId = f.code === Code.BIZ ? String(f.body.msgId) : "";
          if (msgId && !acked.has(msgId)) {
            acked.add(msgId);
            raw.send(Code.ACK, { msgId });
          }
        }
        if (raw.closed) throw new Error(`the server closed the connection after ${acked.size} of ${PUSHES} deliveries`);
        return acked.size === PUSHES;
      },
      60_000,
      `all ${PUSHES} kept messages delivered on one connection`,
    );
    await waitFor(async () => (await kept()) === 0, 30_000, "every ACKed kept message deleted");
    raw.close();
  } finally {
    await db.end();
  }
}, 180_000);

/**
 * A client that stops reading right after its LOGIN, with 8 MB kept for it (written straight into
 * MySQL, msgIds below any the cluster gives): its login's replay stalls, holding up the frames it
 * sends after the LOGIN and the live deliveries to it. `keepAlive`: it sends a HEARTBEAT every 300 ms.
 */
async function stalledLogin(node: TestNode, keepAlive = true): Promise<{ raw: RawTcp; userId: number }> {
  const userId = newUserId();
  const db = await mysql.createConnection(cluster.databaseUrl);
  try {
    for (let from = 1; from <= 4000; from += 1000) {
      const rows = Array.from({ length: 1000 }, (_, i) => [APP_ID, userId, from + i, 7, 6001, JSON.stringify({ n: from + i, pad: "x".repeat(2000) }), Date.now()]);
      await db.query("INSERT INTO im_message (app_id, user_id, msg_id, sender_id, biz_code, data, ts) VALUES ?", [rows]);
    }
  } finally {
    await db.end();
  }
  await redis.set(createKeys(cluster.prefix).keptMark(APP_ID, userId), "kept-by-test");
  const raw = await RawTcp.connect(node.tcp);
  raw.pause();
  raw.send(Code.LOGIN, { appId: APP_ID, userId, token: await imToken(node, userId) });
  if (keepAlive) raw.keepAlive(300);
  return { raw, userId };
}

test("frames waiting behind a stalled replay are bounded in bytes, not only in count: past 4 MiB, ERROR rate_limited and the close", async () => {
  const node = cluster.nodes[0];
  // nothing sent after the frame that passes the bound: the node then closes with nothing of ours
  // unread, which would reset the connection and take the ERROR not yet read with it
  const { raw } = await stalledLogin(node, false);
  const refusals = 'im_refused_total{reason="rate_limited"}';
  const refusedBefore = await metricValue(node, refusals);
  try {
    // 70 HEARTBEATs of 60 KB (never rate limited, far fewer than the 1,000 frames a connection may
    // have waiting): 4.2 MB parsed in the node's memory for as long as the client likes, the 70th
    // past the bound
    for (let i = 0; i < 70; i++) raw.send(Code.HEARTBEAT, { pad: "h".repeat(60_000) });
    // read only once the node refused them: a client reading again lets the replay go on, and its
    // LOGIN could end before the node has read the HEARTBEATs, which would then wait for nothing
    await waitFor(async () => (await metricValue(node, refusals)) > refusedBefore, 15_000, "the node to refuse the frames waiting behind the stalled replay");
    raw.resume();
    const refused = await raw.next((f) => f.code === Code.ERROR, 15_000, "ERROR for the frames waiting");
    expect(refused.body.error).toBe("rate_limited");
    await raw.closedWithin(5000, "the close after the ERROR");
  } finally {
    raw.close();
  }
}, 60_000);

test("live deliveries held for a stalled replay are bounded (8 MiB): those past it are dropped and resent or kept, none lost", async () => {
  const node = cluster.nodes[0];
  const { raw, userId } = await stalledLogin(node);
  const notHeldBefore = await metricValue(node, "im_deliveries_not_held_total");
  const pushes: string[] = [];
  const received = new Set<string>();
  let second: RawTcp | null = null;
  try {
    // 150 pushes of 60 KB: 9 MB to hold for a client that reads nothing
    for (let i = 0; i < 150; i++) {
      const r = await api(node.http, "POST", "/api/im/push", { bearer: cluster.apiKey, body: { appId: APP_ID, userIds: [userId], bizCode: 6002, data: { i, text: "q".repeat(60_000) } } });
      expect(r.status).toBe(200);
      pushes.push(String(r.json.msgId));
    }
    await waitFor(async () => (await metricValue(node, "im_deliveries_not_held_total")) > notHeldBefore, 5000, "deliveries past the bound dropped, not held");
    // the client reads again and ACKs all it gets; what was dropped comes by a resend, or is kept for
    // the next login once its attempts are used up
    raw.resume();
    const ackAll = (conn: RawTcp) => {
      for (const f of conn.frames) {
        if (f.code !== Code.BIZ || f.taken) continue;
        f.taken = true;
        received.add(String(f.body.msgId));
        conn.send(Code.ACK, { msgId: f.body.msgId });
      }
    };
    const db = await mysql.createConnection(cluster.databaseUrl);
    try {
      const keptPushes = async () => ((await db.query("SELECT msg_id FROM im_message WHERE user_id = ? AND biz_code = 6002", [userId])) as unknown as [Array<{ msg_id: string | number }>])[0].map((r) => String(r.msg_id));
      await waitFor(
        async () => {
          ackAll(raw);
          const kept = new Set(await keptPushes());
          return pushes.every((id) => received.has(id) || kept.has(id));
        },
        60_000,
        "every push received or kept",
      );
    } finally {
      await db.end();
    }
    raw.close();
    second = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
    await waitFor(() => (ackAll(second!), pushes.every((id) => received.has(id))), 30_000, "the kept pushes at the next login");
  } finally {
    raw.close();
    second?.close();
  }
}, 120_000);
