// PushOnce (POST /api/im/push's Idempotency-Key) on a real Redis, where a node cannot be made to
// fail on cue: a push whose acceptance fails frees its key for a repeat, and one still being
// accepted makes a repeat wait instead of accepting it twice. (Accepted once, end to end through
// two nodes: messaging.test.ts, "backend push".)
import { afterAll, expect, test } from "bun:test";
import { createLogger } from "../src/log";
import { PushOnce } from "../src/messaging/push-once";
import { findImError } from "../src/protocol/errors";
import { createKeys } from "../src/redis/keys";
import { APP_ID, connectTestRedis } from "./support/http-api";
import { removeClusterKeys } from "./support/test-cluster";

const redis = connectTestRedis();
const keys = createKeys(`pushonce-test-${process.pid}-${Date.now()}`);
const pushOnce = new PushOnce(redis, keys, createLogger("push-once-test", "silent"));

afterAll(async () => {
  await redis.quit();
  await removeClusterKeys(keys.prefix);
});

const request = { appId: APP_ID, userIds: [1], bizCode: 6001, data: { order: 1 } };

/** The error reason `promise` is refused with. */
async function refusal(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return findImError(err)?.reason ?? String(err);
  }
  throw new Error("expected a refusal");
}

test("a push whose acceptance failed is accepted by a repeat with the same key", async () => {
  const failed = pushOnce.run(APP_ID, "k-fails", request, async () => {
    throw new Error("im-biz unreachable");
  });
  expect(await refusal(failed)).toBe("Error: im-biz unreachable");
  let accepted = 0;
  const repeat = await pushOnce.run(APP_ID, "k-fails", request, async () => ({ accepted: ++accepted, msgId: "7" }));
  expect(repeat).toEqual({ answer: { accepted: 1, msgId: "7" }, replayed: false });
  expect(accepted).toBe(1);
});

test("a repeat while the first is still being accepted is told to wait, then gets the first answer; keys are per app", async () => {
  let finish!: () => void;
  const first = pushOnce.run(APP_ID, "k-slow", request, () => new Promise<{ accepted: number; msgId: string }>((resolve) => (finish = () => resolve({ accepted: 1, msgId: "8" }))));
  const runs: string[] = [];
  const other = { accepted: 1, msgId: "9" };
  expect(await refusal(pushOnce.run(APP_ID, "k-slow", request, async () => (runs.push("repeat"), other)))).toBe("idempotency_conflict");
  expect(await refusal(pushOnce.run(APP_ID, "k-slow", { ...request, bizCode: 6002 }, async () => (runs.push("another"), other)))).toBe("idempotency_key_reused");
  // the same key of another app is another push
  expect(await pushOnce.run(APP_ID + 1, "k-slow", request, async () => (runs.push("other app"), other))).toEqual({ answer: other, replayed: false });
  finish();
  expect(await first).toEqual({ answer: { accepted: 1, msgId: "8" }, replayed: false });
  expect(await pushOnce.run(APP_ID, "k-slow", request, async () => (runs.push("late repeat"), other))).toEqual({ answer: { accepted: 1, msgId: "8" }, replayed: true });
  expect(runs).toEqual(["other app"]);
  expect(await redis.ttl(keys.pushOnce(APP_ID, "k-slow"))).toBeGreaterThan(3000);
});
