// fly.toml must agree with the code: ports, health/readiness paths, the stop signal and its timeout.
import { describe, expect, test } from "bun:test";
import { loadConfig } from "../src/config";
import { opsRoutes } from "../src/http/routes/ops";

const fly = Bun.TOML.parse(await Bun.file(new URL("../fly.toml", import.meta.url)).text()) as any;
const env: Record<string, string> = fly.env;
// what `fly secrets set` provides in production
const secrets = { IM_JWT_SECRET: "x".repeat(32), IM_API_KEY: "y".repeat(32), FLY_MACHINE_ID: "m-123", FLY_REGION: "fra", FLY_APP_NAME: "shop-chat" };
const config = loadConfig({ ...env, ...secrets });

const seconds = (s: string) => Number(/^(\d+)s$/.exec(s)?.[1] ?? NaN);

describe("fly.toml", () => {
  test("services point at the ports the node listens on", () => {
    expect(fly.http_service.internal_port).toBe(config.http.port);
    const tcp = fly.services.find((s: any) => s.protocol === "tcp");
    expect(tcp.internal_port).toBe(config.gateway.tcpPort);
    expect(fly.checks.alive.port).toBe(config.http.port);
  });

  test("the TCP service sends the PROXY protocol exactly when the node expects it", () => {
    const tcp = fly.services.find((s: any) => s.protocol === "tcp");
    const proxied = tcp.ports.some((p: any) => (p.handlers ?? []).includes("proxy_proto"));
    expect(proxied).toBe(config.gateway.proxyProtocol);
  });

  test("clients are sent to the app's own fly.dev name, on the TCP service's public port", () => {
    const tcp = fly.services.find((s: any) => s.protocol === "tcp");
    expect(config.gateway.publicWsUrl).toBe("wss://shop-chat.fly.dev/ws");
    expect(config.gateway.publicTcpAddress).toBe(`shop-chat.fly.dev:${tcp.ports[0].port}`);
    const custom = loadConfig({ ...env, ...secrets, PUBLIC_WS_URL: "wss://chat.example.com/ws" });
    expect(custom.gateway.publicWsUrl).toBe("wss://chat.example.com/ws");
  });

  test("checks use routes the node serves: /readyz for routing, /healthz for liveness", () => {
    const served = new Set(opsRoutes({ nodeId: "n", metrics: null as never, ready: null as never }).routes.map((r) => r.path));
    expect(fly.http_service.checks.map((c: any) => c.path)).toEqual(["/readyz"]);
    expect(fly.checks.alive.path).toBe("/healthz");
    for (const path of ["/readyz", "/healthz"]) expect(served.has(path)).toBe(true);
  });

  test("production config: ids from fly, no dev secrets, dev login off", () => {
    expect(config.production).toBe(true);
    expect(config.nodeId).toBe("m-123");
    expect(config.region).toBe("fra");
    expect(config.http.devLogin).toBe(false);
    expect(() => loadConfig(env)).toThrow(/IM_JWT_SECRET and IM_API_KEY/);
  });

  test("kill_signal is the one main.ts drains on, and kill_timeout covers the drain", async () => {
    expect(fly.kill_signal).toBe("SIGTERM");
    const main = await Bun.file(new URL("../src/main.ts", import.meta.url)).text();
    expect(main).toContain('process.on("SIGTERM"');
    // the clients of a machine reconnect to the others spread out, not all at once
    expect(config.gateway.drainSpreadMs).toBeGreaterThan(0);
    // the drain wait and spread, then main.ts's 10 s for the rest of the stop, must fit
    expect(seconds(fly.kill_timeout) * 1000).toBeGreaterThanOrEqual(config.gateway.drainMs + config.gateway.drainSpreadMs + 10_000);
    // the drain wait outlasts one /readyz check period, so fly has seen the node unready before its clients leave
    const [ready] = fly.http_service.checks;
    expect(config.gateway.drainMs).toBeGreaterThan((seconds(ready.interval) + seconds(ready.timeout)) * 1000);
  });
});
