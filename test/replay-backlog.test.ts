// A login replays kept messages no faster than the client reads them: a backlog far larger than the
// transport's bound for unread bytes (TCP 8 MiB) reaches a slow reader in full, instead of getting
// its connection cut mid-replay at every login, forever (PROTOCOL.md section 5: kept messages are
// delivered at the next login), and the user stays bound (online) all the while.
import { afterAll, beforeAll, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { Code } from "../src/protocol/codes";
import { api, APP_ID, bindingKey, connectTestRedis, imToken, newUserId, onlineStatus } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { RawTcp } from "./support/raw-tcp";
import { DEFAULT_SETTINGS } from "./support/test-cluster";
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
