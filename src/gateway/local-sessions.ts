// This node's sessions: every open connection, the one session of each logged-in user, and the
// members of each room. The only place a socket can be found for a user.
import type { Logger } from "../log";
import type { RoomNodes } from "../router/room-nodes";
import type { Session } from "./session";

interface LocalRoom {
  members: Set<Session>;
  /** Members written one by one (TCP, and WebSockets until their login replay is done). */
  direct: Set<Session>;
}

export class LocalSessions {
  readonly all = new Set<Session>();
  /** By appId, then userId: number keys, so no key string is kept per session. */
  private readonly byUser = new Map<number, Map<number, Session>>();
  private readonly rooms = new Map<number, LocalRoom>();

  constructor(
    private readonly roomNodes: RoomNodes,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.all.size;
  }

  add(session: Session): void {
    this.all.add(session);
  }

  /** Make `session` its user's session on this node; an older one here is kicked. */
  claim(session: Session): void {
    const { appId, userId } = session.user!;
    let app = this.byUser.get(appId);
    if (!app) {
      app = new Map();
      this.byUser.set(appId, app);
    }
    const older = app.get(userId);
    app.set(userId, session);
    if (older && older !== session) kick(older);
  }

  get(appId: number, userId: number): Session | undefined {
    return this.byUser.get(appId)?.get(userId);
  }

  /**
   * Add a logged-in session to a room; the first local member makes this node hold the room.
   * Resolves to whether it was the first (the node did not follow the room before).
   */
  async joinRoom(session: Session, roomId: number): Promise<boolean> {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = { members: new Set(), direct: new Set() };
      this.rooms.set(roomId, room);
    }
    const first = room.members.size === 0;
    room.members.add(session);
    room.direct.add(session);
    if (first) await this.roomNodes.hold(roomId);
    return first;
  }

  /** The login replay is done: let the transport fan room messages out to it, if it can. */
  roomReady(session: Session): void {
    const roomId = session.user?.roomId;
    if (roomId === undefined || session.closed) return;
    const room = this.rooms.get(roomId);
    if (!room?.members.has(session)) return;
    if (session.conn.subscribeRoom(roomId)) {
      session.roomViaTransport = true;
      room.direct.delete(session);
    }
  }

  /** The sessions of a room that the node writes to one by one. */
  directMembers(roomId: number): Iterable<Session> {
    return this.rooms.get(roomId)?.direct ?? [];
  }

  /** Take a session out of its room; the last local member releases the room. */
  leaveRoom(session: Session): void {
    const roomId = session.user?.roomId;
    if (roomId === undefined) return;
    const room = this.rooms.get(roomId);
    if (room?.members.delete(session)) {
      room.direct.delete(session);
      if (session.roomViaTransport) session.conn.unsubscribeRoom(roomId);
      session.roomViaTransport = false;
      if (room.members.size === 0) {
        this.rooms.delete(roomId);
        this.roomNodes.release(roomId).catch((err) => this.log.error({ err, roomId }, "could not release room"));
      }
    }
  }

  /** The rooms this node holds (has members in). */
  roomIds(): number[] {
    return [...this.rooms.keys()];
  }

  /** Every local member of a room (for closing it). */
  roomMembers(roomId: number): Session[] {
    return [...(this.rooms.get(roomId)?.members ?? [])];
  }

  /** Forget a closed session. True when it was its user's current session here. */
  remove(session: Session): boolean {
    this.all.delete(session);
    this.leaveRoom(session);
    if (!session.user) return false;
    const { appId, userId } = session.user;
    const app = this.byUser.get(appId);
    if (app?.get(userId) !== session) return false;
    app.delete(userId);
    if (app.size === 0) this.byUser.delete(appId);
    return true;
  }
}

/** A newer login of the user took over: the answers due go out, then ERROR kicked, then the close. */
export function kick(session: Session): void {
  session.closeAfterAnswers(() => session.sendError("kicked", "logged in elsewhere"));
}
