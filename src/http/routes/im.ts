// IM routes: login config for clients, online checks and pushes for business backends.
import { Hono } from "hono";
import { z } from "zod";
import { appId, bizCode, id } from "../../protocol/bodies";
import { BizCode, DEFAULT_APP_ID } from "../../protocol/codes";
import { ImError } from "../../protocol/errors";
import { deliveryBodyJson } from "../../router/node-message";
import { requireServer, requireUser, type AuthEnv } from "../auth";
import type { HttpDeps } from "../deps";
import { decimal, jsonBody, query } from "../validate";

const ConfigBody = z.object({ appId: appId.default(DEFAULT_APP_ID) });
const OnlineQuery = z.object({ userId: decimal.pipe(id), appId: decimal.pipe(appId).default(DEFAULT_APP_ID) });
const PushBody = z.object({
  appId: appId.default(DEFAULT_APP_ID),
  userIds: z.array(id).min(1).max(1000),
  // PROTOCOL.md section 5: any bizCode but the table's (5555, 5556), whose data has a fixed shape;
  // 5557 (room closed) is the server's own
  bizCode: bizCode.refine((c) => !PUSH_REFUSED_CODES.has(c), "5555 (room chat), 5556 (private chat) and 5557 (room closed) cannot be pushed"),
  data: z.record(z.string(), z.unknown()),
});

const PUSH_REFUSED_CODES = new Set<number>([BizCode.ROOM_CHAT, BizCode.PRIVATE_CHAT, BizCode.ROOM_CLOSED]);

/** A push's Idempotency-Key (see messaging/push-once.ts): what a backend would use, a UUID or an order number. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The most one push may carry in all: its data's bytes times its recipients. */
const PUSH_MAX_TOTAL_BYTES = 16 * 1024 * 1024;

export function imRoutes(deps: HttpDeps) {
  const user = requireUser(deps.settings.jwtSecret);
  const server = requireServer(deps.settings.apiKey);
  return new Hono<AuthEnv>()
    .post("/config", user, async (c) => {
      const { appId } = await jsonBody(c, ConfigBody);
      const u = c.get("user");
      // the JWT says which app its user is of: a token for another app would be another session
      // of the same person (one more viewer, one more rate limit) or someone else of that app
      if (appId !== (u.appId ?? DEFAULT_APP_ID)) throw new ImError("forbidden", `this user JWT is not for app ${appId}`);
      const token = await deps.tokens.create({ userId: u.userId, appId, nickName: u.nickName, avatar: u.avatar });
      // this node while it accepts clients, else the least loaded live node
      let node = deps.self();
      if (!node.accepting) {
        const live = (await deps.registry.live()).filter((n) => n.accepting).sort((a, b) => a.connections - b.connections);
        if (live.length === 0) throw new ImError("unavailable", "no node accepts clients now");
        node = live[0];
      }
      return c.json({ token, wsUrl: node.wsUrl, tcpAddress: node.tcpAddress, nodeId: node.nodeId, region: node.region });
    })
    .get("/online", server, async (c) => {
      const q = query(c, OnlineQuery);
      const binding = await deps.presence.whereIs(q.appId, q.userId);
      return c.json(binding ? { online: true, nodeId: binding.nodeId } : { online: false });
    })
    .post("/push", server, async (c) => {
      const body = await jsonBody(c, PushBody);
      const userIds = [...new Set(body.userIds)];
      const data = stringifyData(body.data);
      // each recipient gets it as one frame, and a frame body may not exceed MAX_BODY_BYTES (a client
      // would drop the connection on it, and get it again at every login)
      const largest = deliveryBodyJson({ msgId: String(Number.MAX_SAFE_INTEGER), appId: body.appId, userId: Math.max(...userIds), bizCode: body.bizCode, data, ts: Date.now() });
      if (Buffer.byteLength(largest) > deps.settings.frameMaxBytes) {
        throw new ImError("payload_too_large", `data too large: a delivery frame body may be at most ${deps.settings.frameMaxBytes} bytes`);
      }
      // each recipient's delivery carries the data through queues, pub/sub and MySQL: bound the sum
      const total = Buffer.byteLength(data) * userIds.length;
      if (total > PUSH_MAX_TOTAL_BYTES) {
        throw new ImError("payload_too_large", `data × recipients is ${total} bytes, over ${PUSH_MAX_TOTAL_BYTES}: split the recipients over several pushes`);
      }
      const accept = async () => {
        const { msgId } = await deps.intake.submit({ appId: body.appId, senderId: 0, bizCode: body.bizCode, data: body.data, userIds, ts: Date.now() });
        deps.log.debug({ msgId, bizCode: body.bizCode, users: userIds.length }, "push accepted");
        return { accepted: userIds.length, msgId };
      };
      const key = c.req.header("Idempotency-Key");
      if (key === undefined) return c.json(await accept());
      if (!IDEMPOTENCY_KEY.test(key)) throw new ImError("bad_request", "Idempotency-Key: 1 to 255 visible ASCII characters");
      const { answer, replayed } = await deps.pushOnce.run(body.appId, key, body, accept);
      if (replayed) c.header("Idempotent-Replayed", "true");
      return c.json(answer);
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
