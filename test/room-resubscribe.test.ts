// A node's pub/sub connection can drop (a Redis restart, a network blip, Redis cutting a subscriber
// that fell behind): room messages published meanwhile never reach it by pub/sub. They are in the
// room's history, and the node reads them from there, so its viewers miss none, also when nothing
// is said in the room afterwards. Two in-process nodes; the test cuts node B's subscriber connection
// again and again while the room talks.
import { expect, test } from "bun:test";
import { Code } from "../src/protocol/codes";
import { imToken, newUserId, openRoom } from "./support/http-api";
import { InProcessPair } from "./support/in-process-nodes";
import { RawTcp } from "./support/raw-tcp";
import type { TestNode } from "./support/test-cluster";
import { waitFor } from "./support/wait";

let A: TestNode;
let B: TestNode;
const pair = InProcessPair.start({}, (a, b) => ([A, B] = [a, b]));
const { redis } = pair;

/** Close `node`'s pub/sub connection from the Redis side (ioredis then reconnects); false if it is not connected now. */
async function cutSubscriber(node: TestNode): Promise<boolean> {
  const list = (await redis.client("LIST")) as string;
  const line = list.split("\n").find((l) => l.includes(` name=live-im:${node.nodeId}:subscriber `));
  const id = line && /\bid=(\d+)/.exec(line)?.[1];
  if (!id) return false;
  await redis.client("KILL", "ID", id);
  return true;
}

const roomSeqs = (conn: RawTcp) => conn.frames.filter((f) => f.code === Code.BIZ).map((f) => JSON.parse(f.body.data).seq as number);

test("room messages published while a node's subscription was down reach its viewers, in order, the last ones too", async () => {
  const roomId = await openRoom(A);
  const senderId = newUserId();
  const viewerId = newUserId();
  const sender = pair.track(await RawTcp.loggedIn(A.tcp, senderId, await imToken(A, senderId), roomId));
  const viewer = pair.track(await RawTcp.loggedIn(B.tcp, viewerId, await imToken(B, viewerId), roomId));
  let sent = 0;
  const say = () => sender.send(Code.BIZ, { bizCode: 5555, clientMsgId: `c${sent}`, data: { roomId, content: `m${sent++}` } });
  say();
  await waitFor(() => roomSeqs(viewer).length === 1, 3000, "the first room message on B");

  // for 600 ms the room talks while B's subscription keeps dropping; then the room is silent
  let cuts = 0;
  const until = Date.now() + 600;
  while (Date.now() < until) {
    if (await cutSubscriber(B)) cuts++;
    say();
    await Bun.sleep(15);
  }
  expect(cuts).toBeGreaterThan(1);
  await waitFor(() => sender.frames.filter((f) => f.code === Code.ACK).length === sent, 5000, `the ${sent} messages accepted`);

  const first = roomSeqs(viewer)[0];
  const all = Array.from({ length: sent }, (_, i) => first + i);
  await waitFor(() => roomSeqs(viewer).length >= sent, 5000, `all ${sent} room messages on B`);
  expect(roomSeqs(viewer)).toEqual(all);
});
