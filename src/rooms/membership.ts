// Room membership (seed: living_room_user_set), kept by the im-online / im-offline workers:
// hash userId → sessionId per room. An offline event removes a member only if it is still the
// session that caused it, so a reconnect's newer session survives its old session's late close.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { PresenceEventJob } from "../queues/jobs";

const LEAVE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

export class RoomMembership {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    redis.defineCommand("imLeaveRoom", { numberOfKeys: 1, lua: LEAVE });
  }

  async online(e: PresenceEventJob): Promise<void> {
    if (e.roomId === undefined) return;
    await this.redis.hset(this.keys.roomMembers(e.roomId), String(e.userId), e.sessionId);
  }

  async offline(e: PresenceEventJob): Promise<void> {
    if (e.roomId === undefined) return;
    await (this.redis as unknown as { imLeaveRoom(k: string, u: string, s: string): Promise<number> }).imLeaveRoom(
      this.keys.roomMembers(e.roomId),
      String(e.userId),
      e.sessionId,
    );
  }

  async count(roomId: number): Promise<number> {
    return this.redis.hlen(this.keys.roomMembers(roomId));
  }

  /** Member counts of many rooms in one round trip. */
  async counts(roomIds: number[]): Promise<number[]> {
    const tx = this.redis.pipeline();
    for (const id of roomIds) tx.hlen(this.keys.roomMembers(id));
    const res = (await tx.exec()) ?? [];
    return res.map(([, n]) => Number(n ?? 0));
  }

  async clear(roomId: number): Promise<void> {
    await this.redis.del(this.keys.roomMembers(roomId));
  }
}
