// Reading a room's recent history (written by Broker.publishToRoom) for recovery after a reconnect.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { RoomLogEntry } from "./broker";
import type { RoomMessage } from "./node-message";

export interface RoomCatchUp {
  /** The highest seq in the room's history when it was read. */
  latestSeq: number;
  /** The history's messages with seq > the client's, in seq order. */
  entries: RoomLogEntry[];
  /** False when messages after the client's seq are no longer in the history (trimmed as the room went on). */
  recovered: boolean;
}

export class RoomLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The highest seq in the room's history (0 for none): the last message published to the room. */
  async latestSeq(roomId: number): Promise<number> {
    const [, score] = await this.redis.zrevrange(this.keys.roomLog(roomId), 0, 0, "WITHSCORES");
    return Number(score ?? 0);
  }

  /**
   * The messages after `afterSeq`, up to the latest, in seq order. A seq missing between two in the
   * history was never published (its intake failed after the seq was given) or is still on its way
   * from a worker (it then comes live); neither is lost to the client, so only the history's
   * oldest end says whether it still reaches back to `afterSeq`.
   */
  async since(roomId: number, afterSeq: number): Promise<RoomCatchUp> {
    // from afterSeq itself: the history is trimmed from its oldest end only, so one entry at or
    // just after the client's seq shows that nothing after it was trimmed
    const held = await this.between(roomId, afterSeq, Number.POSITIVE_INFINITY);
    const entries = held.filter((e) => e.seq > afterSeq);
    const latestSeq = held.length > 0 ? held[held.length - 1].seq : await this.latestSeq(roomId);
    const recovered = entries.length === 0 || held[0].seq <= afterSeq + 1;
    return { latestSeq, entries, recovered };
  }

  /** The history's messages with fromSeq <= seq <= toSeq (Infinity: up to the latest), in seq order. */
  async between(roomId: number, fromSeq: number, toSeq: number): Promise<RoomLogEntry[]> {
    const rows = await this.redis.zrangebyscore(this.keys.roomLog(roomId), fromSeq, toSeq === Number.POSITIVE_INFINITY ? "+inf" : toSeq, "WITHSCORES");
    const entries: RoomLogEntry[] = [];
    for (let i = 0; i < rows.length; i += 2) entries.push({ seq: Number(rows[i + 1]), msg: JSON.parse(rows[i]) as RoomMessage });
    return entries;
  }
}
