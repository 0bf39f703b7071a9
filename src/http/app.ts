// The Hono app: every HTTP route of PROTOCOL.md section 6 but the WebSocket upgrade (gateway/ws.ts),
// mounted here in one place. node.ts builds the dependencies of each group of routes.
import type { Queue } from "bullmq";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { HttpDeps } from "./deps";
import { errorResponse, onHttpError } from "./errors";
import { ADMIN_QUEUES_PATH, adminRoutes } from "./routes/admin";
import { devRoutes } from "./routes/dev";
import { imRoutes } from "./routes/im";
import { livingRoutes, type LivingDeps } from "./routes/living";
import { opsRoutes, type OpsDeps } from "./routes/ops";
import { pushRoutes } from "./routes/push";
import { webRoutes, type WebAssets } from "./routes/web";

/** A node with the http role serves these: the API, Bull Board and the page. */
export interface ApiParts {
  im: HttpDeps;
  living: LivingDeps;
  /** Bull Board's queues (behind the server API key). */
  queues: Queue[];
  web: WebAssets;
}

/** `api`: null on a node without the http role, which serves only the ops routes (checks, metrics). */
export function createApp(http: Pick<HttpDeps, "settings" | "log">, ops: OpsDeps, api: ApiParts | null): Hono {
  const app = new Hono();
  app.onError(onHttpError(http.log));
  app.notFound((c) => errorResponse(c, "not_found", `no route ${c.req.method} ${c.req.path}`));
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: http.settings.maxBodyBytes,
      onError: (c) => errorResponse(c, "payload_too_large", `request bodies are limited to ${http.settings.maxBodyBytes} bytes`),
    }),
  );
  app.route("/", opsRoutes(ops));
  if (api) {
    if (http.settings.devLogin) app.route("/api/dev", devRoutes(api.im));
    app.route("/api/im", imRoutes(api.im));
    app.route("/api", pushRoutes(api.im));
    app.route("/api/living", livingRoutes(api.living));
    app.route(ADMIN_QUEUES_PATH, adminRoutes(http.settings.apiKey, api.queues));
    app.route("/", webRoutes(api.web));
  }
  return app;
}
