// What a connection's last frames get when it ends: a client that half-closes (FIN after its last
// frames), a session kicked by a newer login and a draining node answer every frame received first,
// in order, and then close; after an abrupt close nothing more is handled, so a frame still waiting
// its turn cannot bind the user again. Each message's intake waits 500 ms here (INTAKE_LINGER_MS),
// which holds the answers of BIZ frames back long enough to see these cases apart.
import { describe, expect, test } from "bun:test";
import net from "node:net";
import { Code } from "../src/protocol/codes";
import { FrameDecoder, parseBody } from "../src/protocol/frame";
import { createKeys } from "../src/redis/keys";
import { APP_ID, bindingKey, imToken, metricValue, newUserId, openRoom, roomOnlineCount } from "./support/http-api";
import { InProcessPair } from "./support/in-process-nodes";
import { frame, RawTcp, type ServerFrame } from "./support/raw-tcp";
import type { TestNode } from "./support/test-cluster";
import { waitFor } from "./support/wait";

const LINGER_MS = 500;
let A: TestNode;
let B: TestNode;
const pair = InProcessPair.start({ INTAKE_LINGER_MS: String(LINGER_MS) }, (a, b) => ([A, B] = [a, b]));
const { redis } = pair;

async function rawLogin(node: TestNode, userId = newUserId(), roomId?: number): Promise<RawTcp> {
  return pair.track(await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId), roomId));
}

/** `n` private messages to `to`, each a BIZ frame with clientMsgId c<i>, in one write. */
function bizFrames(to: number, n: number): Uint8Array {
  const frames = Array.from({ length: n }, (_, i) => frame(Code.BIZ, { bizCode: 5556, data: { objectId: to, content: `m${i}` }, clientMsgId: `c${i}` }));
  return new Uint8Array(frames.flatMap((f) => [...f]));
}

/** The node's count of frames received with `code` (/metrics). */
const framesIn = (node: TestNode, code: number) => metricValue(node, `im_frames_in_total{code="${code}"}`);

const contentsOf = (frames: ServerFrame[]) => frames.filter((f) => f.code === Code.BIZ).map((f) => JSON.parse(f.body.data).content as string);
const ackedIds = (frames: ServerFrame[]) => frames.filter((f) => f.code === Code.ACK).map((f) => f.body.clientMsgId as string);

describe("a connection's last frames", () => {
  test("after an abrupt close nothing more is handled: a HEARTBEAT waiting behind a BIZ does not bind the user or put it back in its room", async () => {
    const roomId = await openRoom(A);
    const recipient = await rawLogin(B);
    const userId = newUserId();
    const conn = await rawLogin(A, userId, roomId);
    await waitFor(async () => (await roomOnlineCount(A, roomId)) === 1, 3000, "the user in its room");
    const before = await framesIn(A, Code.HEARTBEAT);
    conn.write(new Uint8Array([...bizFrames(recipientIdOf(recipient), 1), ...frame(Code.HEARTBEAT)]));
    // both read; the HEARTBEAT now waits for the BIZ's answer, which waits for its intake batch
    await waitFor(async () => (await framesIn(A, Code.HEARTBEAT)) > before, 3000, "the node to read the frames");
    conn.reset();
    await recipient.next((f) => f.code === Code.BIZ, 3000, "the message, once its intake batch went out");
    await waitFor(async () => (await roomOnlineCount(A, roomId)) === 0, 3000, "the closed session out of its room");
    // observe past where the waiting HEARTBEAT would have run (right after that batch)
    await Bun.sleep(300);
    expect(await redis.exists(bindingKey(pair.cluster, userId))).toBe(0);
    expect(await roomOnlineCount(A, roomId)).toBe(0);
  });

  test("a client that half-closes after LOGIN, BIZ and LOGOUT gets all three answers, then the close", async () => {
    const userId = newUserId();
    const token = await imToken(A, userId);
    const last = new Uint8Array([...frame(Code.LOGIN, { appId: APP_ID, userId, token }), ...bizFrames(newUserId(), 1), ...frame(Code.LOGOUT)]);
    const got = await new Promise<ServerFrame[]>((resolve, reject) => {
      const at = A.tcp.lastIndexOf(":");
      const socket = net.createConnection({ host: A.tcp.slice(0, at), port: Number(A.tcp.slice(at + 1)), allowHalfOpen: true });
      const decoder = new FrameDecoder(1 << 20);
      const frames: ServerFrame[] = [];
      socket.on("data", (chunk: Buffer) => {
        for (const f of decoder.push(chunk)) {
          const body = parseBody(f.body);
          frames.push({ code: f.code, body: body.ok ? body.value : {}, taken: false });
        }
      });
      socket.on("close", () => resolve(frames));
      socket.on("error", reject);
      socket.on("connect", () => socket.end(last));
      setTimeout(() => reject(new Error(`no close within 5 s; got ${JSON.stringify(frames)}`)), 5000).unref();
    });
    expect(got.map((f) => f.code)).toEqual([Code.LOGIN, Code.ACK, Code.LOGOUT]);
    expect(got[1].body).toMatchObject({ clientMsgId: "c0" });
  });

  test("a session kicked by a newer login gets the ACKs of the messages it sent before, then ERROR kicked", async () => {
    const recipient = await rawLogin(B);
    const userId = newUserId();
    const old = await rawLogin(A, userId);
    const before = await framesIn(A, Code.BIZ);
    old.write(bizFrames(recipientIdOf(recipient), 5));
    await waitFor(async () => (await framesIn(A, Code.BIZ)) >= before + 5, 3000, "the node to read the 5 BIZ frames");
    await rawLogin(B, userId);
    await old.closedWithin(3000, "the kicked session's close");
    expect(ackedIds(old.frames)).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    expect(old.frames[old.frames.length - 1]).toMatchObject({ code: Code.ERROR, body: { error: "kicked" } });
    await waitFor(() => contentsOf(recipient.frames).length === 5, 3000, "the 5 messages at the recipient");
  });

  test("a kicked session's ACKs, sent while the answers it is due still wait, count: what it got is not sent again", async () => {
    const userId = newUserId();
    const old = await rawLogin(A, userId);
    const sender = await rawLogin(B);
    sender.write(bizFrames(userId, 1));
    const delivered = await old.next((f) => f.code === Code.BIZ, 3000, "the message at the older session");
    const before = await framesIn(A, Code.BIZ);
    old.write(bizFrames(newUserId(), 1));
    await waitFor(async () => (await framesIn(A, Code.BIZ)) > before, 3000, "the node to read the BIZ frame");
    // a newer login on the same node kicks the older session before it answers: the older one is
    // ending now, its BIZ answer still due (its intake lingers)
    await rawLogin(A, userId);
    old.send(Code.ACK, { msgId: delivered.body.msgId });
    const pending = createKeys(pair.cluster.prefix).pending(APP_ID, userId);
    await waitFor(async () => (await redis.hexists(pending, delivered.body.msgId)) === 0, 2000, "the ACK to settle the delivery");
    await old.closedWithin(3000, "the kicked session's close");
    expect(ackedIds(old.frames)).toEqual(["c0"]);
  });

  // last: it stops node A
  test("a draining node sends the ACKs of the messages it accepted, then LOGOUT draining: every message delivered was ACKed to its sender", async () => {
    const recipient = await rawLogin(B);
    recipient.keepAlive(300);
    const sender = await rawLogin(A);
    const before = await framesIn(A, Code.BIZ);
    sender.write(bizFrames(recipientIdOf(recipient), 50));
    await waitFor(async () => (await framesIn(A, Code.BIZ)) >= before + 50, 3000, "the node to read the 50 BIZ frames");
    await pair.cluster.nodes[0].running.stop();
    await sender.closedWithin(3000, "the drained session's close");
    expect(ackedIds(sender.frames)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`));
    expect(sender.frames[sender.frames.length - 1]).toMatchObject({ code: Code.LOGOUT, body: { reason: "draining" } });
    await waitFor(() => contentsOf(recipient.frames).length === 50, 5000, "the 50 messages at the recipient");
  });
});

/** The user a raw session logged in as (from its LOGIN answer). */
function recipientIdOf(conn: RawTcp): number {
  const login = conn.frames.find((f) => f.code === Code.LOGIN);
  if (!login) throw new Error("not logged in");
  return login.body.userId;
}
