// Issue 6: a node that drains (SIGTERM → node.stop()) while reliable messages are in flight loses
// none of them: its clients reconnect to the other node and get every message, by msgId.
import { afterAll, expect, test } from "bun:test";
import { ImClient, nativeConnectors } from "../src/client";
import { BizCode, Code } from "../src/protocol/codes";
import { createKeys } from "../src/redis/keys";
import { APP_ID, connectTestRedis, devJwt, imToken, newUserId, openRoom } from "./support/http-api";
import { RawTcp, upgradeStatus } from "./support/raw-tcp";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { waitFor } from "./support/wait";

let cluster: InProcessCluster | null = null;
const clients: ImClient[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

test("no reliable message is lost when the recipient's node drains mid-stream", async () => {
  cluster = await startInProcessNodes(2);
  const [a, b] = cluster.nodes;
  const senderId = newUserId();
  const recipientId = newUserId();
  const sender = await ImClient.fromConfig(a.http, await devJwt(a, senderId), { transport: "tcp", connectors: nativeConnectors, heartbeatMs: 400 });
  // the recipient asks node B first, and node A once B is gone or draining
  const recipient = await ImClient.fromConfig([b.http, a.http], await devJwt(b, recipientId), {
    transport: "tcp",
    connectors: nativeConnectors,
    heartbeatMs: 400,
    reconnect: { initialMs: 50, maxMs: 500 },
  });
  clients.push(sender, recipient);
  const received = new Map<string, number>();
  const logins: string[] = [];
  recipient.on("private", (d) => received.set(d.msgId, (received.get(d.msgId) ?? 0) + 1));
  recipient.on("login", (l) => logins.push(l.nodeId));
  await sender.connect();
  expect((await recipient.connect()).nodeId).toBe(b.nodeId);

  const total = 200;
  const sent: string[] = [];
  const started = Date.now();
  let drained = 0;
  let stopFailed: unknown = null;
  for (let i = 0; i < total; i++) {
    sent.push((await sender.sendPrivate(recipientId, `m${i}`)).msgId);
    if (i === 60) {
      // drain node B while the rest keeps coming; do not await: messages flow during the drain
      b.running.stop().then(
        () => (drained = Date.now() - started),
        (err: unknown) => (stopFailed = err),
      );
    }
  }
  await waitFor(() => sent.every((id) => received.has(id)), 15_000, `all ${total} messages at the recipient (got ${received.size})`);
  const duplicates = [...received.values()].filter((n) => n > 1).length;
  console.log(
    `drain: ${total} sent, ${received.size} distinct received, ${duplicates} delivered more than once, ` +
      `logins on ${logins.join(" → ")}, node B stopped after ${drained} ms, all delivered after ${Date.now() - started} ms`,
  );
  expect(stopFailed).toBeNull();
  expect(logins[0]).toBe(b.nodeId);
  expect(logins.at(-1)).toBe(a.nodeId);
}, 30_000);

test("during the drain wait (DRAIN_MS) the node is not ready and takes no new connections, but serves the ones it has", async () => {
  const drainMs = 3000;
  const single = await startInProcessNodes(1, {}, { DRAIN_MS: String(drainMs) });
  const [node] = single.nodes;
  const userId = newUserId();
  const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
  try {
    const stopped = node.running.stop();
    await waitFor(async () => (await fetch(`${node.http}/readyz`)).status === 503, 1000, "/readyz 503 once the drain starts");
    // refused at connect, not accepted only to be told ERROR draining: the SDK tries another node at once
    const refused = await RawTcp.connect(node.tcp).then(
      (c) => (c.close(), "accepted"),
      (err: Error) => err.message,
    );
    expect(refused).toContain("ECONNREFUSED");
    expect(await upgradeStatus(node.http, `/ws?token=x&userId=${userId}`)).toBe(503);
    // the test cluster's heartbeat interval is shorter than the wait
    conn.keepAlive(300);
    await conn.next((f) => f.code === Code.HEARTBEAT, 1000, "a HEARTBEAT answered during the drain wait");
    await conn.next((f) => f.code === Code.LOGOUT, drainMs + 3000, "LOGOUT draining at the end of the wait");
    await stopped;
  } finally {
    conn.close();
    await single.stop();
  }
}, 30_000);

test("DRAIN_SPREAD_MS: the clients are told to go one after another, and those not told yet are served meanwhile", async () => {
  const single = await startInProcessNodes(1, {}, { DRAIN_SPREAD_MS: "3000" });
  const [node] = single.nodes;
  const conns: RawTcp[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      const userId = newUserId();
      // no keep-alive: the only HEARTBEAT answer is the one to the frame sent below
      conns.push(await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId)));
    }
    const stopped = node.running.stop();
    const loggedOut = conns.map((c, i) => c.next((f) => f.code === Code.LOGOUT, 8000, `LOGOUT draining at client ${i}`));
    const first = await Promise.race(loggedOut.map((p, i) => p.then(() => i)));
    // told at 5/6 of the spread at the latest (2.5 s after the first): still answered now
    const last = conns.find((_, i) => i !== first)!;
    last.send(Code.HEARTBEAT);
    const answer = await last.next((f) => f.code === Code.HEARTBEAT || f.code === Code.LOGOUT, 2000, "an answer to a HEARTBEAT of a client not told yet");
    expect(answer.code).toBe(Code.HEARTBEAT);
    await Promise.all(loggedOut);
    await stopped;
  } finally {
    for (const c of conns) c.close();
    await single.stop();
  }
}, 30_000);

test("room messages that reach a draining node out of order still reach its members in order, none skipped for their recovery", async () => {
  // a long intake batch keeps the viewer's session open (answers due) while the node drains
  const pair = await startInProcessNodes(2, {}, { INTAKE_LINGER_MS: "800" });
  const [a, b] = pair.nodes;
  const redis = connectTestRedis();
  const keys = createKeys(pair.prefix);
  const probeId = newUserId();
  const probe = await RawTcp.loggedIn(a.tcp, probeId, await imToken(a, probeId));
  const viewerId = newUserId();
  const roomId = await openRoom(a);
  // beating at the server's 1 s, so that the session waiting for its answer is not given up as silent
  const viewer = await ImClient.fromConfig([a.http, b.http], await devJwt(a, viewerId), {
    transport: "tcp",
    connectors: nativeConnectors,
    heartbeatMs: 5000,
    reconnect: { initialMs: 50, maxMs: 500 },
    roomId,
  });
  const seqs: number[] = [];
  const logins: string[] = [];
  viewer.on("room", (d) => seqs.push(d.data.seq));
  viewer.on("login", (l) => logins.push(l.nodeId));
  expect(await viewer.connect()).toMatchObject({ nodeId: a.nodeId, roomSeq: 0 });
  // as a worker's publishToRoom does: into the room's history, and to the node holding the room
  const publish = async (seq: number) => {
    const msg = { msgId: String(9_000_000_000 + seq), appId: APP_ID, bizCode: BizCode.ROOM_CHAT, ts: Date.now(), data: { userId: probeId, roomId, content: `#${seq}` } };
    await redis.zadd(keys.roomLog(roomId), seq, JSON.stringify(msg));
    await redis.publish(keys.nodeChannel(a.nodeId), JSON.stringify({ t: "room", roomId, seq, msg }));
  };
  try {
    const answered = viewer.sendPrivate(probeId, "keeps the session busy");
    // seq 1 is still on its way from a slow worker: 2 waits for it on node A
    await publish(2);
    const stopped = a.running.stop();
    await probe.next((f) => f.code === Code.LOGOUT, 5000, "the probe's LOGOUT draining");
    await publish(3);
    await publish(1);
    await answered;
    await waitFor(() => logins.length === 2, 8000, "the viewer's login on node B");
    expect(logins[1]).toBe(b.nodeId);
    await waitFor(() => seqs.length >= 3, 3000, `room messages 1 to 3 (got ${JSON.stringify(seqs)})`);
    expect(seqs).toEqual([1, 2, 3]);
    await stopped;
  } finally {
    viewer.close();
    probe.close();
    redis.disconnect();
    await pair.stop();
  }
}, 30_000);
