// HTTP requests that are not quite what a browser sends, found by fuzzing a running node: no Host
// header (HTTP/1.0 health checks), a Host that is no host, a body cut short by a client that goes.
// None is a server error: answered as any other request, and nothing logged at error level.
// A real node process (its log is a file to read).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import net from "node:net";
import { createKeys } from "../src/redis/keys";
import { connectTestRedis, newUserId } from "./support/http-api";
import { startNodeProcesses, type ProcessCluster, type ProcessNode } from "./support/node-processes";
import { waitFor } from "./support/wait";

let cluster: ProcessCluster;
let node: ProcessNode;

beforeAll(async () => {
  cluster = await startNodeProcesses(0);
  // debug: the line of a request whose client went is one to wait for
  node = await cluster.addNode({ LOG_LEVEL: "debug" });
});
afterAll(() => cluster.stop());

/** Send `request` as is on a new connection; resolves with the status and body of the answer, read until the close. */
function rawRequest(request: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  const url = new URL(node.http);
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: url.hostname, port: Number(url.port) });
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`no whole answer to ${JSON.stringify(request.slice(0, 60))} in ${timeoutMs} ms`))), timeoutMs);
    let text = "";
    socket.on("connect", () => socket.write(request));
    socket.on("data", (c) => (text += c.toString("utf8")));
    socket.on("error", (e) => (clearTimeout(timer), reject(e)));
    socket.on("close", () => {
      clearTimeout(timer);
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}

function logRecords(): Array<Record<string, any>> {
  return readFileSync(node.logPath, "utf8")
    .split("\n")
    // the last piece is a line the node may still be writing (or "")
    .slice(0, -1)
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

test("a request without a Host header (HTTP/1.0), or with a Host that is no host, is served like any other", async () => {
  const healthz = await rawRequest("GET /healthz HTTP/1.0\r\n\r\n");
  expect(healthz).toEqual({ status: 200, body: JSON.stringify({ ok: true, nodeId: node.nodeId }) });
  // its query and body are read
  expect((await rawRequest("GET /api/living/list?pageSize=101 HTTP/1.0\r\n\r\n")).status).toBe(400);
  const body = JSON.stringify({ userId: newUserId() });
  const login = await rawRequest(`POST /api/dev/login HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  expect(login.status).toBe(200);
  expect(JSON.parse(login.body).token).toBeString();
  // a path that looks like another host is a path here
  expect((await rawRequest("GET //healthz HTTP/1.0\r\n\r\n")).status).toBe(404);
  expect((await rawRequest("GET /healthz HTTP/1.1\r\nHost: x:99999\r\nConnection: close\r\n\r\n")).status).toBe(200);
  // no upgrade without its headers: the error vocabulary's JSON
  const ws = await rawRequest("GET /ws?token=x&userId=1 HTTP/1.0\r\n\r\n");
  expect({ status: ws.status, body: JSON.parse(ws.body) }).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
  expect(logRecords().filter((r) => r.level >= 50)).toEqual([]);
});

test("a client that goes before its request body arrived is no server error: nothing logged at error level", async () => {
  const logged = logRecords().length;
  const url = new URL(node.http);
  const socket = net.createConnection({ host: url.hostname, port: Number(url.port) });
  socket.on("error", () => {});
  await new Promise((resolve) => socket.on("connect", resolve));
  let answer = "";
  socket.on("data", (c) => (answer += c.toString()));
  socket.write('POST /api/dev/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n{"userId":');
  // Bun.serve says "100 Continue" as it hands the request to the node, which then waits for the body: go
  await waitFor(() => answer.startsWith("HTTP/1.1 100"), 5000, "100 Continue");
  socket.resetAndDestroy();
  const line = await waitFor(() => logRecords().slice(logged).find((r) => r.path === "/api/dev/login"), 5000, "the node's log line about the request cut short");
  expect(line.level).toBeLessThan(50);
  expect(logRecords().filter((r) => r.level >= 50)).toEqual([]);
});

test("a WebSocket upgrade whose token check fails in Redis gets 500 internal as JSON; the next upgrade is served", async () => {
  const redis = connectTestRedis();
  try {
    // a real Redis failure: the token's key holds a hash, so its GET fails (WRONGTYPE)
    await redis.hset(createKeys(cluster.prefix).token("broken"), "x", "1");
    const failed = await rawRequest(
      "GET /ws?token=broken&userId=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    expect({ status: failed.status, body: JSON.parse(failed.body) }).toMatchObject({ status: 500, body: { error: { code: "internal" } } });
    expect((await rawRequest("GET /ws?token=x&userId=1 HTTP/1.0\r\n\r\n")).status).toBe(401);
  } finally {
    redis.disconnect();
  }
});
