// Operations routes: liveness (/healthz), readiness (/readyz) and Prometheus metrics (/metrics).
import { Hono } from "hono";
import type { Metrics } from "../../metrics/metrics";

export interface Readiness {
  ok: boolean;
  checks: Record<string, boolean>;
}

export interface OpsDeps {
  nodeId: string;
  metrics: Metrics;
  /** Redis and MySQL reachable, workers running, not draining. */
  ready(): Promise<Readiness>;
}

export function opsRoutes(deps: OpsDeps) {
  return new Hono()
    .get("/healthz", (c) => c.json({ ok: true, nodeId: deps.nodeId }))
    .get("/readyz", async (c) => {
      const r = await deps.ready();
      return c.json({ ...r, nodeId: deps.nodeId }, r.ok ? 200 : 503);
    })
    .get("/metrics", async (c) => {
      c.header("content-type", deps.metrics.registry.contentType);
      return c.body(await deps.metrics.registry.metrics());
    });
}
