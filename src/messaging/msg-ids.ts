// Cluster-wide msgIds: one Redis sequence, so ids are strictly increasing across all nodes.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";

export class MsgIds {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The next msgId, as the decimal string clients see. */
  async next(): Promise<string> {
    return String(await this.redis.incr(this.keys.msgIdSeq()));
  }
}
