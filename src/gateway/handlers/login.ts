// LOGIN: check the IM token, then take over the user's one session in the cluster, join the room,
// answer, and replay what the client missed (kept messages; room messages after its roomSeq).
import { Code } from "../../protocol/codes";
import { LoginBody } from "../../protocol/bodies";
import { ImError } from "../../protocol/errors";
import type { Gateway } from "../gateway";
import type { Session } from "../session";
import type { FrameHandler } from "./types";

export const UNAUTHORIZED = "bad or expired token, or not this user's";

export interface LoginRequest {
  appId: number;
  userId: number;
  roomId?: number;
  roomSeq?: number;
  nickName?: string;
  avatar?: string;
}

export const login: FrameHandler<typeof LoginBody> = {
  code: Code.LOGIN,
  schema: LoginBody,
  async handle(session, body, gateway) {
    const owner = await gateway.deps.tokens.verify(body.token, body.userId, body.appId);
    if (!owner) throw new ImError("unauthorized", UNAUTHORIZED);
    await completeLogin(session, { ...body, nickName: owner.nickName, avatar: owner.avatar }, gateway);
  },
};

/** The login steps after the token was checked (in-band LOGIN, or the WebSocket token upgrade). */
export async function completeLogin(session: Session, req: LoginRequest, gateway: Gateway): Promise<void> {
  if (session.user || session.closed) return;
  const roomId = req.roomId !== undefined && (await gateway.deps.isRoomLive(req.roomId)) ? req.roomId : undefined;
  // gone while we awaited: claiming now would kick the user's live older session for nothing
  if (session.closed) return;
  session.user = { appId: req.appId, userId: req.userId, roomId, nickName: req.nickName, avatar: req.avatar };
  session.hold();
  try {
    await takeOver(session, req, roomId, gateway);
  } catch (err) {
    // Half logged in (claimed, perhaps bound and in the room, deliveries held, a second LOGIN
    // ignored): nothing to go on from. The client reconnects; the transport's close runs
    // gateway.closed, whose presence unbind spares a newer login's binding.
    gateway.log.error({ err, connId: session.id, appId: req.appId, userId: req.userId, roomId }, "login failed after the session was claimed; closing it");
    // the client went meanwhile: its close's cleanup may have run before our bind
    if (session.closed) return gateway.closed(session);
    session.sendError("internal", "login failed; please reconnect");
    session.close();
  }
}

/** Make `session` its user's one session, join its room, answer, and replay what it missed. */
async function takeOver(session: Session, req: LoginRequest, roomId: number | undefined, gateway: Gateway): Promise<void> {
  const { deps } = gateway;
  // one session per user in the cluster: this one replaces any other, here or on another node
  gateway.sessions.claim(session);
  const previous = await deps.presence.bind(req.appId, req.userId, session.id);
  if (previous && previous.nodeId !== gateway.nodeId) {
    await deps.broker.publishToNode(previous.nodeId, { t: "kick", appId: req.appId, userId: req.userId, connId: previous.connId });
  }
  // the client may have gone while we awaited: undo what the close's cleanup could not yet see
  if (session.closed) return gateway.closed(session);

  const answer: Record<string, unknown> = { ...session.okBody(), nodeId: gateway.nodeId };
  let coveredSeq = 0;
  let catchUp = null;
  if (roomId !== undefined) {
    // join before reading the room's history, so nothing falls between the two
    await gateway.sessions.joinRoom(session, roomId);
    if (session.closed) return gateway.closed(session);
    if (req.roomSeq !== undefined) {
      catchUp = await deps.roomLog.since(roomId, req.roomSeq);
      answer.roomSeq = catchUp.latestSeq;
      answer.recovered = catchUp.recovered;
      coveredSeq = catchUp.latestSeq;
    } else {
      coveredSeq = await deps.roomLog.latestSeq(roomId);
      answer.roomSeq = coveredSeq;
    }
    gateway.roomJoined(roomId, coveredSeq);
  }
  session.send(Code.LOGIN, answer);
  deps.metrics.logins.inc();
  gateway.log.debug({ userId: req.userId, connId: session.id, roomId }, "logged in");

  if (catchUp) for (const entry of catchUp.entries) session.write(gateway.roomFrame(entry.seq, entry.msg));
  await gateway.replayKept(session);
  session.release(coveredSeq);
  gateway.sessions.roomReady(session);
  await gateway.presenceEvent("online", session);
}
