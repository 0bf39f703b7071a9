// A viewer of the run's room on node B for the whole run: every room message must come once and in
// seq order (a skipped seq is allowed: an intake that failed leaves one), and its connection, kept
// alive by heartbeats, must never be closed by the fuzzing of other connections.
import { BizCode, Code } from "../../src/protocol/codes";
import { imToken, newUserId } from "../../test/support/http-api";
import { RawTcp } from "../../test/support/raw-tcp";
import type { Run } from "./context";

export async function startWatcher(run: Run): Promise<{ stop(): string }> {
  const node = run.cluster.nodes[1];
  const userId = newUserId();
  const conn = await RawTcp.loggedIn(node.tcp, userId, await imToken(node, userId), run.room);
  // well inside the two silent heartbeat intervals after which the server closes a connection
  conn.keepAlive((run.cluster.heartbeatMs * 2) / 5);
  let last = 0;
  let seen = 0;
  const timer = setInterval(() => {
    for (const f of conn.frames) {
      if (f.taken) continue;
      f.taken = true;
      if (f.code !== Code.BIZ || f.body.bizCode !== BizCode.ROOM_CHAT) continue;
      const seq = JSON.parse(f.body.data).seq;
      seen++;
      if (!(seq > last)) run.tally.problem("room seq out of order", `watcher got seq ${seq} after ${last}`);
      last = Math.max(last, seq);
    }
    if (conn.closed) {
      run.tally.problem("room watcher closed", `${userId} on ${node.nodeId}: ${conn.transcript().slice(-300)}`);
      clearInterval(timer);
    }
  }, 200);
  return {
    stop() {
      clearInterval(timer);
      conn.close();
      return `room watcher saw ${seen} room messages, last seq ${last}`;
    },
  };
}
