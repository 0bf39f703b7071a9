// The kept-message store on real MySQL and Redis: many large kept messages (pushes may carry 64 KB
// each) are written in statements MySQL accepts, and replayed whole, in msgId order; a user's kept
// mark lasts exactly as long as the user's rows.
import { afterAll, expect, test } from "bun:test";
import { count, lt } from "drizzle-orm";
import { imMessage } from "../src/db/schema";
import { loadConfig } from "../src/config";
import { createLogger } from "../src/log";
import { KeptMarks } from "../src/messaging/kept-marks";
import { KeptRetention } from "../src/messaging/kept-retention";
import { KeptStore } from "../src/messaging/kept-store";
import type { ReliableMessage } from "../src/queues/jobs";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { newUserId } from "./support/http-api";
import { dropOwnDatabase, openOwnDatabase, removeClusterKeys } from "./support/test-cluster";

const prefix = `kepttest${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const config = loadConfig({ ...process.env, NODE_ENV: "development" });
const log = createLogger("kepttest", "warn");
const redis = connectRedis(config.redis.url, log);
const { database, url: databaseUrl } = await openOwnDatabase(prefix);
const marks = new KeptMarks(redis.command, createKeys(prefix));
const store = new KeptStore(database.db, marks, log);
const APP = 10001;
const userId = newUserId();

afterAll(async () => {
  await redis.close();
  await database.close();
  await Promise.all([removeClusterKeys(prefix), dropOwnDatabase(databaseUrl)]);
});

test("300 kept messages of 60 KB (18 MB, over MySQL's 16 MB statement limit) are stored and replayed in msgId order", async () => {
  const data = JSON.stringify({ text: "k".repeat(60_000) });
  const messages: ReliableMessage[] = Array.from({ length: 300 }, (_, i) => ({
    appId: APP,
    userId,
    msgId: String(5_000_000 + i),
    bizCode: 6001,
    data,
    ts: i,
    senderId: 0,
  }));
  await store.keep(messages);
  const replayed: string[] = [];
  for await (const page of store.replay(APP, userId)) {
    for (const m of page) {
      expect(m.data.length).toBe(data.length);
      replayed.push(m.msgId);
    }
  }
  expect(replayed).toEqual(messages.map((m) => m.msgId));
}, 30_000);

test("a mark deleted by one replay and raised again by a keep is not deleted by an older replay that read it before", async () => {
  const user = { appId: APP, userId: newUserId() };
  await marks.raise([user]);
  const older = await marks.read(user.appId, user.userId);
  const newer = await marks.read(user.appId, user.userId);
  if (older.kind !== "marked" || newer.kind !== "marked") throw new Error(`expected marks, read ${older.kind} and ${newer.kind}`);
  // the newer replay found nothing and cleared the mark; then a row was kept and the mark raised
  await marks.clear(user.appId, user.userId, newer.version);
  await marks.raise([user]);
  // the older replay, which found nothing either, must not hide the new row
  await marks.clear(user.appId, user.userId, older.version);
  expect((await marks.read(user.appId, user.userId)).kind).toBe("marked");
});

test("the delete of a user's last ACKed kept row drops the user's mark; a delete that leaves rows keeps it", async () => {
  const user = newUserId();
  const kept: ReliableMessage[] = [1, 2].map((i) => ({ appId: APP, userId: user, msgId: String(6_000_000 + i), bizCode: 6001, data: "{}", ts: i, senderId: 0 }));
  await store.keep(kept);
  const mark = createKeys(prefix).keptMark(APP, user);
  await store.forget(kept[0]);
  expect(await redis.command.exists(mark)).toBe(1);
  await store.forget(kept[1]);
  // a mark has no TTL: left for the user's next login to clear, it stayed for good if none came
  expect(await redis.command.exists(mark)).toBe(0);
});

test("the retention sweep drops the marks of the users it left with no rows; a user with a younger row keeps it", async () => {
  const [emptied, left] = [newUserId(), newUserId()];
  const message = (user: number, msgId: number, ts: number): ReliableMessage => ({ appId: APP, userId: user, msgId: String(msgId), bizCode: 6001, data: "{}", ts, senderId: 0 });
  const now = Date.now();
  await store.keep([message(emptied, 7_000_001, now - 3_600_000), message(left, 7_000_002, now - 3_600_000), message(left, 7_000_003, now)]);
  await store.deleteOlderThan(now - 60_000);
  const keys = createKeys(prefix);
  // the retention's users are those who never come back: a mark left for their next login stayed for good
  expect(await redis.command.exists(keys.keptMark(APP, emptied))).toBe(0);
  expect(await redis.command.exists(keys.keptMark(APP, left))).toBe(1);
});

test("a node that stops mid-sweep ends the retention sweep after its current chunk, and stop() waits for it", async () => {
  const user = newUserId();
  const old = Date.now() - 2 * 24 * 3600_000;
  await store.keep(Array.from({ length: 2500 }, (_, i) => ({ appId: APP, userId: user, msgId: String(8_000_000 + i), bizCode: 6001, data: "{}", ts: old, senderId: 0 })));
  const pastRetention = async () => (await database.db.select({ n: count() }).from(imMessage).where(lt(imMessage.ts, Date.now() - 24 * 3600_000)))[0].n;
  const before = await pastRetention();
  const retention = new KeptRetention(store, redis.command, createKeys(`${prefix}-stop`), 1, log);
  retention.start();
  await retention.stop();
  // one chunk of 1,000 went; the rest waits for the next sweep
  expect(before - (await pastRetention())).toBe(1000);
  await removeClusterKeys(`${prefix}-stop`);
});
