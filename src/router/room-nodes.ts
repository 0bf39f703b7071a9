// Which nodes hold members of a room (Redis set per room), so a room message goes once to each of
// them and never to the rest. A node adds itself when its first local member joins and removes
// itself when its last one leaves; commands go out in the order of those local changes.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";

export class RoomNodes {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodeId: string,
  ) {}

  async hold(roomId: number): Promise<void> {
    await this.redis.sadd(this.keys.roomNodes(roomId), this.nodeId);
  }

  async release(roomId: number): Promise<void> {
    await this.redis.srem(this.keys.roomNodes(roomId), this.nodeId);
  }

  /** A node died without releasing its rooms: room messages stop going to its channel. */
  async forgetNode(nodeId: string, roomIds: number[]): Promise<void> {
    if (roomIds.length === 0) return;
    const tx = this.redis.multi();
    for (const roomId of roomIds) tx.srem(this.keys.roomNodes(roomId), nodeId);
    await tx.exec();
  }
}
