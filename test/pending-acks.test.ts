// ACK tracking on real Redis, MySQL and a real im-ack queue: a pending record only moves from the
// state its check read (an ACK in between wins), a retried check stores the check of the resends an
// earlier try of it made before it failed, and a kept message's ACK that MySQL refuses is noted, so
// no login replays it (or, if it came while a check kept the message, the check's retry deletes the row).
import { afterAll, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { loadConfig } from "../src/config";
import { connectDatabase } from "../src/db/client";
import { createLogger } from "../src/log";
import { KeptMarks } from "../src/messaging/kept-marks";
import { KeptStore } from "../src/messaging/kept-store";
import { PendingAcks } from "../src/messaging/pending-acks";
import { ReliableDelivery } from "../src/messaging/reliable-delivery";
import { bindingValue, Presence } from "../src/presence/presence";
import type { AckCheckJob, ReliableMessage } from "../src/queues/jobs";
import { createQueues } from "../src/queues/queues";
import { connectRedis } from "../src/redis/connections";
import { createKeys } from "../src/redis/keys";
import { RedisBroker } from "../src/router/broker";
import { Router } from "../src/router/router";
import { dropOwnDatabase, openOwnDatabase, removeClusterKeys } from "./support/test-cluster";
import { waitFor } from "./support/wait";

const prefix = `acktest${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const config = loadConfig({ ...process.env, NODE_ENV: "development", KEY_PREFIX: prefix });
const log = createLogger("acktest", "warn");
const redis = connectRedis(config.redis.url, log);
const { database, url: databaseUrl } = await openOwnDatabase(prefix);
const keys = createKeys(prefix);
const queues = createQueues(redis.bullmq, keys.bullPrefix(), log);
const ACK_TIMEOUT_MS = 60_000;
const pending = new PendingAcks(redis.command, keys, queues, ACK_TIMEOUT_MS);
const router = new Router(new Presence(redis.command, keys, "acktest", 2000), new RedisBroker(redis.command, redis.subscriber, keys, log), log);
const store = new KeptStore(database.db, new KeptMarks(redis.command, keys), log);
const reliable = new ReliableDelivery(store, router, pending, 3, log);

afterAll(async () => {
  reliable.stop();
  await queues.close();
  await redis.close();
  await database.close();
  await Promise.all([removeClusterKeys(prefix), dropOwnDatabase(databaseUrl)]);
});

/** A first delivery's record, of a message not kept / kept in MySQL (a login's replay). */
const FIRST = { attempt: 1, kept: false };
const FIRST_KEPT = { attempt: 1, kept: true };

let nextMsgId = 1000;
function message(userId: number): ReliableMessage {
  return { appId: 1, userId, msgId: String(nextMsgId++), bizCode: 5556, data: "{}", ts: Date.now(), senderId: 7 };
}

test("an ACK between a check's read and its resend wins: the record is not moved, so nothing is resent", async () => {
  const m = message(501);
  await pending.record([m], FIRST);
  expect(await pending.states([m])).toEqual([{ attempt: 1, kept: false }]);
  // the recipient ACKs after the check read attempt 1
  expect(await pending.settle(1, 501, m.msgId)).toEqual({ attempt: 1, kept: false });
  expect(await pending.advance([m], { attempt: 1, kept: false }, { attempt: 2, kept: false })).toEqual({ moved: [], gone: [m] });
  expect(await pending.states([m])).toEqual([null]);
});

test("records move only from the state expected; one in another state is neither moved nor gone", async () => {
  const [a, b, c] = [message(502), message(503), message(505)];
  await pending.record([a, b, c], FIRST);
  expect(await pending.advance([a, b], { attempt: 1, kept: false }, { attempt: 2, kept: false })).toEqual({ moved: [a, b], gone: [] });
  // a second check of attempt 1 (a duplicate job) finds them moved on: not gone, so not ACKed
  expect(await pending.advance([a], { attempt: 1, kept: false }, { attempt: 2, kept: false })).toEqual({ moved: [], gone: [] });
  expect(await pending.markKept([a, b], { attempt: 1, kept: false })).toEqual({ moved: [], gone: [] });
  expect(await pending.markKept([a], { attempt: 2, kept: false })).toEqual({ moved: [a], gone: [] });
  // a login's replay took c over (delivery 1 of a kept message) while its last check kept it: the
  // check must not take that for an ACK (and delete the row the replay counts on)
  await pending.record([c], FIRST_KEPT);
  expect(await pending.markKept([c], { attempt: 1, kept: false })).toEqual({ moved: [], gone: [] });
  await pending.settle(1, c.userId, c.msgId);
  expect(await pending.markKept([c], { attempt: 1, kept: false })).toEqual({ moved: [], gone: [c] });
  expect(await pending.states([a, b, c])).toEqual([{ attempt: 0, kept: true }, { attempt: 2, kept: false }, null]);
});

test("a retried check stores the check of a resend its failed try made; a first try does not", async () => {
  const m = message(504);
  // what a failed try of the attempt-1 check left: the record moved to attempt 2, no check stored
  await pending.record([m], FIRST);
  await pending.advance([m], { attempt: 1, kept: false }, { attempt: 2, kept: false });
  const checksOf = async (msgId: string) => {
    const jobs = await queues.ack.getDelayed();
    return jobs.filter((j) => (j.data as AckCheckJob).messages.some((x) => x.msgId === msgId)).map((j) => (j.data as AckCheckJob).attempt);
  };

  await reliable.check({ attempt: 1, messages: [m] }, false);
  expect(await checksOf(m.msgId)).toEqual([]);

  await reliable.check({ attempt: 1, messages: [m] }, true);
  expect(await checksOf(m.msgId)).toEqual([2]);
  // the record was left as it was: the attempt-2 check resends or keeps it
  expect(await pending.states([m])).toEqual([{ attempt: 2, kept: false }]);
});

test("a retried check, the last or an earlier one, still delivers what an earlier try kept to a recipient that logged in again, and only to such a one", async () => {
  // the last check keeps what was never ACKed; an earlier one keeps what it found offline, then
  // looks again for a login that came meanwhile (keepForLater): a try may die or fail in between
  for (const attempt of [3, 1]) {
    const [moved, stayed] = [message(507), message(508)];
    // what a failed try of the check left: both kept, nothing pending ("0k"), the delivery to a new
    // session not yet made
    await pending.record([moved, stayed], FIRST);
    if (attempt > 1) await pending.advance([moved, stayed], FIRST, { attempt, kept: false });
    await pending.markKept([moved, stayed], { attempt, kept: false });
    // delivery `attempt` went to session "old" of each; one recipient has logged in again since
    await redis.command.set(keys.binding(1, moved.userId), bindingValue("acktest-node", "new"));
    await redis.command.set(keys.binding(1, stayed.userId), bindingValue("acktest-node", "old"));
    const job: AckCheckJob = { attempt, messages: [moved, stayed], sessions: ["old", "old"] };
    try {
      // a first try (e.g. a duplicate job) finds nothing due: "0k" is only an earlier try's doing on a retry
      expect({ attempt, outcome: await reliable.check(job, false) }).toEqual({ attempt, outcome: { resent: 0, kept: 0 } });
      expect(await pending.states([moved, stayed])).toEqual([{ attempt: 0, kept: true }, { attempt: 0, kept: true }]);
      expect({ attempt, outcome: await reliable.check(job, true) }).toEqual({ attempt, outcome: { resent: 1, kept: 0 } });
      expect(await pending.states([moved, stayed])).toEqual([{ attempt: 1, kept: true }, { attempt: 0, kept: true }]);
    } finally {
      await redis.command.del(keys.binding(1, moved.userId), keys.binding(1, stayed.userId));
    }
  }
});

test("an ACKed kept message whose row MySQL will not delete is never replayed: the next login's replay skips it and deletes the row", async () => {
  const closed = connectDatabase(databaseUrl, { timeoutMs: 10_000 });
  await closed.close();
  // its error log is expected: kept out of the test output
  const quiet = createLogger("acktest", "fatal");
  const failing = new ReliableDelivery(new KeptStore(closed.db, new KeptMarks(redis.command, keys), quiet), router, pending, 3, quiet);
  const [acked, other] = [message(506), message(506)];
  await store.keep([acked, other]);
  // both replayed at a login (delivery 1, kept); one is ACKed, and the delete of its row fails
  await pending.record([acked, other], FIRST_KEPT);
  await failing.ack(1, acked.userId, acked.msgId);
  expect(await pending.states([acked, other])).toEqual([null, FIRST_KEPT]);

  const replayed: string[] = [];
  const checks: Array<Promise<void>> = [];
  for await (const page of store.replay(1, acked.userId)) {
    const { checked } = await reliable.replay(page, (messages) => replayed.push(...messages.map((m) => m.msgId)));
    checks.push(checked);
  }
  await Promise.all(checks);
  expect(replayed).toEqual([other.msgId]);
  // the replay deleted the ACKed one's row
  await waitFor(async () => {
    const left: string[] = [];
    for await (const page of store.replay(1, acked.userId)) left.push(...page.map((m) => m.msgId));
    return left.length === 1 && left[0] === other.msgId;
  }, 3000, "the ACKed message's row deleted by the replay");
});

test("a login's replay that read a kept row just before the ACK deleted it does not deliver the message", async () => {
  const m = message(510);
  await store.keep([m]);
  // an earlier login replayed it (delivery 1, kept)
  await pending.record([m], FIRST_KEPT);
  // a new login reads the kept rows...
  const pages: ReliableMessage[][] = [];
  for await (const page of store.replay(1, m.userId)) pages.push(page);
  expect(pages.flat().map((r) => r.msgId)).toEqual([m.msgId]);
  // ...the old session's ACK is applied meanwhile, its row deleted (and whatever follows the delete
  // at once is sent to Redis before the login's next command)...
  const forget = store.forget.bind(store);
  let deleted!: () => void;
  const rowDeleted = new Promise<void>((resolve) => (deleted = resolve));
  store.forget = async (key) => {
    await forget(key);
    setTimeout(deleted, 0);
  };
  try {
    await reliable.ack(1, m.userId, m.msgId);
    await rowDeleted;
  } finally {
    store.forget = forget;
  }
  // ...and only then does the login look at what it read: the ACK is still noted
  const replayed: string[] = [];
  for (const page of pages) {
    const { checked } = await reliable.replay(page, (messages) => replayed.push(...messages.map((r) => r.msgId)));
    await checked;
  }
  expect(replayed).toEqual([]);
});

test("an ACK that comes while the last check keeps its message, whose row MySQL then will not delete, has the row deleted by the check's retry", async () => {
  const sql = await mysql.createConnection(databaseUrl);
  const m = message(509);
  const keep = store.keep.bind(store);
  try {
    // delivery 3, the last, was made; its recipient's ACK is late: it lands right after the row is
    // written, and MySQL then refuses deletes for a while
    await pending.record([m], FIRST);
    await pending.advance([m], FIRST, { attempt: 3, kept: false });
    store.keep = async (messages) => {
      await keep(messages);
      await reliable.ack(m.appId, m.userId, m.msgId);
      await sql.query("CREATE TRIGGER im_message_no_delete BEFORE DELETE ON im_message FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'deletes refused'");
    };
    const job: AckCheckJob = { attempt: 3, messages: [m], sessions: ["s1"] };
    const firstRun = await reliable.check(job, false).then(() => "completed", (err: Error) => `${err.message} ${(err.cause as Error | undefined)?.message}`);
    expect(firstRun).toContain("deletes refused");
    store.keep = keep;
    await sql.query("DROP TRIGGER im_message_no_delete");
    // BullMQ retries the job: the row of the ACKed message goes, so no login replays it
    await reliable.check(job, true);
    const replayed: string[] = [];
    for await (const page of store.replay(m.appId, m.userId)) replayed.push(...page.map((r) => r.msgId));
    expect(replayed).toEqual([]);
  } finally {
    store.keep = keep;
    await sql.query("DROP TRIGGER IF EXISTS im_message_no_delete");
    await sql.end();
  }
});
