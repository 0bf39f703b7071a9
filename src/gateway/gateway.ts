// The session layer of one node: accepts connections from both transports, routes node messages to
// local sessions, reaps silent connections and drains on shutdown.
import type { Config } from "../config";
import type { Logger } from "../log";
import { Code } from "../protocol/codes";
import type { BizIntake } from "../messaging/intake";
import type { KeptStore } from "../messaging/kept-store";
import type { ReliableDelivery } from "../messaging/reliable-delivery";
import { TickBatcher } from "../batching/tick-batcher";
import type { PresenceEvent } from "../queues/jobs";
import type { Presence } from "../presence/presence";
import type { ImTokens } from "../presence/tokens";
import type { Queues } from "../queues/queues";
import type { Broker } from "../router/broker";
import { deliveryBodyJson, dispatchNodeMessage, roomBodyJson, sentBy, type Delivery, type NodeMessage, type RoomMessage } from "../router/node-message";
import type { RoomLog } from "../router/room-log";
import type { RoomNodes } from "../router/room-nodes";
import type { Metrics } from "../metrics/metrics";
import type { ErrorReason } from "../protocol/errors";
import { ConnectRateLimiter } from "./limits";
import { OutFrame, type Connection, type RoomBroadcaster, type Transport } from "./connection";
import { LocalSessions, kick } from "./local-sessions";
import { RoomOrder } from "./room-order";
import { Session } from "./session";

export interface GatewayDeps {
  tokens: ImTokens;
  presence: Presence;
  broker: Broker;
  roomNodes: RoomNodes;
  roomLog: RoomLog;
  queues: Queues;
  intake: BizIntake;
  reliable: ReliableDelivery;
  kept: KeptStore;
  metrics: Metrics;
  /** Whether the room is live (a Redis cache, up to 10 minutes old); rejects if Redis fails, or MySQL on a cache miss (as `unavailable`). */
  isRoomLive(roomId: number): Promise<boolean>;
}

/** How long a room message waits for the ones before it (see room-order.ts). */
const ROOM_GAP_WAIT_MS = 1000;
/** Presence events of this many ms share one job: a job's fixed cost is most of an event's (intake.ts). */
const PRESENCE_LINGER_MS = 10;

export class Gateway {
  readonly sessions: LocalSessions;
  /** Set by the WebSocket transport: fan-out of room messages through its pub/sub topics. */
  broadcaster: RoomBroadcaster | null = null;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private readonly cleanups = new Set<Promise<void>>();
  private readonly connectLimiter: ConnectRateLimiter;
  private readonly presenceEvents = { online: this.presenceBatcher("online"), offline: this.presenceBatcher("offline") };
  private readonly roomOrder = new RoomOrder<RoomMessage>(
    ROOM_GAP_WAIT_MS,
    (roomId, seq, msg) => this.fanOutRoom(roomId, seq, msg),
    (roomId, fromSeq, toSeq) =>
      this.deps.roomLog.between(roomId, fromSeq, toSeq).catch((err: unknown) => {
        this.log.error({ err, roomId, fromSeq, toSeq }, "room history could not be read: messages this node missed are skipped");
        return [];
      }),
  );
  /** Set when the node drains: no new connections are admitted. */
  draining = false;

  constructor(
    readonly nodeId: string,
    readonly settings: Config["gateway"],
    readonly deps: GatewayDeps,
    readonly log: Logger,
  ) {
    this.sessions = new LocalSessions(deps.roomNodes, log);
    this.connectLimiter = new ConnectRateLimiter(settings.ipConnectPerMin);
  }

  /**
   * Why a new connection from `ip` is refused, or null to admit it. `rateCounted`: its connect
   * rate was counted already (a WebSocket upgrade, looked at before its token check).
   */
  admission(ip: string, rateCounted = false): ErrorReason | null {
    if (this.draining) return "draining";
    if (this.sessions.size >= this.settings.maxConnections) return "too_many_connections";
    if (!rateCounted && !this.connectLimiter.admit(ip)) return "rate_limited";
    return null;
  }

  /**
   * A transport accepted a connection: admitted (see admission), or refused here with one ERROR. A refused
   * connection is never among the sessions: its close may be reported before this returns (Bun
   * runs a TCP socket's close callback inside end()), when the transport does not know the session yet.
   */
  accept(conn: Connection, ip: string, rateCounted = false): Session {
    const refusal = this.admission(ip, rateCounted);
    const session = new Session(conn, this);
    if (refusal) {
      session.sendError(refusal, `connection refused: ${refusal}`);
      session.close();
      return session;
    }
    this.sessions.add(session);
    return session;
  }

  /** Connections by transport (for metrics). */
  connectionCounts(): Record<"tcp" | "ws", number> {
    const counts = { tcp: 0, ws: 0 };
    for (const s of this.sessions.all) counts[s.conn.transport]++;
    return counts;
  }

  /** A transport reports that a connection is gone: clean up presence and membership. */
  closed(session: Session): void {
    session.close();
    const wasCurrent = this.sessions.remove(session);
    if (!session.user) return;
    const { appId, userId } = session.user;
    // two independent steps: a binding that could not be removed expires with its TTL, but a lost
    // offline event would leave the user counted in its room for the room's whole life
    const cleanup = Promise.allSettled([
      // compare-and-delete: a newer login's binding is never erased by this late close
      this.deps.presence.unbind(appId, userId, session.id),
      this.presenceEvent("offline", session),
    ])
      .then(([unbound, queued]) => {
        for (const [step, r] of [["unbind", unbound], ["offline event", queued]] as const) {
          if (r.status === "rejected") this.log.error({ err: r.reason, userId, connId: session.id, wasCurrent, step }, "session cleanup failed");
        }
      })
      .finally(() => this.cleanups.delete(cleanup));
    this.cleanups.add(cleanup);
  }

  /**
   * A connection is closed because its client does not read: more is unsent than its transport
   * allows. No ERROR can tell the client (it would wait behind all the rest), and its close looks
   * like any other, so this line and im_slow_clients_closed_total are what show it. Its cleanup
   * (presence, room membership) runs when the transport reports the close, as for every close.
   * (Bun closes a WebSocket room subscriber over its bound by itself, out of our sight: that close
   * shows as code 1006, like a client that vanished.)
   */
  slowClientClosed(session: Session | null, transport: Transport, unsentBytes: number): void {
    this.deps.metrics.slowClientsClosed.labels(transport).inc();
    const u = session?.user;
    this.log.warn({ connId: session?.id, userId: u?.userId, roomId: u?.roomId, transport, unsentBytes }, "client does not read what it is sent: closing it");
  }

  /** Queue this session's im-online / im-offline event (the events of 10 ms share one job). */
  async presenceEvent(kind: "online" | "offline", session: Session): Promise<void> {
    const u = session.user!;
    const event = { appId: u.appId, userId: u.userId, roomId: u.roomId, sessionId: session.id, nodeId: this.nodeId, time: Date.now() };
    await this.presenceEvents[kind].add([event]);
  }

  private presenceBatcher(kind: "online" | "offline"): TickBatcher<PresenceEvent> {
    return new TickBatcher(async (events) => void (await this.deps.queues[kind].add(kind, { events })), 1000, PRESENCE_LINGER_MS);
  }

  /**
   * This node's room members and its place in its rooms' node sets are gone: another node took it
   * for dead (it stalled) and removed them ("reaped"), or Redis lost its data ("lost"). Hold the
   * rooms again, pass on the room messages published while it did not (from the rooms' histories),
   * and queue an online event for every logged-in session, which puts the members back (once its
   * binding is there again: a heartbeat that finds it gone makes it again). After a loss the rooms'
   * seqs started over: their order is followed afresh, from the new histories' start.
   */
  async reannounce(cause: "reaped" | "lost"): Promise<void> {
    if (cause === "lost") this.roomOrder.restart();
    await Promise.all(this.sessions.roomIds().map((roomId) => this.deps.roomNodes.hold(roomId)));
    await this.roomOrder.catchUp();
    const live = [...this.sessions.all].filter((s) => s.user !== null && !s.closed);
    await Promise.all(live.map((s) => this.presenceEvent("online", s)));
  }

  /**
   * True (and noted) when the session's binding was refreshed a quarter interval ago or longer: it
   * lives 2 intervals, so refreshing it more often (a heartbeat flood, a replay's every page) costs
   * Redis for nothing.
   */
  bindingRefreshDue(session: Session): boolean {
    const now = Date.now();
    if (now - session.bindingRefreshedAt < this.settings.heartbeatMs / 4) return false;
    session.bindingRefreshedAt = now;
    return true;
  }

  /**
   * A login joined a room whose history it read up to `lastSeq`; `first`: as the room's first local
   * member. Returns the seq this node passes on next (RoomOrder.joined): the login's replay ends
   * before it.
   */
  roomJoined(roomId: number, lastSeq: number, first: boolean): number {
    return this.roomOrder.joined(roomId, lastSeq, first);
  }

  roomFrame(seq: number, msg: RoomMessage): OutFrame {
    return new OutFrame(Code.BIZ, roomBodyJson(msg, seq));
  }

  /** This node's channel was not listened to for a while: pass on the room messages published meanwhile. */
  catchUpRooms(): Promise<void> {
    return this.roomOrder.catchUp();
  }

  /** Handle one message from this node's channel. */
  onNodeMessage(msg: NodeMessage): void {
    const outcome = dispatchNodeMessage(msg, {
      deliver: (deliveries) => this.deliver(deliveries),
      room: (roomId, seq, m) => this.roomOrder.push(roomId, seq, m),
      kick: (appId, userId, connId) => {
        const s = this.sessions.get(appId, userId);
        if (s && s.id === connId) kick(s);
      },
    });
    if (outcome === "unknown") this.log.warn({ msg }, "unknown node message");
  }

  private deliver(deliveries: Delivery[]): void {
    let delivered = 0;
    let dropped = 0;
    for (const d of deliveries) {
      // not here any more, or too much held for it (Session.deliver): the ACK check resends or keeps it
      const s = this.sessions.get(d.appId, d.userId);
      if (!s) continue;
      if (s.deliver(deliveryFrame(d))) {
        delivered++;
        this.log.debug({ msgId: d.msgId, userId: d.userId }, "delivered");
      } else {
        dropped++;
        this.log.debug({ msgId: d.msgId, userId: d.userId }, "not held: the client does not read its login replay");
      }
    }
    this.deps.metrics.deliveries.labels("reliable").inc(delivered);
    if (dropped > 0) this.deps.metrics.deliveriesNotHeld.inc(dropped);
  }

  private fanOutRoom(roomId: number, seq: number, msg: RoomMessage): void {
    const frame = this.roomFrame(seq, msg);
    const senderId = msg.data.userId;
    let direct = 0;
    for (const s of this.sessions.directMembers(roomId)) {
      if (!sentBy(msg, s.user!.appId, s.user!.userId)) {
        s.deliver(frame, seq);
        direct++;
      }
    }
    this.deps.metrics.deliveries.labels("room").inc(direct);
    const sender = this.sessions.get(msg.appId, senderId);
    const exclude = sender?.roomViaTransport && sender.user?.roomId === roomId ? sender.conn : undefined;
    this.broadcaster?.publish(roomId, frame, exclude);
    if (msg.closesRoom) {
      for (const s of this.sessions.roomMembers(roomId)) {
        this.sessions.leaveRoom(s);
        s.user!.roomId = undefined;
      }
    }
  }

  /** Close connections silent for 2 heartbeat intervals, and those that never logged in in time. */
  startIdleSweep(): void {
    const period = Math.max(100, Math.min(1000, this.settings.heartbeatMs / 4));
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      for (const s of this.sessions.all) {
        const expired = s.user ? now - s.lastInboundAt >= this.settings.idleMs : now - s.openedAt >= this.settings.loginTimeoutMs;
        if (expired) s.close();
      }
      this.roomOrder.forgetRooms((roomId) => this.sessions.roomMembers(roomId).length > 0);
    }, period);
  }

  /**
   * Refuse new connections; to each client, in turn over DRAIN_SPREAD_MS: answer the frames it
   * sent so far (its accepted messages get their ACKs), tell it to reconnect elsewhere (LOGOUT with
   * reason "draining") and close it. The clients not told yet are served as before. Then wait up to
   * `graceMs` for the transports to report the closes and for the cleanups (presence, offline
   * events) to finish.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.draining = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const all = [...this.sessions.all];
    const started = Date.now();
    for (let i = 0; i < all.length; i++) {
      // session i's turn is i/n of the spread in; short waits are left to batch with the next ones
      const wait = started + (this.settings.drainSpreadMs * i) / all.length - Date.now();
      if (wait >= 5) await Bun.sleep(wait);
      const s = all[i];
      s.closeAfterAnswers(() => {
        if (s.user) s.send(Code.LOGOUT, { ...s.okBody(), reason: "draining" });
      });
    }
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await Bun.sleep(20);
    // only now: a session waiting for its answers still gets room messages, and forgotten order
    // would pass on one that came after a gap at once, its client's roomSeq then past the gap,
    // which its recovery at the next login would never fill
    this.roomOrder.clear();
    await Promise.allSettled([...this.cleanups]);
  }
}

export function deliveryFrame(d: Delivery): OutFrame {
  return new OutFrame(Code.BIZ, deliveryBodyJson(d));
}
