// A login's replay of what its client missed (kept messages, a room's messages since its roomSeq),
// paced by the client's reading: written at once, a long backlog could pass the transport's bound
// for a slow reader, and the cut connection would replay it all again at every login, never
// getting through.
import type { MarkState } from "../messaging/kept-marks";
import type { OutFrame } from "./connection";
import { deliveryFrame, type Gateway } from "./gateway";
import { kick } from "./local-sessions";
import type { Session } from "./session";

/**
 * The next page or frame is written only once the client has less than this unread; well under
 * the transports' bounds (TCP 8 MiB, WebSocket 4 MiB), above one page of small messages. Polled:
 * the wait is rare (a large backlog to a slow reader) and short.
 */
const REPLAY_UNSENT_MAX_BYTES = 1024 * 1024;
const REPLAY_POLL_MS = 10;

/**
 * Deliver a user's kept messages, in msgId order, each ACK-tracked again, a page once the client
 * has read most of the one before. `mark`: the user's kept mark, read once the binding was made
 * (a login's bind reads it: KeptStore.markKeys); read here if not given.
 */
export async function replayKept(gateway: Gateway, session: Session, mark?: MarkState): Promise<void> {
  const { deps, log } = gateway;
  const { appId, userId } = session.user!;
  const checks: Array<Promise<void>> = [];
  for await (const page of deps.kept.replay(appId, userId, mark)) {
    if (!(await clientReading(gateway, session))) break;
    const { checked } = await deps.reliable.replay(page, (replayed) => {
      for (const d of replayed) session.write(deliveryFrame(d));
      deps.metrics.deliveries.labels("reliable").inc(replayed.length);
      if (log.isLevelEnabled("debug")) log.debug({ userId, msgIds: replayed.map((d) => d.msgId) }, "replayed at login");
    });
    checks.push(checked);
  }
  await Promise.all(checks);
}

/**
 * Write a room's missed messages (a login's roomSeq recovery) past the hold, a frame only once the
 * client has read most of what was written before it.
 */
export async function replayRoom(gateway: Gateway, session: Session, frames: OutFrame[]): Promise<void> {
  for (const frame of frames) {
    if (!(await clientReading(gateway, session))) return;
    session.write(frame);
  }
}

/**
 * Resolves once the session's client has less than REPLAY_UNSENT_MAX_BYTES left to read; false if
 * the session closed meanwhile, or was taken over. A replay holds up the frames that came after
 * its LOGIN, HEARTBEATs too, so meanwhile the user's binding is kept alive here as they would
 * (at most once a quarter interval): a slow reader's long replay must not let it lapse.
 */
async function clientReading(gateway: Gateway, session: Session): Promise<boolean> {
  for (;;) {
    if (session.closed || !(await keepBound(gateway, session))) return false;
    if (session.conn.unsentBytes() <= REPLAY_UNSENT_MAX_BYTES) return true;
    await Bun.sleep(REPLAY_POLL_MS);
  }
}

/**
 * Refresh the session's binding if due; false when a newer login holds it (the session is kicked).
 * A binding the login made less than a quarter interval ago is fresh (it has its whole TTL): a
 * login's replay does not refresh it before its first page or room message, a round trip to Redis
 * for nothing. (A HEARTBEAT still refreshes at once: Gateway.bindingRefreshDue alone decides for it.)
 */
async function keepBound(gateway: Gateway, session: Session): Promise<boolean> {
  if (Date.now() - session.boundAt < gateway.settings.heartbeatMs / 4) return true;
  if (!gateway.bindingRefreshDue(session)) return true;
  const { appId, userId } = session.user!;
  if ((await gateway.deps.presence.refresh(appId, userId, session.id)) !== "taken") return true;
  kick(session);
  return false;
}
