// Pushes of business backends (server key): to a list of users, delivered reliably like 5556
// (POST /api/im/push), or to everyone in a live room, delivered like 5555 (POST
// /api/living/:roomId/push: a gift, an order banner, a flash sale). Either may carry an
// Idempotency-Key, so that a backend can repeat one it is unsure of (messaging/push-once.ts).
import { Hono, type Context } from "hono";
import { z } from "zod";
import { appId, bizCode, id } from "../../protocol/bodies";
import { BizCode, DEFAULT_APP_ID } from "../../protocol/codes";
import { ImError } from "../../protocol/errors";
import { deliveryBodyJson, roomBodyJson } from "../../router/node-message";
import { requireServer } from "../auth";
import type { HttpDeps } from "../deps";
import { decimal, jsonBody, params } from "../validate";

const PUSH_REFUSED_CODES = new Set<number>([BizCode.ROOM_CHAT, BizCode.PRIVATE_CHAT, BizCode.ROOM_CLOSED]);
/** The fields the server sets in a room message's data (PROTOCOL.md section 5, 5555). */
const ROOM_FIELDS = ["userId", "roomId", "seq", "createTime"];

const pushFields = {
  appId: appId.default(DEFAULT_APP_ID),
  // PROTOCOL.md section 5: any bizCode but the table's (5555, 5556), whose data has a fixed shape;
  // 5557 (room closed) is the server's own
  bizCode: bizCode.refine((c) => !PUSH_REFUSED_CODES.has(c), "5555 (room chat), 5556 (private chat) and 5557 (room closed) cannot be pushed"),
  data: z.record(z.string(), z.unknown()),
};
const UserPushBody = z.object({ ...pushFields, userIds: z.array(id).min(1).max(1000) });
const RoomPushBody = z.object({
  ...pushFields,
  data: pushFields.data.refine((d) => !ROOM_FIELDS.some((f) => Object.hasOwn(d, f)), `data may not hold ${ROOM_FIELDS.join(", ")}: the server sets them`),
});
const RoomParam = z.object({ roomId: decimal.pipe(id) });

/** A push's Idempotency-Key: what a backend would use, a UUID or an order number. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The most one push may carry in all: its data's bytes times its recipients. */
const PUSH_MAX_TOTAL_BYTES = 16 * 1024 * 1024;
/**
 * The most a room push's data may hold: every room message stays in the room's history (the last
 * 1,000) and is replayed to each viewer that recovers, so pushes of 64 KB (a frame's limit) would
 * make that 64 MB per room. Twice what a chat message can carry (4,000 characters of content).
 */
const ROOM_PUSH_MAX_DATA_BYTES = 16 * 1024;
/** For the size check: no msgId or seq is longer. */
const LARGEST_ID = Number.MAX_SAFE_INTEGER;

export function pushRoutes(deps: HttpDeps) {
  const server = requireServer(deps.settings.apiKey);

  /** `accept()`'s answer, or the first answer again for a repeat with the same Idempotency-Key. */
  async function once<A extends { msgId: string }>(c: Context, appId: number, request: object, accept: () => Promise<A>): Promise<Response> {
    const key = c.req.header("Idempotency-Key");
    if (key === undefined) return c.json(await accept());
    if (!IDEMPOTENCY_KEY.test(key)) throw new ImError("bad_request", "Idempotency-Key: 1 to 255 visible ASCII characters");
    const { answer, replayed } = await deps.pushOnce.run(appId, key, request, accept);
    if (replayed) c.header("Idempotent-Replayed", "true");
    return c.json(answer);
  }

  /** Each recipient gets the push as one frame: a body over MAX_BODY_BYTES would make its client drop the connection (and at every login again). */
  function checkFrameSize(largestBody: string): void {
    if (Buffer.byteLength(largestBody) > deps.settings.frameMaxBytes) {
      throw new ImError("payload_too_large", `data too large: a delivery frame body may be at most ${deps.settings.frameMaxBytes} bytes`);
    }
  }

  return new Hono()
    .post("/im/push", server, async (c) => {
      const body = await jsonBody(c, UserPushBody);
      const userIds = [...new Set(body.userIds)];
      const data = stringifyData(body.data);
      checkFrameSize(deliveryBodyJson({ msgId: String(LARGEST_ID), appId: body.appId, userId: Math.max(...userIds), bizCode: body.bizCode, data, ts: Date.now() }));
      // each recipient's delivery carries the data through queues, pub/sub and MySQL: bound the sum
      const total = Buffer.byteLength(data) * userIds.length;
      if (total > PUSH_MAX_TOTAL_BYTES) {
        throw new ImError("payload_too_large", `data × recipients is ${total} bytes, over ${PUSH_MAX_TOTAL_BYTES}: split the recipients over several pushes`);
      }
      // the recipients are a set: a repeat that lists them in another order is the same push
      return once(c, body.appId, { ...body, userIds: [...userIds].sort((a, b) => a - b) }, async () => {
        const { msgId } = await deps.intake.submit({ appId: body.appId, senderId: 0, bizCode: body.bizCode, data: body.data, userIds, ts: Date.now() });
        deps.log.debug({ msgId, bizCode: body.bizCode, users: userIds.length }, "push accepted");
        return { accepted: userIds.length, msgId };
      });
    })
    .post("/living/:roomId/push", server, async (c) => {
      const { roomId } = params(c, RoomParam);
      const body = await jsonBody(c, RoomPushBody);
      const dataBytes = Buffer.byteLength(stringifyData(body.data));
      if (dataBytes > ROOM_PUSH_MAX_DATA_BYTES) {
        throw new ImError("payload_too_large", `a room push's data may be at most ${ROOM_PUSH_MAX_DATA_BYTES} bytes (it has ${dataBytes})`);
      }
      const now = Date.now();
      const largest = { msgId: String(LARGEST_ID), appId: body.appId, bizCode: body.bizCode, ts: now, data: { ...body.data, userId: 0, roomId, createTime: now } };
      checkFrameSize(roomBodyJson(largest, LARGEST_ID));
      return once(c, body.appId, { roomId, ...body }, async () => {
        // the room is live now; one that closes before the push takes its seq refuses it at intake
        // (409 too), one that closes after still gets it, before its closing notice
        // (messaging/sequencer.ts, messaging/biz/processor.ts)
        if (!(await deps.isRoomLive(roomId))) throw new ImError("room_not_live", `room ${roomId} is not live`);
        const { msgId, seq } = await deps.intake.submit({ appId: body.appId, senderId: 0, bizCode: body.bizCode, data: body.data, toRoom: roomId, roomId, ts: Date.now() });
        deps.log.debug({ msgId, seq, bizCode: body.bizCode, roomId }, "room push accepted");
        return { msgId, seq: seq! };
      });
    });
}

/** `data` as JSON; data nested too deep for that (JSON.parse takes deeper than stringify) is a bad request. */
function stringifyData(data: Record<string, unknown>): string {
  try {
    return JSON.stringify(data);
  } catch (err) {
    if (err instanceof RangeError) throw new ImError("bad_request", "data is nested too deep");
    throw err;
  }
}
