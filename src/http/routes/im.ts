// IM routes: login config for clients, online checks for business backends (their pushes: push.ts).
import { Hono } from "hono";
import { z } from "zod";
import { appId, id } from "../../protocol/bodies";
import { DEFAULT_APP_ID } from "../../protocol/codes";
import { ImError } from "../../protocol/errors";
import { requireServer, requireUser, userApp, type AuthEnv } from "../auth";
import type { HttpDeps } from "../deps";
import { decimal, jsonBody, query } from "../validate";

const ConfigBody = z.object({ appId: appId.default(DEFAULT_APP_ID) });
const OnlineQuery = z.object({ userId: decimal.pipe(id), appId: decimal.pipe(appId).default(DEFAULT_APP_ID) });

export function imRoutes(deps: HttpDeps) {
  const user = requireUser(deps.settings.jwtSecret);
  const server = requireServer(deps.settings.apiKey);
  return new Hono<AuthEnv>()
    .post("/config", user, async (c) => {
      const { appId } = await jsonBody(c, ConfigBody);
      const u = c.get("user");
      // the JWT says which app its user is of: a token for another app would be another session
      // of the same person (one more viewer, one more rate limit) or someone else of that app
      if (appId !== userApp(u)) throw new ImError("forbidden", `this user JWT is not for app ${appId}`);
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
    });
}
