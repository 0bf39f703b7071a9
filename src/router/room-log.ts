// Reading a room's recent history (written by Broker.publishToRoom) for recovery after a reconnect.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { RoomLogEntry } from "./broker";
import type { RoomMessage } from "./node-message";

export interface RoomCatchUp {
  /** The highest seq in the room's history when it was read. */
  latestSeq: number;
  /** The kept messages with seq > the client's, in seq order. */
  entries: RoomLogEntry[];
  /** False when some messages after the client's seq are missing: no longer kept (or, for a few
   *  milliseconds, not yet published by the worker that has them). */
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

  /** The messages after `afterSeq`, up to the latest, in seq order. */
  async since(roomId: number, afterSeq: number): Promise<RoomCatchUp> {
    const rows = await this.redis.zrangebyscore(this.keys.roomLog(roomId), `(${afterSeq}`, "+inf", "WITHSCORES");
    const entries: RoomLogEntry[] = [];
    for (let i = 0; i < rows.length; i += 2) entries.push({ seq: Number(rows[i + 1]), msg: JSON.parse(rows[i]) as RoomMessage });
    const latestSeq = entries.length > 0 ? entries[entries.length - 1].seq : await this.latestSeq(roomId);
    // every seq in between is there: none trimmed away yet, none still on its way from a worker
    const recovered = entries.every((e, i) => e.seq === afterSeq + 1 + i);
    return { latestSeq, entries, recovered };
  }
}
