// The Redis side of ACK tracking (PROTOCOL.md section 5; seed: imAckMap + delayed retry): which
// reliable deliveries await their recipient's ACK, and the delayed im-ack job that checks them.
// One hash per recipient, field msgId → "<attempt>" or "<attempt>k"; the "k" says the message is
// also kept in MySQL, so its ACK must delete it there. Attempt 0 ("0k") is a kept message with no
// delivery scheduled. A kept message's ACK leaves field "a:<msgId>" behind until shortly after its
// row is deleted: a login's replay that read the row, or finds it because MySQL refused the
// delete, still knows the message was ACKed (recordUnlessAcked).
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { Queues } from "../queues/queues";
import type { AckCheckJob, ReliableMessage } from "../queues/jobs";
import { TickBatcher } from "../batching/tick-batcher";
import { answeredOnce, newCallId } from "../redis/answered-once";

/**
 * A pending record outlives any retry schedule by far, and so does an im-biz job's record log: as
 * long as a failed job is kept for an operator to retry (queues.ts, FAILED_JOB_AGE_S). They only
 * guard against leaks.
 */
const PENDING_TTL_MS = 7 * 24 * 3600 * 1000;

export interface PendingState {
  attempt: number;
  kept: boolean;
}

/** A kept message with no delivery pending (see markKept). */
export const KEPT_NONE_PENDING: PendingState = { attempt: 0, kept: true };

type Recipient = Pick<ReliableMessage, "appId" | "userId" | "msgId">;

// One script call per batch, not a command per message: ioredis' per-command work was the largest
// part of a node's CPU on the private-message path.
// KEYS: the recipients' hashes, one per message. ARGV: one msgId per key.

// Returns each field's value before it was removed ("" for none). A kept message's ACK is noted
// ("a:<msgId>") in the same step. ARGV after the msgIds: the hashes' TTL in ms.
const SETTLE = `
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HGET', key, ARGV[i])
  if v then
    redis.call('HDEL', key, ARGV[i])
    if string.sub(v, -1) == 'k' then
      redis.call('HSET', key, 'a:' .. ARGV[i], '1')
      redis.call('PEXPIRE', key, ARGV[#KEYS + 1])
    end
  end
  out[i] = v or ''
end
return out
`;

const SETTLED_A_KEPT_ONE = `function(values)
  for _, v in ipairs(values) do if string.sub(v, -1) == 'k' then return true end end
  return false
end`;

// Returns each field's value ("" for none).
const READ = `
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('HGET', key, ARGV[i]) or ''
end
return out
`;

// ARGV after the msgIds: the value, the hashes' TTL in ms, then what to append to the im-biz job's
// record log, the last key if there is one (see recordedBy).
const WRITE = `
local n = #ARGV - 3
for i = 1, n do
  redis.call('HSET', KEYS[i], ARGV[i], ARGV[n + 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[n + 2])
end
if #KEYS > n then
  redis.call('APPEND', KEYS[n + 1], ARGV[n + 3])
  redis.call('PEXPIRE', KEYS[n + 1], ARGV[n + 2])
end
return n
`;

// A login's replay: each kept message whose ACK is noted ('a:' .. msgId) is left alone, the others
// are recorded. KEYS: the recipients' hashes, one per message. ARGV: one msgId per key, then the
// value and the hashes' TTL in ms. Returns the (1-based) places of the messages left alone.
const RECORD_UNLESS_ACKED = `
local n = #KEYS
local acked = {}
for i, key in ipairs(KEYS) do
  if redis.call('HEXISTS', key, 'a:' .. ARGV[i]) == 1 then
    acked[#acked + 1] = i
  else
    redis.call('HSET', key, ARGV[i], ARGV[n + 1])
    redis.call('PEXPIRE', key, ARGV[n + 2])
  end
end
return acked
`;

// Compare-and-set: each field moves to the new value only if it still holds the expected one (an ACK
// or another delivery may have changed it since it was read). ARGV after the msgIds: expected value,
// new value, the hashes' TTL in ms. Per field: 1 moved, 0 gone (ACKed), 2 holds another value.
const ADVANCE = `
local n = #KEYS
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HGET', key, ARGV[i])
  if v == ARGV[n + 1] then
    redis.call('HSET', key, ARGV[i], ARGV[n + 2])
    redis.call('PEXPIRE', key, ARGV[n + 3])
    out[i] = 1
  elseif v then
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
`;

const MOVED_ONE = `function(outcomes)
  for _, o in ipairs(outcomes) do if o == 1 then return true end end
  return false
end`;

/**
 * Deliveries tracked within this window share one im-ack job, so a delivery's check may fire up to
 * this much before its ACK timeout. An im-ack job costs about a millisecond of node CPU, whatever
 * it holds; 100 ms instead of 20 took the two nodes from 86 to 80 % of a core at 3,000 private
 * msg/s (bench/RESULTS.md, "Hardening"). No delivery waits for it: only its im-biz job's end does.
 */
const CHECK_LINGER_MS = 100;
/**
 * One im-ack job holds deliveries of at most this weight: a job carries each message's data, so a
 * delivery weighs one per 4,096 characters of it. 5,000 small ones, or about 20 M characters.
 */
const CHECK_MAX_WEIGHT = 5000;

interface Check {
  attempt: number;
  message: ReliableMessage;
  /** The session the delivery went to ("" unknown). */
  session: string;
}

export class PendingAcks {
  private readonly scripts: PendingScripts;
  /** ACKs of one tick are settled in one call. */
  private readonly settling: TickBatcher<Recipient, PendingState | null>;
  /** Checks scheduled within CHECK_LINGER_MS share one job per attempt number. */
  private readonly checks: TickBatcher<Check>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly queues: Queues,
    private readonly ackTimeoutMs: number,
  ) {
    // settle and advance answer what they found: a second run (a resend after a reconnect) would
    // find what the first left. That matters for a kept message's ACK (its row must go) and for a
    // record moved (its resend must be made): such an answer is kept for the call
    this.redis.defineCommand("imSettleAcks", { lua: answeredOnce(SETTLE, SETTLED_A_KEPT_ONE) });
    this.redis.defineCommand("imReadAcks", { lua: READ });
    this.redis.defineCommand("imWriteAcks", { lua: WRITE });
    this.redis.defineCommand("imRecordUnlessAcked", { lua: RECORD_UNLESS_ACKED });
    this.redis.defineCommand("imAdvanceAcks", { lua: answeredOnce(ADVANCE, MOVED_ONE) });
    this.scripts = this.redis as unknown as PendingScripts;
    this.settling = new TickBatcher(async (acks) => {
      const values = await this.scripts.imSettleAcks(acks.length + 1, ...this.hashes(acks), this.callKey(), ...acks.map((a) => a.msgId), PENDING_TTL_MS);
      return values.map(parseState);
    });
    this.checks = new TickBatcher(
      async (checks) => {
        const byAttempt = new Map<number, Required<AckCheckJob>>();
        for (const c of checks) {
          let job = byAttempt.get(c.attempt);
          if (!job) byAttempt.set(c.attempt, (job = { attempt: c.attempt, messages: [], sessions: [] }));
          job.messages.push(c.message);
          job.sessions.push(c.session);
        }
        const delay = Math.max(0, this.ackTimeoutMs - CHECK_LINGER_MS);
        await this.queues.ack.addBulk([...byAttempt.values()].map((data) => ({ name: "check", data, opts: { delay } })));
      },
      CHECK_MAX_WEIGHT,
      CHECK_LINGER_MS,
      (c) => checkWeight(c.message),
    );
  }

  /**
   * Record these messages in `state` (a first delivery: attempt 1), whatever was recorded before.
   * Resolves once stored; call it before writing the deliveries, so that an ACK never arrives before
   * its record. `bizJobId`: the im-biz job that makes them; they are logged as its own, in the same
   * step (see recordedBy).
   */
  async record(messages: ReliableMessage[], state: PendingState, bizJobId?: string): Promise<void> {
    if (messages.length === 0) return;
    const keys = this.hashes(messages);
    if (bizJobId !== undefined) keys.push(this.keys.bizJobRecords(bizJobId));
    const logEntry = bizJobId === undefined ? "" : messages.map((m) => `,${recordId(m)}`).join("");
    await this.scripts.imWriteAcks(keys.length, ...keys, ...messages.map((m) => m.msgId), encode(state), PENDING_TTL_MS, logEntry);
  }

  /**
   * The messages (as recordId() names them) an im-biz job recorded in earlier runs: a retry must
   * not deliver them again (ReliableDelivery.resume). The log outlives the retries by far.
   */
  async recordedBy(bizJobId: string): Promise<Set<string>> {
    const log = (await this.redis.get(this.keys.bizJobRecords(bizJobId))) ?? "";
    return new Set(log.split(",").filter((id) => id !== ""));
  }

  /** The job's completion is recorded: its log is of no more use. */
  async forgetJob(bizJobId: string): Promise<void> {
    await this.redis.del(this.keys.bizJobRecords(bizJobId));
  }

  /**
   * Move each message's record from `from` to `to`, but only where it still holds `from`. Resolves
   * to the messages moved and, apart, those whose record is gone (ACKed since it was read); the
   * rest hold another state (a later delivery, e.g. a login's replay, owns them now). Like
   * record(), call it before writing a resend.
   */
  async advance<M extends Recipient>(messages: M[], from: PendingState, to: PendingState): Promise<{ moved: M[]; gone: M[] }> {
    if (messages.length === 0) return { moved: [], gone: [] };
    const keys = [...this.hashes(messages), this.callKey()];
    const out = await this.scripts.imAdvanceAcks(keys.length, ...keys, ...messages.map((m) => m.msgId), encode(from), encode(to), PENDING_TTL_MS);
    return { moved: messages.filter((_, i) => out[i] === 1), gone: messages.filter((_, i) => out[i] === 0) };
  }

  /**
   * Schedule the check of these deliveries, about ackTimeoutMs from now, in an im-ack job shared
   * with the other deliveries of the next few ms. `sessionOf`: the session each delivery went to,
   * where known. Resolves once the job is stored: until then the caller's own job (im-biz or im-ack)
   * must not complete, so a node dying in between loses nothing.
   */
  async scheduleCheck(messages: ReliableMessage[], attempt: number, sessionOf?: Map<ReliableMessage, string>): Promise<void> {
    await this.checks.add(messages.map((message) => ({ attempt, message, session: sessionOf?.get(message) ?? "" })));
  }

  /**
   * Delivered messages now kept in MySQL with no delivery pending (attempt 0, kept): a late ACK
   * still deletes the row. Only where the record still holds `from` (see advance).
   */
  markKept<M extends Recipient>(messages: M[], from: PendingState): Promise<{ moved: M[]; gone: M[] }> {
    return this.advance(messages, from, KEPT_NONE_PENDING);
  }

  /**
   * The recipient ACKed: forget the record. Resolves to what it was (null: none, e.g. a repeat).
   * A kept message's ACK is noted until forgetAcked(), in the same step: from then on a login's
   * replay (recordUnlessAcked) skips it, even if its row is never deleted.
   */
  async settle(appId: number, userId: number, msgId: string): Promise<PendingState | null> {
    const [state] = await this.settling.add([{ appId, userId, msgId }]);
    return state;
  }

  /**
   * A login replays these kept messages: record each in `state` (as record() does), but not those
   * ACKed already, though their rows may still be there (their ACK is noted); resolves to those.
   * One step: the ACK notes are read and the records written in one round trip.
   */
  async recordUnlessAcked<M extends Recipient>(messages: M[], state: PendingState): Promise<{ acked: M[] }> {
    if (messages.length === 0) return { acked: [] };
    const places = await this.scripts.imRecordUnlessAcked(messages.length, ...this.hashes(messages), ...messages.map((m) => m.msgId), encode(state), PENDING_TTL_MS);
    return { acked: places.map((p) => messages[p - 1]) };
  }

  /** An ACKed kept message's row is deleted: its ACK need not be noted any longer. */
  async forgetAcked(message: Recipient): Promise<void> {
    await this.redis.hdel(this.keys.pending(message.appId, message.userId), ackNoteField(message.msgId));
  }

  /** The records of these messages, in order (null: ACKed, or never tracked). */
  async states(messages: Recipient[]): Promise<Array<PendingState | null>> {
    if (messages.length === 0) return [];
    const values = await this.scripts.imReadAcks(messages.length, ...this.hashes(messages), ...messages.map((m) => m.msgId));
    return values.map(parseState);
  }

  private callKey(): string {
    return this.keys.scriptCall(newCallId());
  }

  private hashes(messages: Recipient[]): string[] {
    return messages.map((m) => this.keys.pending(m.appId, m.userId));
  }
}

/** A message's name in an im-biz job's record log: one msgId (a push) goes to many users. */
export function recordId(m: Recipient): string {
  return `${m.appId}:${m.userId}:${m.msgId}`;
}

function checkWeight(message: ReliableMessage): number {
  return Math.max(1, Math.ceil(message.data.length / 4096));
}

function encode(state: PendingState): string {
  return `${state.attempt}${state.kept ? "k" : ""}`;
}

function parseState(value: string): PendingState | null {
  if (value === "") return null;
  return { attempt: Number.parseInt(value, 10), kept: value.endsWith("k") };
}

/** Each takes the number of keys, the keys, then the arguments. */
interface PendingScripts {
  imSettleAcks(...args: Array<string | number>): Promise<string[]>;
  imReadAcks(...args: Array<string | number>): Promise<string[]>;
  imWriteAcks(...args: Array<string | number>): Promise<number>;
  imAdvanceAcks(...args: Array<string | number>): Promise<number[]>;
  imRecordUnlessAcked(...args: Array<string | number>): Promise<number[]>;
}

/** The field that notes a kept message's ACK in its recipient's pending hash (SETTLE writes it as 'a:' .. msgId). */
function ackNoteField(msgId: string): string {
  return `a:${msgId}`;
}
