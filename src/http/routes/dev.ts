// POST /api/dev/login: a user JWT for any userId, for local runs and tests (off in production).
import { Hono } from "hono";
import { z } from "zod";
import { appId, id } from "../../protocol/bodies";
import { mintUserJwt } from "../auth";
import type { HttpDeps } from "../deps";
import { jsonBody } from "../validate";

const DevLogin = z.object({
  userId: id,
  /** The app the user is of (the JWT's appId claim); absent: the default app. */
  appId: appId.optional(),
  nickName: z.string().min(1).max(40).optional(),
  avatar: z.string().max(255).optional(),
});

export function devRoutes(deps: HttpDeps) {
  return new Hono().post("/login", async (c) => {
    const body = await jsonBody(c, DevLogin);
    return c.json({ token: await mintUserJwt(deps.settings.jwtSecret, body) });
  });
}
