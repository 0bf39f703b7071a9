// Bun's TracingChannel gets Node's hasSubscribers (src/redis/tracing-channel.ts): ioredis then
// traces a command only while someone listens. Real Redis.
import { afterAll, expect, test } from "bun:test";
import dc from "node:diagnostics_channel";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { connectRedis } from "../src/redis/connections";

const redis = connectRedis(loadConfig({ ...process.env, NODE_ENV: "development" }).redis.url, createLogger("tracing-test", "silent"));
afterAll(() => redis.close());

test("ioredis traces commands while a subscriber listens on ioredis:command, and not otherwise", async () => {
  const channel = dc.tracingChannel("ioredis:command") as unknown as { hasSubscribers: boolean } & ReturnType<typeof dc.tracingChannel>;
  expect(channel.hasSubscribers).toBe(false);
  const started: string[] = [];
  const listener = { start: (ctx: unknown) => started.push((ctx as { command: string }).command), end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
  channel.subscribe(listener);
  try {
    expect(channel.hasSubscribers).toBe(true);
    await redis.command.ping();
    // (other commands may show too: the connections' own ready checks)
    expect(started.filter((c) => c === "ping")).toEqual(["ping"]);
  } finally {
    channel.unsubscribe(listener);
  }
  expect(channel.hasSubscribers).toBe(false);
  const before = started.length;
  await redis.command.ping();
  expect(started.length).toBe(before);
});
