// WebSocket transport (Bun.serve): text envelopes or binary frames, and room fan-out through
// Bun's pub/sub topics (one per room and wire form). Room messages are published together, up to
// ROOM_BATCH_MS late: what is published in one tick reaches each subscriber in one corked write.
import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import { LoginBody } from "../protocol/bodies";
import { Code } from "../protocol/codes";
import { parseEnvelope } from "../protocol/envelope";
import { ErrorReason, httpErrorBody } from "../protocol/errors";
import { parseBody, scanFrames } from "../protocol/frame";
import { RoomFlushClock, type Connection, type OutFrame, type RoomBroadcaster, type WireForm } from "./connection";
import type { Gateway } from "./gateway";
import { UNAUTHORIZED, completeLogin, type LoginRequest } from "./handlers/login";
import type { Session } from "./session";
import type { TokenOwner } from "../presence/tokens";

/**
 * Bun queues up to this much per socket; past it, a send() or a topic publish is dropped and
 * (closeOnBackpressureLimit) the socket is closed. A client that cannot keep up must not silently
 * miss room messages: closed, it reconnects and recovers them with roomSeq.
 */
const BACKPRESSURE_LIMIT = 4 * 1024 * 1024;
/** What a text envelope may add to its body: `{"code":…,"body":…}`, a magic and a len field, spacing. */
const TEXT_ENVELOPE_BYTES = 256;

const topic = (roomId: number, form: WireForm) => `room:${roomId}:${form}`;

/**
 * One client connection. Made at the upgrade and carried as the socket's `data`, so a connection
 * is one object (no per-socket closures or wrappers: idle connections are most of a node's memory).
 */
class WsConnection implements Connection {
  readonly transport = "ws" as const;
  /** Set as the socket opens. */
  ws!: ServerWebSocket<WsData>;
  session: Session | null = null;
  /** Text until the client has sent binary (PROTOCOL.md section 2). */
  form: WireForm = "text";
  roomId: number | null = null;
  private closing = false;

  constructor(
    /** The client's address (Fly-Client-IP behind fly's proxy, when trusted). */
    readonly ip: string,
    /** Set when the upgrade carried a valid token: the login completes as the socket opens. Cleared then. */
    public login: LoginRequest | null,
    private readonly owner: WsTransport,
  ) {}

  get topic(): string | null {
    return this.roomId === null ? null : topic(this.roomId, this.form);
  }

  write(frame: OutFrame): void {
    if (this.closing) return;
    // room messages fanned out before this frame must not reach the client after it
    if (this.roomId !== null) this.owner.publishWaiting();
    // -1: queued under backpressure (do not resend); 0: dropped, the client cannot keep up (Bun
    // closes it too; the close handler runs the cleanup)
    const r = this.form === "text" ? this.ws.send(frame.text) : this.ws.send(frame.binary);
    if (r === 0) {
      this.owner.gateway.slowClientClosed(this.session, "ws", this.ws.getBufferedAmount());
      this.close();
    }
  }

  unsentBytes(): number {
    return this.closing ? 0 : this.ws.getBufferedAmount();
  }

  // a room message waiting to be published goes to the topics as they are when it was fanned out
  useForm(form: WireForm): void {
    if (form === this.form) return;
    this.owner.publishWaiting();
    const before = this.topic;
    this.form = form;
    if (before !== null) {
      this.ws.unsubscribe(before);
      this.ws.subscribe(this.topic!);
    }
  }

  subscribeRoom(roomId: number): boolean {
    this.owner.publishWaiting();
    this.roomId = roomId;
    this.ws.subscribe(this.topic!);
    return true;
  }

  unsubscribeRoom(): void {
    this.owner.publishWaiting();
    const t = this.topic;
    this.roomId = null;
    if (t !== null && !this.closing) this.ws.unsubscribe(t);
  }

  close(): void {
    if (this.closing) return;
    if (this.roomId !== null) this.owner.publishWaiting();
    this.closing = true;
    this.ws.close(1000, "bye");
  }
}

/** A socket's data is its connection. */
export type WsData = WsConnection;

interface WaitingPublish {
  roomId: number;
  frame: OutFrame;
  exclude?: Connection;
}

export class WsTransport implements RoomBroadcaster {
  private server: Server<WsData> | null = null;
  /** Room messages fanned out but not yet published, in order. */
  private waiting: WaitingPublish[] = [];
  private readonly roomClock = new RoomFlushClock(() => this.publishWaiting());

  constructor(readonly gateway: Gateway) {
    gateway.broadcaster = this;
  }

  private onFanOut(n: number): void {
    this.gateway.deps.metrics.frameOut(Code.BIZ, n);
    this.gateway.deps.metrics.deliveries.labels("room").inc(n);
  }

  attach(server: Server<WsData>): void {
    this.server = server;
  }

  /**
   * Handle a request for /ws: an upgrade with ?token=&userId= is checked first (401 when bad);
   * a plain upgrade must send LOGIN within the login timeout. `q`: the query of the request's URL.
   */
  async upgrade(req: Request, q: URLSearchParams, server: Server<WsData>): Promise<Response | undefined> {
    const trusted = this.gateway.settings.trustFlyClientIp ? req.headers.get("fly-client-ip") : null;
    const ip = trusted ?? server.requestIP(req)?.address ?? "unknown";
    const refusal = this.gateway.admission(ip);
    if (refusal) return this.refuse(refusal, `connection refused: ${refusal}`);
    let login: LoginRequest | null = null;
    if (q.has("token")) {
      // an empty value is no number (Number("") would be 0)
      const num = (k: string) => {
        const v = q.get(k);
        // decimal digits only, as for the HTTP API's query strings ("0x2a", "4.2e1", " 42" are no number)
        return v === null ? undefined : /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
      };
      const parsed = LoginBody.safeParse({
        token: q.get("token"),
        userId: num("userId"),
        appId: num("appId"),
        roomId: num("roomId"),
        roomSeq: num("roomSeq"),
      });
      if (!parsed.success) return this.refuse("bad_request", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      let owner: TokenOwner | null;
      try {
        owner = await this.gateway.deps.tokens.verify(parsed.data.token, parsed.data.userId, parsed.data.appId);
      } catch (err) {
        // Redis failed the read: the client may try again (a TCP LOGIN gets ERROR internal the same way)
        this.gateway.log.error({ err }, "checking a WebSocket upgrade's token failed");
        return this.refuse("internal", "the token could not be checked; try again");
      }
      if (!owner) return this.refuse("unauthorized", UNAUTHORIZED);
      const { token: _token, ...rest } = parsed.data;
      login = { ...rest, nickName: owner.nickName, avatar: owner.avatar };
    }
    if (server.upgrade(req, { data: new WsConnection(ip, login, this) })) return undefined;
    return this.refuse("bad_request", "expected a WebSocket upgrade");
  }

  /** An upgrade refused, in the HTTP form of the error vocabulary (as http/errors.ts answers), and counted. */
  private refuse(reason: ErrorReason, message: string): Response {
    this.gateway.deps.metrics.refused.labels(reason).inc();
    return Response.json(httpErrorBody(reason, message), { status: ErrorReason[reason] });
  }

  publish(roomId: number, frame: OutFrame, exclude?: Connection): void {
    if (!this.server) return;
    this.waiting.push({ roomId, frame, exclude });
    this.roomClock.request();
  }

  /**
   * Publish the waiting room messages now (also before any socket joins, leaves or changes topic).
   * Returns the most subscribers one message went to: uWS sends what is published in one tick to a
   * subscriber in one write, so that is how many writes this makes.
   */
  publishWaiting(): number {
    if (this.waiting.length === 0) return 0;
    const waiting = this.waiting;
    this.waiting = [];
    let writes = 0;
    for (const w of waiting) writes = Math.max(writes, this.publishNow(w.roomId, w.frame, w.exclude));
    return writes;
  }

  /** Returns how many subscribers it published to. */
  private publishNow(roomId: number, frame: OutFrame, exclude?: Connection): number {
    const server = this.server!;
    let reached = 0;
    for (const form of ["text", "binary"] as const) {
      const t = topic(roomId, form);
      const subscribers = server.subscriberCount(t);
      if (subscribers === 0) continue;
      const payload = form === "text" ? frame.text : frame.binary;
      // publish from the sender's own socket to leave it out (while it is open: a closed socket
      // publishes nothing); the result is the worst subscriber's and is never a reason to retry
      if (exclude instanceof WsConnection && exclude.topic === t && exclude.ws.readyState === 1) {
        exclude.ws.publish(t, payload);
        this.onFanOut(subscribers - 1);
        reached += subscribers - 1;
      } else {
        server.publish(t, payload);
        this.onFanOut(subscribers);
        reached += subscribers;
      }
    }
    return reached;
  }

  handlers(): WebSocketHandler<WsData> {
    const gateway = this.gateway;
    const maxBody = gateway.settings.maxBodyBytes;
    const maxText = maxBody + TEXT_ENVELOPE_BYTES;
    return {
      // a binary message may carry several frames; a text message is checked against maxText below
      maxPayloadLength: 16 * (maxBody + 10),
      backpressureLimit: BACKPRESSURE_LIMIT,
      // Bun then defers the close to the next loop turn and calls close() below, like any close
      closeOnBackpressureLimit: true,
      // we reap silent clients ourselves (idleTimeout is re-armed by our own sends)
      idleTimeout: 0,
      sendPings: false,
      open(ws) {
        const conn = ws.data;
        conn.ws = ws;
        // looked at before the upgrade's token check too, but the node may have begun draining or
        // filled up since: only the connect rate is not counted twice
        const session = gateway.accept(conn, conn.ip, true);
        conn.session = session;
        const login = conn.login;
        conn.login = null;
        if (login) session.enqueue(() => completeLogin(session, login, gateway));
      },
      message(ws, message) {
        const session = ws.data.session!;
        if (typeof message === "string") {
          // too long for a body of maxBody: a violation, like an oversized binary frame. A string of
          // n UTF-16 units is n to 3n UTF-8 bytes, so most need no byte count
          if (message.length > maxText || (message.length * 3 > maxText && Buffer.byteLength(message) > maxText)) {
            return session.violation(`text message over ${maxText} bytes`, "text");
          }
          const env = parseEnvelope(message);
          if (env.ok) session.receive(env.code, { ok: true, value: env.body }, "text", message.length);
          else if (env.fatal || env.code === undefined) session.violation(env.reason, "text");
          else session.receive(env.code, { ok: false, reason: env.reason }, "text", message.length);
          return;
        }
        // a binary message holds whole frames only
        const scan = scanFrames(message, maxBody);
        for (const f of scan.frames) session.receive(f.code, parseBody(f.body), "binary", f.body.length);
        if (scan.violation !== null) session.violation(scan.violation, "binary");
        else if (scan.rest < message.length) session.violation("binary message ends inside a frame", "binary");
      },
      close(ws) {
        if (ws.data.session) gateway.closed(ws.data.session);
      },
    };
  }
}
