// The Hono app: every HTTP route of PROTOCOL.md section 6 but the WebSocket upgrade.
import { Hono } from "hono";
import type { HttpDeps } from "./deps";
import { errorResponse, onHttpError } from "./errors";
import { devRoutes } from "./routes/dev";
import { imRoutes } from "./routes/im";

export function createApp(deps: HttpDeps, extra: (app: Hono) => void = () => {}): Hono {
  const app = new Hono();
  app.onError(onHttpError(deps.log));
  app.notFound((c) => errorResponse(c, 404, "not_found", `no route ${c.req.method} ${c.req.path}`));
  app.get("/healthz", (c) => c.json({ ok: true, nodeId: deps.nodeId }));
  if (deps.settings.devLogin) app.route("/api/dev", devRoutes(deps));
  app.route("/api/im", imRoutes(deps));
  extra(app);
  return app;
}
