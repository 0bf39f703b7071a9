// Reading a room's recent history (written by Broker.publishToRoom) for recovery after a reconnect.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { RoomLogEntry } from "./broker";
import type { RoomMessage } from "./node-message";

export interface RoomCatchUp {
  /** The room's latest seq when the history was read. */
  latestSeq: number;
  /** The kept messages with seq > the client's, in seq order. */
  entries: RoomLogEntry[];
  /** False when some messages after the client's seq are no longer kept. */
  recovered: boolean;
}

export class RoomLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async latestSeq(roomId: number): Promise<number> {
    return Number((await this.redis.get(this.keys.roomSeq(roomId))) ?? 0);
  }

  /** The messages after `afterSeq`, up to the latest, in seq order. */
  async since(roomId: number, afterSeq: number): Promise<RoomCatchUp> {
    const [[, latestRaw], [, rows]] = (await this.redis
      .multi()
      .get(this.keys.roomSeq(roomId))
      .xrange(this.keys.roomLog(roomId), `(${afterSeq}-0`, "+")
      .exec()) as [[null, string | null], [null, Array<[string, string[]]>]];
    const latestSeq = Number(latestRaw ?? 0);
    const entries: RoomLogEntry[] = rows.map(([id, fields]) => ({
      seq: Number(id.slice(0, id.indexOf("-"))),
      msg: JSON.parse(fields[1]) as RoomMessage,
    }));
    const missed = Math.max(0, latestSeq - afterSeq);
    const recovered = missed === 0 || (entries.length > 0 && entries[0].seq === afterSeq + 1);
    return { latestSeq, entries, recovered };
  }
}
