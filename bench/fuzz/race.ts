// Race case: one pool user logs in 2-4 times at once, on both nodes, over TCP and WebSocket, with
// and without the room; each connection is cut (closed or reset) after up to 40 ms, often in the
// middle of its login. One live session per user must win and nothing may be left behind: the
// batch's leftover check (checks.ts) looks for sessions and room members that outlived them all.
import { Code, DEFAULT_APP_ID } from "../../src/protocol/codes";
import { RawTcp } from "../../test/support/raw-tcp";
import type { Case } from "./context";

export async function raceCase(c: Case): Promise<void> {
  const { rng } = c;
  const u = c.user();
  const plans = Array.from({ length: 2 + rng.int(3) }, () => ({ node: c.node(), delay: rng.int(40), withRoom: rng.chance(0.7), tcp: rng.chance(0.5), reset: rng.chance(0.5) }));
  c.inputs("race logins", plans.length);
  await Promise.all(
    plans.map(async ({ node, delay, withRoom, tcp, reset }) => {
      const roomId = withRoom ? c.run.room : undefined;
      if (tcp) {
        const conn = await RawTcp.connect(node.tcp);
        conn.send(Code.LOGIN, { appId: DEFAULT_APP_ID, userId: u.userId, token: u.token, roomId });
        await Bun.sleep(delay);
        if (reset) conn.reset();
        else conn.close();
      } else {
        const ws = new WebSocket(`${node.ws}?token=${encodeURIComponent(u.token)}&userId=${u.userId}${roomId ? `&roomId=${roomId}` : ""}`);
        ws.onerror = () => {};
        await Bun.sleep(delay);
        if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close();
        else ws.close();
      }
    }),
  );
}
