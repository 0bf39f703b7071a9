// TCP case: a connection that usually logs in as a pool user (on its own node or the other), then
// writes up to 30 hostile frames; now and then a LOGOUT with a BIZ behind it, a framing violation,
// or 1,000-2,000 frames at once (past the inbox bound). The bytes go in one write, byte by byte or
// in random pieces. Then it resets the connection, half-closes it (the server must close too), or
// checks that a session still open answers a HEARTBEAT. The server may refuse anything and close,
// but never answer ERROR "internal" or send a frame that is not JSON.
import { Code, DEFAULT_APP_ID } from "../../src/protocol/codes";
import { encodeFrame } from "../../src/protocol/frame";
import { RawTcp } from "../../test/support/raw-tcp";
import type { Case } from "./context";
import { randomFrame, validBody, violation } from "./frames";

export async function tcpCase(c: Case): Promise<void> {
  const { rng } = c;
  const u = c.user();
  const node = rng.chance(0.5) ? u.node : c.node();
  const peer = c.user().userId;
  let conn: RawTcp;
  try {
    conn = await RawTcp.connect(node.tcp);
  } catch (err) {
    c.problem("connect failed", `tcp ${node.nodeId}: ${(err as Error).message}`);
    return;
  }
  try {
    const parts: Uint8Array[] = [];
    const login = rng.chance(0.85);
    if (login) parts.push(encodeFrame(Code.LOGIN, JSON.stringify({ appId: DEFAULT_APP_ID, userId: u.userId, token: u.token, ...(rng.chance(0.4) ? { roomId: c.run.room } : {}) })));
    for (let i = 1 + rng.int(30); i > 0; i--) parts.push(randomFrame(c, u, peer));
    if (rng.chance(0.1)) parts.push(encodeFrame(Code.LOGOUT, "{}"), encodeFrame(Code.BIZ, JSON.stringify(validBody(c, Code.BIZ, u, peer)())));
    if (rng.chance(0.08)) parts.push(violation(c));
    if (rng.chance(0.03)) for (let i = 1000 + rng.int(1000); i > 0; i--) parts.push(encodeFrame(rng.pick([Code.HEARTBEAT, Code.ACK, Code.BIZ]), "{}"));
    c.inputs("tcp frames", parts.length);
    write(c, conn, Buffer.concat(parts));

    const end = rng.int(5);
    if (end === 0) return conn.reset();
    if (end === 1) {
      conn.end();
      await conn.closedWithin(8000, "the server to close after our FIN").catch((e) => c.problem("half-close not closed", (e as Error).message));
    } else {
      await Bun.sleep(200 + rng.int(300));
      if (!conn.closed && login && conn.frames.some((f) => f.code === Code.LOGIN)) {
        conn.send(Code.HEARTBEAT);
        await conn.next((f) => f.code === Code.HEARTBEAT, 8000, "HEARTBEAT answer").catch((e) => {
          if (!conn.closed) c.problem("session stuck", `tcp user ${u.userId} on ${node.nodeId}, still open: ${(e as Error).message}`);
        });
      }
    }
    for (const f of conn.frames) {
      if (f.code === Code.ERROR && f.body.error === "internal") c.problem("ERROR internal", `tcp user ${u.userId}: ${JSON.stringify(f.body)}`);
      if (f.body.unparsable) c.problem("server frame not parsable", `tcp code ${f.code}: ${f.body.unparsable}`);
    }
  } finally {
    conn.close();
  }
}

/** In one write, byte by byte (small streams), or in random pieces of up to 200 bytes. */
function write(c: Case, conn: RawTcp, bytes: Uint8Array): void {
  const mode = c.rng.int(3);
  if (mode === 0 || bytes.length > 300_000) return conn.write(bytes);
  for (let at = 0; at < bytes.length; ) {
    const step = mode === 1 && bytes.length < 3000 ? 1 : 1 + c.rng.int(200);
    conn.write(bytes.subarray(at, at + step));
    at += step;
  }
}
