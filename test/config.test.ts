// config.ts: the one reader of the environment. Numbers are checked where they are read.
import { expect, test } from "bun:test";
import os from "node:os";
import { loadConfig } from "../src/config";

test("INTAKE_LINGER_MS: 20 ms unless set, 0 allowed, a negative or non-integer value refused", () => {
  expect(loadConfig({}).delivery.intakeLingerMs).toBe(20);
  expect(loadConfig({ INTAKE_LINGER_MS: "0" }).delivery.intakeLingerMs).toBe(0);
  expect(loadConfig({ INTAKE_LINGER_MS: "25" }).delivery.intakeLingerMs).toBe(25);
  expect(() => loadConfig({ INTAKE_LINGER_MS: "-1" })).toThrow(/INTAKE_LINGER_MS/);
  expect(() => loadConfig({ INTAKE_LINGER_MS: "soon" })).toThrow(/INTAKE_LINGER_MS/);
});

test("production: no dev secrets and no dev login", () => {
  const secrets = { NODE_ENV: "production", IM_JWT_SECRET: "s".repeat(32), IM_API_KEY: "k".repeat(32) };
  expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/IM_JWT_SECRET and IM_API_KEY/);
  // a mistyped production would otherwise run with dev login on and the public dev secrets
  for (const typo of ["Production", "prod", "production "]) expect(() => loadConfig({ NODE_ENV: typo })).toThrow(/NODE_ENV/);
  expect(loadConfig(secrets).http.devLogin).toBe(false);
  expect(() => loadConfig({ ...secrets, DEV_LOGIN: "1" })).toThrow(/DEV_LOGIN/);
  expect(loadConfig({ DEV_LOGIN: "1" }).http.devLogin).toBe(true);
  // the dev values, set explicitly, are still the published ones
  const dev = loadConfig({});
  expect(() => loadConfig({ ...secrets, IM_JWT_SECRET: dev.http.jwtSecret })).toThrow(/dev IM_JWT_SECRET or IM_API_KEY/);
  expect(() => loadConfig({ ...secrets, IM_API_KEY: dev.http.apiKey })).toThrow(/dev IM_JWT_SECRET or IM_API_KEY/);
});

test("an empty variable counts as unset; HEARTBEAT_SECONDS is at least 1", () => {
  const c = loadConfig({ PORT: "", TCP_PORT: " ", MSG_RATE_PER_SEC: "", DRAIN_MS: "" });
  expect([c.http.port, c.gateway.tcpPort, c.gateway.msgRatePerSec, c.gateway.drainMs]).toEqual([8080, 9000, 200, 0]);
  expect(() => loadConfig({ NODE_ENV: "production", IM_JWT_SECRET: "", IM_API_KEY: "k".repeat(32) })).toThrow(/IM_JWT_SECRET and IM_API_KEY/);
  expect(loadConfig({ HEARTBEAT_SECONDS: "1.5" }).gateway.heartbeatMs).toBe(1500);
  expect(() => loadConfig({ HEARTBEAT_SECONDS: "0.0004" })).toThrow(/HEARTBEAT_SECONDS/);
});

test("with nothing set, the settings are PROTOCOL.md's defaults (sections 1, 2 and 7)", () => {
  const c = loadConfig({});
  expect({
    port: c.http.port,
    tcpPort: c.gateway.tcpPort,
    redis: c.redis.url,
    mysql: c.db.url,
    nodeId: c.nodeId,
    heartbeatMs: c.gateway.heartbeatMs,
    idleMs: c.gateway.idleMs,
    ackTimeoutMs: c.delivery.ackTimeoutMs,
    ackMaxAttempts: c.delivery.maxAttempts,
    maxBody: c.gateway.maxBodyBytes,
    loginTimeoutMs: c.gateway.loginTimeoutMs,
    devLogin: c.http.devLogin,
  }).toEqual({
    port: 8080,
    tcpPort: 9000,
    redis: "redis://127.0.0.1:6379",
    mysql: "mysql://root@127.0.0.1:3306/live_im",
    nodeId: `${os.hostname()}-8080`,
    heartbeatMs: 30_000,
    idleMs: 60_000,
    ackTimeoutMs: 4000,
    ackMaxAttempts: 3,
    maxBody: 65_536,
    loginTimeoutMs: 10_000,
    devLogin: true,
  });
});
