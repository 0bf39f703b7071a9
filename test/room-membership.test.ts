// Room membership when a node dies without a goodbye (SIGKILL): its members are removed by a live
// node once the dead node's registry entry expires, so the online count and watchNum come down.
// Real node processes, Redis and MySQL.
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { createKeys } from "../src/redis/keys";
import { Clients } from "./support/clients";
import { api, connectTestRedis, devJwt, newUserId, roomOnlineCount } from "./support/http-api";
import { startNodeProcesses, type ProcessCluster } from "./support/node-processes";
import { waitFor } from "./support/wait";

let cluster: ProcessCluster;
const clients = new Clients();
const db = connectTestRedis();

beforeAll(async () => {
  cluster = await startNodeProcesses(2);
});

afterEach(() => clients.closeAll());

afterAll(async () => {
  await cluster?.stop();
  db.disconnect();
});

test("a killed node's room members are removed: online count and watchNum drop within a bounded wait, and room messages stop going to it", async () => {
  const [survivor, doomed] = cluster.nodes;
  const keys = createKeys(cluster.prefix);
  const anchorJwt = await devJwt(survivor, newUserId());
  const start = await api(survivor.http, "POST", "/api/living/start", { bearer: anchorJwt, body: { type: 1, roomName: "crash" } });
  expect(start.status).toBe(200);
  const roomId: number = start.json.roomId;
  const watchNum = async () => (await api(survivor.http, "GET", `/api/living/${roomId}`, { bearer: anchorJwt })).json.watchNum;

  await clients.online(survivor, { roomId, transport: "tcp" });
  for (let i = 0; i < 2; i++) await clients.online(doomed, { roomId, transport: "tcp", reconnect: false });
  await waitFor(async () => (await roomOnlineCount(survivor, roomId)) === 3, 5000, "3 members, 2 of them on the doomed node");
  expect(await db.sismember(keys.nodeRooms(doomed.nodeId), String(roomId))).toBe(1);
  expect(await db.sismember(keys.roomNodes(roomId), doomed.nodeId)).toBe(1);

  await cluster.kill9(doomed);
  const killedAt = Date.now();
  // dead after 3 registry periods (1 heartbeat each here), found at a live node's next period
  const boundMs = 3 * cluster.heartbeatMs + 2 * cluster.heartbeatMs + 3000;
  await waitFor(async () => (await roomOnlineCount(survivor, roomId)) === 1, boundMs, "the dead node's 2 members to be removed");
  console.log(`room membership: a killed node's members were removed ${Date.now() - killedAt} ms after SIGKILL`);
  expect(await watchNum()).toBe(1);
  expect(await db.exists(keys.nodeRooms(doomed.nodeId))).toBe(0);
  // room messages no longer go to the dead node's channel
  expect(await db.sismember(keys.roomNodes(roomId), doomed.nodeId)).toBe(0);
  expect(await db.sismember(keys.roomNodes(roomId), survivor.nodeId)).toBe(1);
  expect(await db.zscore(keys.nodes(), doomed.nodeId)).toBeNull();
  expect(await db.zscore(keys.nodes(), survivor.nodeId)).not.toBeNull();
}, 30_000);
