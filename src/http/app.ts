// The Hono app: every HTTP route of PROTOCOL.md section 6 but the WebSocket upgrade. The IM routes
// (/api/dev, /api/im, and the pushes of /api/im and /api/living) are mounted here; node.ts adds the others (rooms, ops, Bull Board, the page),
// whose dependencies live there, through `extra`.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { HttpDeps } from "./deps";
import { errorResponse, onHttpError } from "./errors";
import { devRoutes } from "./routes/dev";
import { imRoutes } from "./routes/im";
import { pushRoutes } from "./routes/push";

/** `api`: false on a node without the http role (only what `extra` adds, e.g. the ops routes). */
export function createApp(deps: HttpDeps, api: boolean, extra: (app: Hono) => void = () => {}): Hono {
  const app = new Hono();
  app.onError(onHttpError(deps.log));
  app.notFound((c) => errorResponse(c, "not_found", `no route ${c.req.method} ${c.req.path}`));
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: deps.settings.maxBodyBytes,
      onError: (c) => errorResponse(c, "payload_too_large", `request bodies are limited to ${deps.settings.maxBodyBytes} bytes`),
    }),
  );
  if (api && deps.settings.devLogin) app.route("/api/dev", devRoutes(deps));
  if (api) app.route("/api/im", imRoutes(deps));
  if (api) app.route("/api", pushRoutes(deps));
  extra(app);
  return app;
}
