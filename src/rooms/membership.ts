// Room membership (seed: living_room_user_set), kept by the im-online / im-offline workers: hash
// "appId:userId" → "nodeId|sessionId" per room (users of two apps may share a userId). An offline
// event removes a member only if it is still the session that caused it, so a reconnect's newer
// session survives its old session's late close.
// A node that dies without a goodbye sends no offline events: each node also lists the rooms it
// had members in, so that whoever finds it dead (presence/node-registry.ts) can remove its members.
import type Redis from "ioredis";
import type { Keys } from "../redis/keys";
import { bindingValue, parseBinding } from "../presence/presence";
import type { PresenceEvent } from "../queues/jobs";

// KEYS: room members, the node's room list, the user's presence binding, the room's closed mark,
// the node's reap lock and reaped mark (presence/node-registry.ts). ARGV: member field, value,
// roomId. Adds the member only while the session still holds the user's binding: im-online and
// im-offline are separate queues, so a session's online event may be handled after its offline
// one, and must not bring back a member that is gone. Nor after the room closed: the close cleared
// the members, and the session, no longer in the room, would never send the offline event that
// removes it. Nor once a live node is cleaning up, or cleaned up, after the session's node (taken
// for dead while the binding still lives): nothing would remove that member again. A node that
// was only stalled clears both marks at its next refresh and then announces its members again.
const JOIN = `
if redis.call('EXISTS', KEYS[4], KEYS[5], KEYS[6]) > 0 then return 0 end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1
`;

// KEYS: room members. ARGV: member field, value. Deletes the member only if it is still that value.
const LEAVE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

/** Members are read in pages this size when removing a node's members, so Redis never blocks long. */
const SCAN_COUNT = 500;
/** Rooms scanned at once when removing a node's members. */
const ROOM_SCAN_PARALLEL = 50;
/** How long a closed room refuses members: far longer than any online event can wait in its queue. */
const CLOSED_TTL_S = 24 * 3600;

interface MembershipScripts {
  imJoinRoom(members: string, nodeRooms: string, binding: string, closed: string, reapLock: string, reaped: string, field: string, value: string, roomId: string): Promise<number>;
  imLeaveRoom(members: string, field: string, value: string): Promise<number>;
}

export class RoomMembership {
  private readonly scripts: MembershipScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    redis.defineCommand("imJoinRoom", { numberOfKeys: 6, lua: JOIN });
    redis.defineCommand("imLeaveRoom", { numberOfKeys: 1, lua: LEAVE });
    this.scripts = redis as unknown as MembershipScripts;
  }

  /**
   * The event's session is a member of its room from now on (replacing the user's older session),
   * if it is still the user's live session, the room has not closed and its node is not being
   * cleaned up after as dead. Resolves to whether it was added.
   */
  async online(e: PresenceEvent): Promise<boolean> {
    if (e.roomId === undefined) return false;
    const added = await this.scripts.imJoinRoom(
      this.keys.roomMembers(e.roomId),
      this.keys.nodeRooms(e.nodeId),
      this.keys.binding(e.appId, e.userId),
      this.keys.roomClosed(e.roomId),
      this.keys.nodeReapLock(e.nodeId),
      this.keys.nodeReaped(e.nodeId),
      memberField(e),
      bindingValue(e.nodeId, e.sessionId),
      String(e.roomId),
    );
    return added === 1;
  }

  /** The event's session is no member any more; a newer session of the same user stays. */
  async offline(e: PresenceEvent): Promise<void> {
    if (e.roomId === undefined) return;
    await this.scripts.imLeaveRoom(this.keys.roomMembers(e.roomId), memberField(e), bindingValue(e.nodeId, e.sessionId));
  }

  /**
   * Remove every member whose session is on `nodeId`, in every room, and forget the node's room
   * list. Idempotent, and safe while other nodes add and remove members: a member is removed only
   * while it is still the session that was seen on `nodeId`. Resolves to the rooms it had members in.
   */
  async removeNode(nodeId: string): Promise<number[]> {
    const rooms = (await this.redis.smembers(this.keys.nodeRooms(nodeId))).map(Number);
    // the list keeps the live rooms the node ever had members in (many empty by now): scan them
    // ROOM_SCAN_PARALLEL at a time, so a long-lived node's stop does not take a round trip per room
    for (let i = 0; i < rooms.length; i += ROOM_SCAN_PARALLEL) {
      await Promise.all(rooms.slice(i, i + ROOM_SCAN_PARALLEL).map((roomId) => this.removeNodeFromRoom(nodeId, this.keys.roomMembers(roomId))));
    }
    await this.redis.del(this.keys.nodeRooms(nodeId));
    return rooms;
  }

  /** Every node of the registry (presence/node-registry.ts), live or not yet found dead: whose room lists closeRoom cleans. */
  async nodeIds(): Promise<string[]> {
    return this.redis.zrange(this.keys.nodes(), "0", "-1");
  }

  async count(roomId: number): Promise<number> {
    return this.redis.hlen(this.keys.roomMembers(roomId));
  }

  /** Member counts of many rooms in one round trip. */
  async counts(roomIds: number[]): Promise<number[]> {
    const tx = this.redis.pipeline();
    for (const id of roomIds) tx.hlen(this.keys.roomMembers(id));
    const res = (await tx.exec()) ?? [];
    return res.map(([err, n]) => {
      if (err) throw err;
      return Number(n);
    });
  }

  /**
   * The room closed: it has no members from now on, and takes none (see JOIN). It leaves the live
   * nodes' room lists too, which would otherwise keep every room a node ever had members in.
   * `nodes`: the registry's nodes (nodeIds()), when the caller read them already (with other
   * commands, in one round trip).
   */
  async closeRoom(roomId: number, nodes?: string[]): Promise<void> {
    nodes ??= await this.nodeIds();
    const tx = this.redis.multi().set(this.keys.roomClosed(roomId), "1", "EX", CLOSED_TTL_S).del(this.keys.roomMembers(roomId));
    for (const nodeId of nodes) tx.srem(this.keys.nodeRooms(nodeId), String(roomId));
    const results = await tx.exec();
    for (const [err] of results ?? []) if (err) throw err;
  }

  private async removeNodeFromRoom(nodeId: string, members: string): Promise<void> {
    let cursor = "0";
    do {
      const [next, flat] = await this.redis.hscan(members, cursor, "COUNT", SCAN_COUNT);
      cursor = next;
      const leaves = [];
      for (let i = 0; i < flat.length; i += 2) {
        if (parseBinding(flat[i + 1]).nodeId === nodeId) leaves.push(this.scripts.imLeaveRoom(members, flat[i], flat[i + 1]));
      }
      await Promise.all(leaves);
    } while (cursor !== "0");
  }
}

/** A member's field in a room's member hash. */
function memberField(e: Pick<PresenceEvent, "appId" | "userId">): string {
  return `${e.appId}:${e.userId}`;
}
