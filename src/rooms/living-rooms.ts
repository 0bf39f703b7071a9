// Live rooms (seed sections 4.1–4.3): MySQL is the truth, Redis caches each room object (with null
// caching, so a flood of lookups for a closed or unknown room does not reach MySQL).
import { and, desc, eq } from "drizzle-orm";
import type Redis from "ioredis";
import type { Db } from "../db/client";
import { ER_DUP_ENTRY, isMysqlError } from "../db/errors";
import { livingRoom, livingRoomRecord } from "../db/schema";
import { DEFAULT_APP_ID } from "../protocol/codes";
import { ImError } from "../protocol/errors";
import { LIVING_ROOM_NOT_LIVE, type Keys } from "../redis/keys";

export interface Room {
  id: number;
  /** The anchor's app. */
  appId: number;
  anchorId: number;
  type: number;
  roomName: string;
  covertImg: string | null;
  watchNum: number;
  goodNum: number;
  startTime: number;
}

export interface StartRoom {
  type: number;
  roomName?: string;
  covertImg?: string;
}

const ROOM_TTL_S = 600;
/** A known miss is cached briefly: long enough to absorb a flood, short enough to be harmless. */
const MISS_TTL_S = 10;
const MISS = LIVING_ROOM_NOT_LIVE;
/** Select-then-insert rounds one start may take: a lost insert costs one more, a close of the winner racing it another. */
const START_ATTEMPTS = 3;

export class LivingRooms {
  constructor(
    private readonly db: Db,
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /**
   * Open a live room for the anchor (a user of app `appId`); an anchor already live gets its current
   * room back. One live room per anchor is the unique index on living_room (app_id, anchor_id): of
   * concurrent starts by one anchor, one insert wins and the others, refused as a duplicate, return
   * the winner's room.
   */
  async start(appId: number, anchorId: number, req: StartRoom): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const [existing] = await this.db
        .select({ id: livingRoom.id })
        .from(livingRoom)
        .where(and(eq(livingRoom.appId, appId), eq(livingRoom.anchorId, anchorId)))
        .limit(1);
      if (existing) return existing.id;
      try {
        const [res] = await this.db.insert(livingRoom).values({
          appId,
          anchorId,
          type: req.type,
          status: 1,
          roomName: req.roomName ?? "",
          covertImg: req.covertImg ?? null,
        });
        const roomId = res.insertId;
        await this.cacheStarted(roomId);
        return roomId;
      } catch (err) {
        // the losing insert returns once the winner has committed, so the next select finds it;
        // should that room be closed in between, the next insert opens a new one
        if (!isMysqlError(err, ER_DUP_ENTRY) || attempt >= START_ATTEMPTS) throw err;
      }
    }
  }

  /**
   * Close a live room: the row moves to living_room_record with its end_time in one transaction.
   * 404 when it is not live, 403 when the user (of app `appId`) is not its anchor: the same userId
   * in another app is someone else. Returns the closed room. The caller then calls cacheClosed (and
   * retries it should Redis fail): a lookup racing the close may have cached the room as live again.
   */
  async close(appId: number, userId: number, roomId: number): Promise<Room> {
    const isAnchor = (row: { appId: number; anchorId: number }) => row.appId === appId && row.anchorId === userId;
    // who may close it is checked before anything changes: a refused close must not evict the
    // room's cache entry (any user could keep a busy room's lookups going to MySQL)
    const [seen] = await this.db.select({ appId: livingRoom.appId, anchorId: livingRoom.anchorId }).from(livingRoom).where(eq(livingRoom.id, roomId)).limit(1);
    if (!seen) throw new ImError("not_found", `room ${roomId} is not live`);
    if (!isAnchor(seen)) throw new ImError("forbidden", "only the anchor can close the room");
    // the cache goes first: with Redis out of reach the close fails before anything changed, instead
    // of after the commit, with the room still cached as live
    await this.redis.del(this.keys.livingRoom(roomId));
    const closed = await this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(livingRoom).where(eq(livingRoom.id, roomId)).for("update");
      if (!row) throw new ImError("not_found", `room ${roomId} is not live`);
      if (!isAnchor(row)) throw new ImError("forbidden", "only the anchor can close the room");
      const now = new Date();
      await tx.insert(livingRoomRecord).values({ ...row, status: 0, endTime: now, updateTime: now });
      await tx.delete(livingRoom).where(eq(livingRoom.id, roomId));
      return row;
    });
    return toRoom(closed);
  }

  /**
   * Cache a room that just started as live, over anything cached for its id: a lookup that read
   * MySQL before the insert then cannot cache it as not live (it writes only where nothing is).
   * Written first, then checked: a close racing this (a repeated start answers the room at once)
   * caches "not live" after its commit, so a room gone by the check may have had that write before
   * ours, and gets it again.
   */
  private async cacheStarted(roomId: number): Promise<void> {
    const live = () => this.db.select().from(livingRoom).where(eq(livingRoom.id, roomId)).limit(1);
    const [row] = await live();
    if (row) await this.redis.set(this.keys.livingRoom(roomId), JSON.stringify(toRoom(row)), "EX", ROOM_TTL_S);
    if (!row || (await live()).length === 0) await this.cacheClosed(roomId);
  }

  /** Cache a closed room as not live, over whatever a lookup racing its close cached. */
  async cacheClosed(roomId: number): Promise<void> {
    await this.redis.set(this.keys.livingRoom(roomId), MISS, "EX", MISS_TTL_S);
  }

  /** The live room, or null. Served from the cache; misses are cached too. */
  async get(roomId: number): Promise<Room | null> {
    const key = this.keys.livingRoom(roomId);
    const cached = await this.redis.get(key);
    // a room cached by a node from before rooms had an app is of the default app, as its row is
    if (cached !== null) return cached === MISS ? null : { appId: DEFAULT_APP_ID, ...(JSON.parse(cached) as Omit<Room, "appId">) };
    const [row] = await this.db.select().from(livingRoom).where(eq(livingRoom.id, roomId)).limit(1);
    const room = row ? toRoom(row) : null;
    // NX: a close (or start) that changed the cache since our read wins over what we read
    if (room) await this.redis.set(key, JSON.stringify(room), "EX", ROOM_TTL_S, "NX");
    else await this.redis.set(key, MISS, "EX", MISS_TTL_S, "NX");
    return room;
  }

  async isLive(roomId: number): Promise<boolean> {
    return (await this.get(roomId)) !== null;
  }

  /** Every live room of a type, newest first, straight from MySQL (the list cache's source). */
  async allOfType(type: number): Promise<Room[]> {
    const rows = await this.db.select().from(livingRoom).where(eq(livingRoom.type, type)).orderBy(desc(livingRoom.id));
    return rows.map(toRoom);
  }
}

function toRoom(row: typeof livingRoom.$inferSelect): Room {
  return {
    id: row.id,
    appId: row.appId,
    anchorId: row.anchorId,
    type: row.type,
    roomName: row.roomName,
    covertImg: row.covertImg,
    watchNum: row.watchNum,
    goodNum: row.goodNum,
    startTime: row.startTime.getTime(),
  };
}
