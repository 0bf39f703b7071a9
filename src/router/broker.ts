// The Broker: the only place gateway, messaging and rooms code reaches Redis pub/sub.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { Logger } from "../log";
import type { NodeMessage, RoomMessage } from "./node-message";

export interface RoomLogEntry {
  seq: number;
  msg: RoomMessage;
}

export interface Broker {
  /**
   * Publish one message on a node's channel. At most once: a node that is not subscribed (a dead
   * one) never sees it. Messages from one publisher to one node arrive in publish order.
   */
  publishToNode(nodeId: string, msg: NodeMessage): Promise<void>;
  /**
   * Append room messages (seq given at intake) to the room's recent history and publish each to
   * every node that holds the room, in one atomic step: history and live fan-out never disagree,
   * and every node sees this call's messages in the given order. A message still in the history
   * (a repeat, e.g. from a retried job) is not published again. Calls from different workers may
   * reach a node out of seq order; the receiving node puts them back in order.
   */
  publishToRoom(roomId: number, entries: RoomLogEntry[]): Promise<void>;
  /** Subscribe to this node's own channel; resolves once the subscription is active. */
  subscribe(nodeId: string): Promise<void>;
  /** The handler for every message on this node's channel (one handler; a later call replaces it). */
  onMessage(handler: (msg: NodeMessage) => void): void;
  /**
   * The handler called each time the subscription is active again after its connection dropped:
   * what was published on the channel meanwhile was not seen and will not come (one handler).
   */
  onResubscribed(handler: () => void): void;
  /** Unsubscribe. Messages published afterwards are not seen. */
  unsubscribe(): Promise<void>;
}

/** The recent messages of a room kept for recovery (PROTOCOL.md, LOGIN roomSeq: at least 1,000). */
const ROOM_LOG_ENTRIES = 1000;
/** A silent room's seq and history expire after this long. */
const ROOM_LOG_TTL_S = 7 * 24 * 3600;
/**
 * A closed room's seq and history expire after this long: no one catches up in a closed room, and
 * the history (up to ~350 KB) would otherwise stay a week per closed room. An hour still covers
 * the retries of the close notice and of room messages accepted before the close.
 */
const CLOSED_ROOM_LOG_TTL_S = 3600;

// KEYS: seq, log, nodes, closed mark. ARGV: roomId, channel prefix (Keys.nodeChannelPrefix), min
// entries, ttl, ttl once closed (the closed mark exists: a close sets it before its notice), then
// seq and message JSON of each entry. The payload is NodeMessage's "room" form, written out here
// because the history append and the publishes are one atomic step. The log is a zset scored by
// seq, so entries may arrive out of seq order. An entry already in the log is not published again:
// a retried im-biz job repeats its room messages. (One trimmed from the log meanwhile is published
// again: it cannot be told from one never published, and late beats lost; clients drop repeats by
// msgId.)
const PUBLISH_TO_ROOM = `
local nodes = redis.call('SMEMBERS', KEYS[3])
for i = 6, #ARGV, 2 do
  if redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) == 1 then
    local payload = '{"t":"room","roomId":' .. ARGV[1] .. ',"seq":' .. ARGV[i] .. ',"msg":' .. ARGV[i + 1] .. '}'
    for _, node in ipairs(nodes) do
      redis.call('PUBLISH', ARGV[2] .. node, payload)
    end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
local ttl = ARGV[4]
if redis.call('EXISTS', KEYS[4]) == 1 then ttl = ARGV[5] end
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[1], ttl)
`;

export class RedisBroker implements Broker {
  private handler: (msg: NodeMessage) => void = () => {};
  private resubscribed: () => void = () => {};
  private channel: string | null = null;
  /** subscribe() was confirmed: a later "ready" of the connection is a reconnect. */
  private subscribed = false;

  constructor(
    private readonly command: Redis,
    private readonly subscriber: Redis,
    private readonly keys: Keys,
    private readonly log: Logger,
  ) {
    this.command.defineCommand("imPublishToRoom", { numberOfKeys: 4, lua: PUBLISH_TO_ROOM });
    // ioredis subscribes again by itself on a reconnect, but says nothing once that is done: this
    // SUBSCRIBE of ours (a repeat is harmless) is answered once the channel is listened to again
    this.subscriber.on("ready", () => {
      const channel = this.channel;
      if (channel === null || !this.subscribed) return;
      this.subscriber.subscribe(channel).then(
        () => {
          if (this.channel === channel) this.resubscribed();
        },
        (err: unknown) => this.log.error({ err, channel }, "subscribing again after a reconnect failed"),
      );
    });
    this.subscriber.on("message", (channel: string, text: string) => {
      if (channel !== this.channel) return;
      let msg: NodeMessage;
      try {
        msg = JSON.parse(text) as NodeMessage;
      } catch (err) {
        this.log.error({ err, channel }, "node message is not JSON; dropped");
        return;
      }
      try {
        this.handler(msg);
      } catch (err) {
        this.log.error({ err, tag: msg.t }, "node message handler failed");
      }
    });
  }

  async publishToNode(nodeId: string, msg: NodeMessage): Promise<void> {
    await this.command.publish(this.keys.nodeChannel(nodeId), JSON.stringify(msg));
  }

  async publishToRoom(roomId: number, entries: RoomLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const k = this.keys;
    const args = entries.flatMap((e) => [String(e.seq), JSON.stringify(e.msg)]);
    await (this.command as unknown as RoomScript).imPublishToRoom(
      k.roomSeq(roomId),
      k.roomLog(roomId),
      k.roomNodes(roomId),
      k.roomClosed(roomId),
      String(roomId),
      k.nodeChannelPrefix(),
      String(ROOM_LOG_ENTRIES),
      String(ROOM_LOG_TTL_S),
      String(CLOSED_ROOM_LOG_TTL_S),
      ...args,
    );
  }

  async subscribe(nodeId: string): Promise<void> {
    this.channel = this.keys.nodeChannel(nodeId);
    await this.subscriber.subscribe(this.channel);
    this.subscribed = true;
  }

  onMessage(handler: (msg: NodeMessage) => void): void {
    this.handler = handler;
  }

  onResubscribed(handler: () => void): void {
    this.resubscribed = handler;
  }

  async unsubscribe(): Promise<void> {
    if (this.channel === null) return;
    const channel = this.channel;
    this.channel = null;
    this.subscribed = false;
    await this.subscriber.unsubscribe(channel);
  }
}

interface RoomScript {
  imPublishToRoom(...args: string[]): Promise<null>;
}
