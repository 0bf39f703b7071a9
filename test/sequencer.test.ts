// The sequencer's Lua on real Redis: msgIds and room seqs handed out together, in entry order, and a
// lost msgId sequence restarting above every id handed out before.
import { afterAll, expect, test } from "bun:test";
import { Sequencer } from "../src/messaging/sequencer";
import { createKeys } from "../src/redis/keys";
import { connectTestRedis } from "./support/http-api";

const redis = connectTestRedis();
const keys = createKeys(`seqtest${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`);

afterAll(async () => {
  await redis.del(keys.msgIdSeq(), keys.roomSeq(5), keys.roomSeq(6));
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
