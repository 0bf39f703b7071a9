// Live-room routes (PROTOCOL.md section 6): start, close, list, get, online count.
import { Hono } from "hono";
import { z } from "zod";
import { id } from "../../protocol/bodies";
import { ROOM_TYPES } from "../../protocol/codes";
import { requireUser, userApp, type AuthEnv } from "../auth";
import type { LivingRooms } from "../../rooms/living-rooms";
import type { RoomList } from "../../rooms/room-list";
import type { RoomMembership } from "../../rooms/membership";
import type { RoomClosing } from "../../rooms/room-closing";
import { decimal, jsonBody, params, query } from "../validate";

export interface LivingDeps {
  jwtSecret: string;
  rooms: LivingRooms;
  list: RoomList;
  membership: RoomMembership;
  closing: RoomClosing;
}

const roomType = z.union(ROOM_TYPES.map((t) => z.literal(t)));
const StartBody = z.object({
  type: roomType.default(1),
  roomName: z.string().max(60).optional(),
  covertImg: z.string().max(255).optional(),
});
const CloseBody = z.object({ roomId: id });
const ListQuery = z.object({
  type: decimal.pipe(roomType).default(1),
  page: decimal.pipe(z.number().int().min(1).max(100_000)).default(1),
  pageSize: decimal.pipe(z.number().int().min(1).max(100)).default(20),
});
const RoomParam = z.object({ roomId: decimal.pipe(id) });

export function livingRoutes(deps: LivingDeps) {
  const user = requireUser(deps.jwtSecret);
  return new Hono<AuthEnv>()
    .post("/start", user, async (c) => {
      const body = await jsonBody(c, StartBody);
      return c.json({ roomId: await deps.rooms.start(userApp(c.get("user")), c.get("user").userId, body) });
    })
    .post("/close", user, async (c) => {
      const { roomId } = await jsonBody(c, CloseBody);
      await deps.closing.close(userApp(c.get("user")), c.get("user").userId, roomId);
      return c.json({ ok: true });
    })
    .get("/list", async (c) => {
      const q = query(c, ListQuery);
      return c.json(await deps.list.page(q.type, q.page, q.pageSize));
    })
    .get("/:roomId/online", async (c) => {
      const { roomId } = params(c, RoomParam);
      return c.json({ count: await deps.membership.count(roomId) });
    })
    .get("/:roomId", user, async (c) => {
      const parsed = RoomParam.safeParse(c.req.param());
      if (!parsed.success) return c.json({ roomId: -1, isAnchor: false });
      // the count is read with the room, in the same round trip to Redis, and dropped (its failure
      // too) for a room that is not live
      const counting = deps.membership.count(parsed.data.roomId);
      counting.catch(() => {});
      const room = await deps.rooms.get(parsed.data.roomId);
      if (!room) return c.json({ roomId: -1, isAnchor: false });
      const { id: roomId, ...rest } = room;
      const watchNum = await counting;
      const u = c.get("user");
      return c.json({ roomId, ...rest, watchNum, isAnchor: room.appId === userApp(u) && room.anchorId === u.userId });
    });
}
