// Room membership when a node dies without a goodbye (SIGKILL): its members are removed by a live
// node once the dead node's registry entry expires, so the online count and watchNum come down. A
// node that only stalled that long puts its members back when it resumes. Liveness is timed by
// Redis's clock, so a node whose clock runs ahead takes no one for dead.
// Real node processes, Redis and MySQL.
import { afterAll, afterEach, beforeAll, expect, setSystemTime, test } from "bun:test";
import type Redis from "ioredis";
import { createLogger } from "../src/log";
import { NodeRegistry } from "../src/presence/node-registry";
import { bindingValue, Presence } from "../src/presence/presence";
import type { PresenceEvent } from "../src/queues/jobs";
import { createKeys, HEARTBEAT_SHARDS, type Keys } from "../src/redis/keys";
import { RoomMembership } from "../src/rooms/membership";
import { Clients } from "./support/clients";
import { Code } from "../src/protocol/codes";
import { api, APP_ID, connectTestRedis, devJwt, imToken, newUserId, openRoom, roomOnlineCount } from "./support/http-api";
import { RawTcp } from "./support/raw-tcp";
import { startNodeProcesses, type ProcessCluster } from "./support/node-processes";
import { removeClusterKeys } from "./support/test-cluster";
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
  // the cleanup goes on a round trip at a time after the members (the node's room list, its place in
  // the rooms' node sets, then its registry entry, dropped only once all the rest is done)
  await waitFor(async () => (await db.zscore(keys.nodes(), doomed.nodeId)) === null, 5000, "the cleanup to finish: the dead node's registry entry dropped");
  expect(await db.exists(keys.nodeRooms(doomed.nodeId))).toBe(0);
  // room messages no longer go to the dead node's channel
  expect(await db.sismember(keys.roomNodes(roomId), doomed.nodeId)).toBe(0);
  expect(await db.sismember(keys.roomNodes(roomId), survivor.nodeId)).toBe(1);
  expect(await db.zscore(keys.nodes(), survivor.nodeId)).not.toBeNull();
}, 30_000);

/**
 * A RoomMembership under a key prefix of its own (deleted afterwards), and an online event of
 * session "s1" of a new user on node "node-x", for room 7.
 */
async function withMembership(name: string, run: (scratch: { membership: RoomMembership; redis: Redis; keys: Keys; event: PresenceEvent }) => Promise<void>): Promise<void> {
  const prefix = `${cluster.prefix}-${name}`;
  const keys = createKeys(prefix);
  const redis = connectTestRedis();
  const event = { appId: APP_ID, userId: newUserId(), roomId: 7, sessionId: "s1", nodeId: "node-x", time: Date.now() };
  try {
    await run({ membership: new RoomMembership(redis, keys), redis, keys, event });
  } finally {
    redis.disconnect();
    await removeClusterKeys(prefix);
  }
}

/**
 * The registries of "node-x" and of a live "node-s": node-x registered, its session (the event's)
 * bound, then node-x went silent (its binding lives 2 heartbeats, but its registry entry is older
 * than 3 periods): a live node's reapDead() takes it for dead.
 */
async function silentNode(redis: Redis, keys: Keys, event: PresenceEvent): Promise<{ nodeX: NodeRegistry; survivor: NodeRegistry }> {
  const log = createLogger("membership-test", "silent");
  const registry = (nodeId: string) => new NodeRegistry(redis, keys, log, 1000, () => ({ nodeId, region: "test", wsUrl: "", tcpAddress: "", connections: 0, accepting: true }));
  const nodeX = registry("node-x");
  await nodeX.refresh();
  await redis.set(keys.binding(APP_ID, event.userId), bindingValue("node-x", event.sessionId));
  await redis.zadd(keys.nodes(), Date.now() - 10_000, "node-x");
  return { nodeX, survivor: registry("node-s") };
}

test("an online event handled after its session is gone adds no member (the two queues do not keep order)", () =>
  withMembership("join", async ({ membership, redis, keys, event }) => {
    // the session's binding is gone (logged out, or its offline event was handled first)
    expect(await membership.online(event)).toBe(false);
    expect(await membership.count(7)).toBe(0);
    // a newer session holds the binding: the old session's late online event still adds nothing
    await redis.set(keys.binding(APP_ID, event.userId), bindingValue("node-x", "s2"));
    expect(await membership.online(event)).toBe(false);
    // its own binding: it joins
    expect(await membership.online({ ...event, sessionId: "s2" })).toBe(true);
    expect(await membership.count(7)).toBe(1);
    expect(await redis.sismember(keys.nodeRooms("node-x"), "7")).toBe(1);
  }));

test("an online event of a node taken for dead adds no member once the cleanup after it began (nothing would remove it), but does once the node refreshes again", () =>
  withMembership("reaped", async ({ membership, redis, keys, event }) => {
    const { nodeX, survivor } = await silentNode(redis, keys, event);
    survivor.onNodeDead(async (deadNodeId) => void (await membership.removeNode(deadNodeId)));
    await survivor.reapDead();
    expect(await redis.zscore(keys.nodes(), "node-x")).toBeNull();
    // the session's online event, late in its queue, comes only now
    expect(await membership.online(event)).toBe(false);
    expect(await membership.count(7)).toBe(0);
    expect(await redis.exists(keys.nodeRooms("node-x"))).toBe(0);
    // node-x was only stalled: once it refreshes, it is alive again and takes members
    await nodeX.refresh();
    expect(await membership.online(event)).toBe(true);
    expect(await membership.count(7)).toBe(1);
  }));

test("a node whose cleanup failed midway (it was only stalled) restores its members at its next refresh, as after a whole one", () =>
  withMembership("reap-failed", async ({ membership, redis, keys, event }) => {
    const { nodeX, survivor } = await silentNode(redis, keys, event);
    let restored = 0;
    nodeX.onRevived(async () => void restored++);
    survivor.onNodeDead(async () => {
      throw new Error("Redis timed out midway");
    });
    await survivor.reapDead();
    // the failed cleanup holds its lock until it is tried again: node-x takes no members meanwhile
    expect(await membership.online(event)).toBe(false);
    await nodeX.refresh();
    expect(restored).toBe(1);
    expect(await membership.online(event)).toBe(true);
  }));

test("a node that stalls past the registry's limit is cleaned up after, then restores its room and member when it resumes", async () => {
  // registry period min(3 s, heartbeat) = 3 s: taken for dead 9–12 s after its last refresh (and
  // cleaned up by the live node's next look, up to 3 s later), while its connections stay: they
  // idle out after 2 heartbeats = 30 s, well after the resume even on a slow machine
  const stalling = await startNodeProcesses(2, { heartbeatSeconds: 15 });
  const keys = createKeys(stalling.prefix);
  let viewer: RawTcp | null = null;
  try {
    const [live, frozen] = stalling.nodes;
    const roomId = await openRoom(live);
    const viewerId = newUserId();
    viewer = await RawTcp.connect(frozen.tcp);
    viewer.send(Code.LOGIN, { appId: APP_ID, userId: viewerId, token: await imToken(frozen, viewerId), roomId });
    await viewer.next((f) => f.code === Code.LOGIN, 5000, "the viewer's LOGIN answer");
    await waitFor(async () => (await roomOnlineCount(live, roomId)) === 1, 5000, "the viewer on the node about to stall to be a member");

    stalling.pause(frozen, true);
    const pausedAt = Date.now();
    try {
      // the cleanup removes the node's members, then its rooms' entries: one round trip each
      await waitFor(
        async () => (await roomOnlineCount(live, roomId)) === 0 && (await db.sismember(keys.roomNodes(roomId), frozen.nodeId)) === 0,
        20_000,
        "the live node to clean up after the stalled one (its member and its room entry)",
      );
    } finally {
      stalling.pause(frozen, false);
    }
    console.log(`room membership: the stalled node was cleaned up after ${Date.now() - pausedAt} ms`);
    viewer.send(Code.HEARTBEAT);

    await waitFor(async () => (await roomOnlineCount(live, roomId)) === 1, 8000, "the resumed node to put its member back");
    expect(await db.sismember(keys.roomNodes(roomId), frozen.nodeId)).toBe(1);
    // and room messages reach its viewer again
    const sender = await clients.online(live, { roomId, transport: "tcp" });
    await sender.sendRoom("after the stall");
    const got = await viewer.next((f) => f.code === Code.BIZ && f.body.bizCode === 5555, 5000, "the room message at the resumed node's viewer");
    expect(JSON.parse(got.body.data).content).toBe("after the stall");
  } finally {
    viewer?.close();
    await stalling.stop();
  }
}, 60_000);

test("an online event handled after its room closed adds no member (the close cleared the room; nothing would remove it later)", () =>
  withMembership("closed", async ({ membership, redis, keys, event: inRoom7 }) => {
    const event = { ...inRoom7, roomId: 8 };
    await redis.set(keys.binding(APP_ID, event.userId), bindingValue("node-x", "s1"));
    await membership.closeRoom(8);
    expect(await membership.online(event)).toBe(false);
    expect(await membership.count(8)).toBe(0);
    // another room still takes the same session
    expect(await membership.online({ ...event, roomId: 9 })).toBe(true);
  }));

test("users of two apps with the same userId are two members of a room", async () => {
  const keys = createKeys(`${cluster.prefix}-apps`);
  const redis = connectTestRedis();
  const userId = newUserId();
  const [appA, appB] = [APP_ID, APP_ID + 1];
  const event = (appId: number) => ({ appId, userId, roomId: 8, sessionId: `s-${appId}`, nodeId: "node-y", time: Date.now() });
  try {
    const membership = new RoomMembership(redis, keys);
    for (const appId of [appA, appB]) await redis.set(keys.binding(appId, userId), bindingValue("node-y", `s-${appId}`));
    expect(await membership.online(event(appA))).toBe(true);
    expect(await membership.online(event(appB))).toBe(true);
    expect(await membership.count(8)).toBe(2);
    await membership.offline(event(appA));
    expect(await membership.count(8)).toBe(1);
  } finally {
    await redis.del(keys.binding(appA, userId), keys.binding(appB, userId), keys.roomMembers(8), keys.nodeRooms("node-y"));
    redis.disconnect();
  }
});

test("liveness is timed by Redis's clock: a node whose own clock runs a minute ahead takes no live node for dead, and sees them live", () =>
  withMembership("skew", async ({ redis, keys }) => {
    const log = createLogger("membership-test", "silent");
    const registry = (nodeId: string) => new NodeRegistry(redis, keys, log, 1000, () => ({ nodeId, region: "test", wsUrl: "", tcpAddress: "", connections: 0, accepting: true }));
    const live = registry("node-live");
    await live.refresh();
    const ahead = registry("node-ahead");
    const reaped: string[] = [];
    ahead.onNodeDead(async (nodeId) => void reaped.push(nodeId));
    setSystemTime(new Date(Date.now() + 60_000));
    try {
      await ahead.refresh();
      await ahead.reapDead();
      expect((await ahead.live()).map((n) => n.nodeId).sort()).toEqual(["node-ahead", "node-live"]);
    } finally {
      setSystemTime();
    }
    expect(reaped).toEqual([]);
    expect(await redis.zscore(keys.nodes(), "node-live")).not.toBeNull();
    // and the node that runs ahead is live to the others
    expect((await live.live()).map((n) => n.nodeId).sort()).toEqual(["node-ahead", "node-live"]);
  }));

test("heartbeat scores are Redis's clock too: a node whose clock runs a minute ahead drops no other user's beat from the shard", () =>
  withMembership("skew-hb", async ({ redis, keys }) => {
    const presence = new Presence(redis, keys, "node-x", 10_000);
    const early = newUserId();
    const sameShard = early + HEARTBEAT_SHARDS;
    await presence.bind(APP_ID, early, "c1");
    setSystemTime(new Date(Date.now() + 60_000));
    try {
      await presence.bind(APP_ID, sameShard, "c2");
      expect(await presence.refresh(APP_ID, sameShard, "c2")).toBe("refreshed");
    } finally {
      setSystemTime();
    }
    expect(await redis.zscore(keys.heartbeats(APP_ID, early), String(early))).not.toBeNull();
  }));
