// The sequencer's Lua on real Redis: msgIds and room seqs handed out together, in entry order, a
// lost msgId sequence restarting above every id handed out before, and no seq for a room message
// whose room closed since its intake check (BizIntake refuses it).
import { afterAll, expect, test } from "bun:test";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { BizIntake } from "../src/messaging/intake";
import { Sequencer } from "../src/messaging/sequencer";
import { findImError } from "../src/protocol/errors";
import { createQueues } from "../src/queues/queues";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { connectTestRedis } from "./support/http-api";
import { removeClusterKeys } from "./support/test-cluster";

const redis = connectTestRedis();
const keys = createKeys(`seqtest${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);

afterAll(async () => {
  await removeClusterKeys(keys.prefix);
  redis.disconnect();
});

test("one call: consecutive msgIds in entry order, each room message its room's next seq", async () => {
  const sequencer = new Sequencer(redis, keys);
  const startUs = Date.now() * 1000;
  const first = await sequencer.reserve([undefined, 5, 6, 5]);
  const ids = first.map((r) => BigInt(r.msgId));
  expect(ids).toEqual(ids.map((_, i) => ids[0] + BigInt(i)));
  // a new sequence starts at the time in µs, far above any small id
  expect(Number(ids[0])).toBeGreaterThanOrEqual(startUs);
  expect(Number(ids[3])).toBeLessThan(Number.MAX_SAFE_INTEGER);
  expect(first.map((r) => r.seq)).toEqual([undefined, 1, 1, 2]);

  const next = await sequencer.reserve([5]);
  expect(BigInt(next[0].msgId)).toBe(ids[3] + 1n);
  expect(next[0].seq).toBe(3);
});

test("a lost msgId sequence restarts above every id handed out before", async () => {
  const sequencer = new Sequencer(redis, keys);
  const [before] = await sequencer.reserve([undefined]);
  await redis.del(keys.msgIdSeq()); // what a Redis that lost its data looks like to the sequencer
  const [after] = await sequencer.reserve([undefined]);
  expect(BigInt(after.msgId)).toBeGreaterThan(BigInt(before.msgId));
});

test("a room message whose room closed after its check is refused, not queued behind the close's notice; the notice and the batch's other messages go on", async () => {
  const log = createLogger("seq-test", "silent");
  const connections = connectRedis(loadConfig({ NODE_ENV: "development" }).redis.url, log);
  const queues = createQueues(connections.bullmq, keys.bullPrefix(), log);
  try {
    const sequencer = new Sequencer(redis, keys);
    const intake = new BizIntake(sequencer, queues, log, 1);
    const roomId = 7;
    const chat = (content: string) => ({ appId: 1, senderId: 3, bizCode: 5555, data: { roomId, content }, ts: Date.now(), roomId });
    expect((await intake.submit(chat("while live"))).seq).toBe(1);
    // the close, as RoomClosing.announce does it: the room cached as not live, then its notice's seq
    await redis.set(keys.livingRoom(roomId), "null", "EX", 10);
    const [notice] = await sequencer.reserve([roomId], { evenIfClosed: true });
    expect(notice.seq).toBe(2);
    // a message whose check saw the room live, reserved only now (it lingered in its intake batch):
    // a seq after the notice's would reach no one, though its sender was told it was accepted
    const late = intake.submit(chat("after the close"));
    const alongside = intake.submit({ appId: 1, senderId: 3, bizCode: 5556, data: { objectId: 4, content: "private" }, ts: Date.now() });
    const refused = await late.then(
      () => "accepted",
      (err: unknown) => findImError(err)?.reason,
    );
    expect(refused).toBe("room_not_live");
    const queued = await alongside;
    // the closed mark (set after the notice, kept a day) refuses it once the cache entry is gone too
    await redis.del(keys.livingRoom(roomId));
    await redis.set(keys.roomClosed(roomId), "1", "EX", 60);
    expect(await sequencer.reserve([roomId])).toEqual([{ msgId: expect.any(String), roomClosed: true }]);
    expect(await redis.get(keys.roomSeq(roomId))).toBe("2");
    const jobs = await queues.biz.getJobs(["wait", "active", "delayed", "prioritized"]);
    const contents = jobs.flatMap((j) => j.data.messages.map((m) => (m.data as { content: string }).content)).sort();
    expect(contents).toEqual(["private", "while live"]);
    expect(jobs.flatMap((j) => j.data.messages.map((m) => m.msgId))).toContain(queued.msgId);
  } finally {
    await queues.close();
    connections.command.disconnect();
    connections.subscriber.disconnect();
    connections.bullmq.disconnect();
  }
});
