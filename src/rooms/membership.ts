// Room membership (seed: living_room_user_set), kept by the im-online / im-offline workers: hash
// userId → "nodeId|sessionId" per room. An offline event removes a member only if it is still the
// session that caused it, so a reconnect's newer session survives its old session's late close.
// A node that dies without a goodbye sends no offline events: each node also lists the rooms it
// had members in, so that whoever finds it dead (presence/node-registry.ts) can remove its members.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import type { PresenceEvent } from "../queues/jobs";

// KEYS: room members. ARGV: userId, member value. Deletes the member only if it is still that value.
const LEAVE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

/** Members are read in pages this size when removing a node's members, so Redis never blocks long. */
const SCAN_COUNT = 500;

interface MembershipScripts {
  imLeaveRoom(members: string, userId: string, value: string): Promise<number>;
}

export class RoomMembership {
  private readonly scripts: MembershipScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    redis.defineCommand("imLeaveRoom", { numberOfKeys: 1, lua: LEAVE });
    this.scripts = redis as unknown as MembershipScripts;
  }

  /** The event's session is a member of its room from now on (replacing the user's older session). */
  async online(e: PresenceEvent): Promise<void> {
    if (e.roomId === undefined) return;
    await this.redis
      .multi()
      .hset(this.keys.roomMembers(e.roomId), String(e.userId), memberValue(e.nodeId, e.sessionId))
      .sadd(this.keys.nodeRooms(e.nodeId), String(e.roomId))
      .exec();
  }

  /** The event's session is no member any more; a newer session of the same user stays. */
  async offline(e: PresenceEvent): Promise<void> {
    if (e.roomId === undefined) return;
    await this.scripts.imLeaveRoom(this.keys.roomMembers(e.roomId), String(e.userId), memberValue(e.nodeId, e.sessionId));
  }

  /**
   * Remove every member whose session is on `nodeId`, in every room, and forget the node's room
   * list. Idempotent, and safe while other nodes add and remove members: a member is removed only
   * while it is still the session that was seen on `nodeId`. Resolves to the rooms it had members in.
   */
  async removeNode(nodeId: string): Promise<number[]> {
    const rooms = (await this.redis.smembers(this.keys.nodeRooms(nodeId))).map(Number);
    for (const roomId of rooms) await this.removeNodeFromRoom(nodeId, this.keys.roomMembers(roomId));
    await this.redis.del(this.keys.nodeRooms(nodeId));
    return rooms;
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

  private async removeNodeFromRoom(nodeId: string, members: string): Promise<void> {
    let cursor = "0";
    do {
      const [next, flat] = await this.redis.hscan(members, cursor, "COUNT", SCAN_COUNT);
      cursor = next;
      const leaves = [];
      for (let i = 0; i < flat.length; i += 2) {
        if (nodeOf(flat[i + 1]) === nodeId) leaves.push(this.scripts.imLeaveRoom(members, flat[i], flat[i + 1]));
      }
      await Promise.all(leaves);
    } while (cursor !== "0");
  }
}

/** Same shape as a presence binding: session ids never hold a "|", node ids may. */
function memberValue(nodeId: string, sessionId: string): string {
  return `${nodeId}|${sessionId}`;
}

function nodeOf(value: string): string {
  return value.slice(0, value.lastIndexOf("|"));
}
