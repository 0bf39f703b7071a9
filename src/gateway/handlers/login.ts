// LOGIN: check the IM token, then take over the user's one session in the cluster, join the room,
// answer, and replay what the client missed (kept messages; room messages after its roomSeq).
import { Code } from "../../protocol/codes";
import { LoginBody } from "../../protocol/bodies";
import { findImError, ImError } from "../../protocol/errors";
import type { Gateway } from "../gateway";
import { replayKept, replayRoom } from "../replay";
import type { Session } from "../session";
import type { RoomLogEntry } from "../../router/broker";
import { sentBy } from "../../router/node-message";
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
    // "unavailable" (MySQL did not answer, say) tells the client that trying again is worth it
    session.sendError(findImError(err)?.reason ?? "internal", "login failed; please reconnect");
    session.close();
  }
}

/** Make `session` its user's one session, join its room, answer, and replay what it missed. */
async function takeOver(session: Session, req: LoginRequest, roomId: number | undefined, gateway: Gateway): Promise<void> {
  const { deps } = gateway;
  // one session per user in the cluster: this one replaces any other, here or on another node
  gateway.sessions.claim(session);
  session.boundAt = Date.now();
  // the login binds the user, then reads what was kept for it (reliable-delivery.ts): the kept mark
  // is read in the bind's script, once the binding is made, instead of a round trip of its own
  // after the answer, which the client's next frames would wait for
  const { previous, read } = await deps.presence.bind(req.appId, req.userId, session.id, deps.kept.markKeys(req.appId, req.userId));
  const keptMark = deps.kept.markFrom(read);
  // the older session on another node is kicked before the answer; the room is joined meanwhile,
  // in the same round trip to Redis (neither needs the other)
  const kicking =
    previous && previous.nodeId !== gateway.nodeId
      ? deps.broker.publishToNode(previous.nodeId, { t: "kick", appId: req.appId, userId: req.userId, connId: previous.connId })
      : null;
  // awaited below; handled now, so that a failure while the join runs is no "unhandled" one
  kicking?.catch(() => {});
  // the client may have gone while we awaited: undo what the close's cleanup could not yet see
  if (session.closed) return gateway.closed(session);

  const joined = roomId === undefined ? null : await joinRoom(session, roomId, req.roomSeq, gateway);
  await kicking;
  if (session.closed) return gateway.closed(session);
  // heartbeatSeconds: a client that beats less often than this node expects would be closed as idle
  const answer: Record<string, unknown> = { ...session.okBody(), nodeId: gateway.nodeId, heartbeatSeconds: gateway.settings.heartbeatMs / 1000, ...joined?.answer };
  session.send(Code.LOGIN, answer);
  deps.metrics.logins.inc();
  gateway.log.debug({ userId: req.userId, connId: session.id, roomId }, "logged in");

  await replayRoom(gateway, session, (joined?.missed ?? []).map((entry) => gateway.roomFrame(entry.seq, entry.msg)));
  await replayKept(gateway, session, keptMark);
  // a room that closed meanwhile took the session out: everything held goes, its close notice too
  const stillInRoom = joined !== null && session.user!.roomId === roomId;
  session.release(stillInRoom ? joined.covered : () => false);
  gateway.sessions.roomReady(session);
  // the online event (room membership) is queued while the client's next frames are handled: they
  // need not wait the event's linger and queue add. A session whose event could not be queued is
  // closed, as a login that failed (its room would not count it), once the answers due went out.
  // A LOGOUT handled meanwhile is as a client that drops its connection while its login runs: the
  // membership takes only a session that still holds the binding (rooms/membership.ts).
  gateway.presenceEvent("online", session).catch((err: unknown) => {
    gateway.log.error({ err, connId: session.id, appId: req.appId, userId: req.userId, roomId }, "the login's online event could not be queued; closing the session");
    session.closeAfterAnswers(() => session.sendError(findImError(err)?.reason ?? "internal", "login failed; please reconnect"));
  });
}

interface RoomJoin {
  /** What the LOGIN answer says about the room: roomSeq, and recovered when asked to recover. */
  answer: { roomSeq: number; recovered?: boolean };
  /** The room messages after the client's roomSeq, to replay before live ones. */
  missed: RoomLogEntry[];
  /** Whether a live room message held during the login is one the client has or gets replayed. */
  covered: (seq: number) => boolean;
}

/**
 * Join the room the login asked for, unless it closed since the first look: then the session stays
 * outside any room (null), as for a room that is not live.
 */
async function joinRoom(session: Session, roomId: number, roomSeq: number | undefined, gateway: Gateway): Promise<RoomJoin | null> {
  const { deps } = gateway;
  // Join before reading the room's history, so nothing falls between the two; and a close since
  // the first look may have sent its notice before this node held the room, so look again once it
  // does (the notice of a close after that look reaches us). The three go to Redis together, in
  // this order (each call sends its command before its first await), and Redis runs a connection's
  // commands in the order sent: one round trip instead of three, the same order. (On a cache miss
  // the look goes on to MySQL, still after the hold.) A history read for a room found closed is
  // dropped.
  const joining = gateway.sessions.joinRoom(session, roomId);
  const looking = deps.isRoomLive(roomId);
  const reading =
    roomSeq === undefined
      ? deps.roomLog.latestSeq(roomId).then((latestSeq) => ({ latestSeq, entries: [] as RoomLogEntry[], recovered: undefined }))
      : deps.roomLog.since(roomId, roomSeq);
  const [first, live, read] = await Promise.all([joining, looking, reading]);
  if (!live) {
    gateway.sessions.leaveRoom(session);
    session.user!.roomId = undefined;
    return null;
  }
  // the room closed while its history was read: its notice took the session out of it
  if (session.user!.roomId !== roomId) return null;
  // A roomSeq past the history's latest seq (every seq a client was sent is in the history) is from
  // before the room's seq started over: Redis lost its data (or the history of a room silent for a
  // week expired). The whole new history is missed, and what came before it may be lost.
  const restarted = roomSeq !== undefined && roomSeq > read.latestSeq;
  const history = restarted ? { ...(await deps.roomLog.since(roomId, 0)), recovered: false } : read;
  if (session.user!.roomId !== roomId) return null;
  const after = restarted ? 0 : roomSeq;
  // this node passes the room's messages on from `next` (in seq order, holding any that came after
  // a gap): the history before it is replayed, the rest comes live, so nothing comes twice or out
  // of order
  const next = gateway.roomJoined(roomId, history.latestSeq, first);
  const liveAfter = Math.min(history.latestSeq, next - 1);
  if (after === undefined) {
    // live from here: what came before is not for this client
    return { answer: { roomSeq: liveAfter }, missed: [], covered: (seq) => seq <= liveAfter };
  }
  const replayed = history.entries.filter((e) => e.seq < next);
  // a sender never gets its own room messages (PROTOCOL.md section 5), not in a replay either:
  // the client skipped their seqs, so its roomSeq is often before them
  const { appId, userId } = session.user!;
  const missed = replayed.filter((e) => !sentBy(e.msg, appId, userId));
  // a seq missing from the replay may still come live (its worker was late): it is not covered
  const replayedSeqs = new Set(replayed.map((e) => e.seq));
  return {
    answer: { roomSeq: liveAfter, recovered: history.recovered },
    missed,
    covered: (seq) => seq <= after || replayedSeqs.has(seq),
  };
}
