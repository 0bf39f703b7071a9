// The checks after every batch of cases: both nodes still answer /healthz and /readyz, a fresh
// control pair (one user on each node) still exchanges a private and a room message, and no
// session or room member of the batch outlived its connection.
import { BizCode, Code } from "../../src/protocol/codes";
import { imToken, newUserId, onlineStatus, roomOnlineCount } from "../../test/support/http-api";
import { RawTcp } from "../../test/support/raw-tcp";
import type { Run } from "./context";
import { request } from "./http";

export async function checkNodes(run: Run, label: string): Promise<void> {
  for (const node of run.cluster.nodes) {
    for (const path of ["/healthz", "/readyz"]) {
      const r = await request(node.http, "GET", path);
      if (r instanceof Error || r.status !== 200) run.tally.problem("node not healthy", `[${label}] ${node.nodeId} ${path}: ${r instanceof Error ? r.message : `${r.status} ${r.text.slice(0, 200)}`}`);
    }
  }
}

/** x on node A sends y on node B a private message, then a room message; y must get both. */
export async function checkControlPair(run: Run, label: string): Promise<void> {
  const [a, b] = run.cluster.nodes;
  const [x, y] = [newUserId(), newUserId()];
  const conns: RawTcp[] = [];
  try {
    const [cx, cy] = await Promise.all([RawTcp.loggedIn(a.tcp, x, await imToken(a, x), run.room), RawTcp.loggedIn(b.tcp, y, await imToken(b, y), run.room)]);
    conns.push(cx, cy);
    cx.send(Code.BIZ, { bizCode: BizCode.PRIVATE_CHAT, clientMsgId: "ctl-p", data: { objectId: y, content: "control private" } });
    await cx.next((f) => f.code === Code.ACK && f.body.clientMsgId === "ctl-p", 5000, "control private ACK");
    const got = await cy.next((f) => f.code === Code.BIZ && f.body.bizCode === BizCode.PRIVATE_CHAT, 5000, "control private delivery");
    run.othersMsgIds.push(got.body.msgId);
    cy.send(Code.ACK, { msgId: got.body.msgId });
    cx.send(Code.BIZ, { bizCode: BizCode.ROOM_CHAT, clientMsgId: "ctl-r", data: { roomId: run.room, content: "control room" } });
    await cx.next((f) => f.code === Code.ACK && f.body.clientMsgId === "ctl-r", 5000, "control room ACK");
    await cy.next((f) => f.code === Code.BIZ && f.body.bizCode === BizCode.ROOM_CHAT && JSON.parse(f.body.data).content === "control room", 5000, "control room delivery");
  } catch (err) {
    run.tally.problem("control pair failed", `[${label}] ${(err as Error).message}`);
  } finally {
    for (const c of conns) c.close();
  }
}

/**
 * Every connection of the batch is closed: none of its users may still be online, and the room may
 * have no member but the watcher. Looked at within 3 s, before a binding's TTL (2 heartbeats,
 * 10 s here) could hide a leak.
 */
export async function checkNoLeftovers(run: Run, label: string): Promise<void> {
  const [a, b] = run.cluster.nodes;
  const deadline = Date.now() + 3000;
  let online: number[] = [];
  let members = -1;
  try {
    do {
      online = [];
      for (const { userId } of run.users) if ((await onlineStatus(run.cluster, a, userId)).online) online.push(userId);
      members = await roomOnlineCount(b, run.room);
      if (online.length === 0 && members === 1) return;
      await Bun.sleep(200);
    } while (Date.now() < deadline);
    run.tally.problem("leftover sessions", `[${label}] 3 s after every connection closed: online users ${JSON.stringify(online)}, room ${run.room} has ${members} members (1 expected: the watcher)`);
  } catch (err) {
    run.tally.problem("leftover sessions", `[${label}] could not look: ${(err as Error).message}`);
  }
}
