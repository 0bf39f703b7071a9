// PROTOCOL.md section 2: a connection must send LOGIN within loginTimeout or is closed, on a plain
// /ws as on TCP; HEARTBEATs before login are tolerated but do not stand in for it. One in-process
// node whose idle close (2 heartbeat intervals, 60 s here) cannot be what closes them.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Code } from "../src/protocol/codes";
import { imToken, newUserId } from "./support/http-api";
import { startInProcessNodes, type InProcessCluster } from "./support/in-process-nodes";
import { RawTcp } from "./support/raw-tcp";
import { waitFor } from "./support/wait";

const LOGIN_TIMEOUT_MS = 300;
/** The login timeout, the sweep that finds it (every second here) and a loaded machine's delay. */
const CLOSE_BOUND_MS = LOGIN_TIMEOUT_MS + 1000 + 3000;

let cluster: InProcessCluster;
beforeAll(async () => {
  cluster = await startInProcessNodes(1, { heartbeatSeconds: 30 }, { LOGIN_TIMEOUT_MS: String(LOGIN_TIMEOUT_MS) });
});
afterAll(() => cluster.stop());

test("a TCP connection that never logs in is closed after the login timeout, HEARTBEATs or not; a logged-in one stays", async () => {
  const [node] = cluster.nodes;
  const userId = newUserId();
  const loggedIn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId));
  const silent = await RawTcp.connect(node.tcp);
  const beating = await RawTcp.connect(node.tcp);
  beating.keepAlive(100);
  try {
    await silent.closedWithin(CLOSE_BOUND_MS, "the silent connection closed at the login timeout");
    await beating.closedWithin(CLOSE_BOUND_MS, "the connection that only beats closed at the login timeout");
    loggedIn.send(Code.HEARTBEAT);
    await loggedIn.next((f) => f.code === Code.HEARTBEAT, 3000, "a HEARTBEAT answer on the logged-in connection");
    expect(loggedIn.closed).toBe(false);
  } finally {
    for (const c of [loggedIn, silent, beating]) c.close();
  }
});

test("a plain /ws that never sends LOGIN is closed after the login timeout", async () => {
  const ws = new WebSocket(cluster.nodes[0].ws);
  let opened = false;
  let closed = false;
  ws.onopen = () => (opened = true);
  ws.onclose = () => (closed = true);
  try {
    await waitFor(() => opened || closed, 3000, "the upgrade");
    expect(opened).toBe(true);
    await waitFor(() => closed, CLOSE_BOUND_MS, "the plain /ws closed at the login timeout");
  } finally {
    ws.close();
  }
});
