// One client connection above its transport: login state, the in-order handling of its frames,
// and what it is sent. A handler never knows whether the client came over TCP or WebSocket.
import { Code } from "../protocol/codes";
import { ImError, errorBody, type ErrorReason } from "../protocol/errors";
import type { ParsedBody } from "../protocol/frame";
import type { Sender } from "../messaging/biz/types";
import type { Connection, OutFrame, WireForm } from "./connection";
import { OutFrame as Frame } from "./connection";
import type { Gateway } from "./gateway";
import { handlerFor } from "./handlers/registry";
import { TokenBucket } from "./limits";

type Inbound =
  | { kind: "frame"; code: number; body: ParsedBody; form: WireForm }
  | { kind: "task"; run: () => Promise<void> };

/** A frame held back while a login replays what the client missed. */
interface Held {
  frame: OutFrame;
  /** Set for room messages: dropped on release when the replay already covered it. */
  roomSeq?: number;
}

let nextConn = 0;
const bootId = Math.random().toString(36).slice(2, 8);

export class Session {
  /** Unique in the cluster and across restarts of this node. */
  readonly id = `${bootId}.${++nextConn}`;
  readonly openedAt = Date.now();
  lastInboundAt = Date.now();
  /** Set once logged in. */
  user: Sender | null = null;
  closed = false;
  /** Room messages reach this session through the transport's pub/sub instead of direct writes. */
  roomViaTransport = false;

  private inbox: Inbound[] = [];
  private pumping = false;
  private held: Held[] | null = null;
  private readonly bucket: TokenBucket | null;

  constructor(
    readonly conn: Connection,
    private readonly gateway: Gateway,
  ) {
    const { msgRatePerSec, msgRateBurst } = gateway.settings;
    this.bucket = msgRatePerSec > 0 ? new TokenBucket(msgRatePerSec, msgRateBurst) : null;
  }

  get key(): string | null {
    return this.user ? `${this.user.appId}:${this.user.userId}` : null;
  }

  /** A decoded inbound frame. Frames are handled one at a time, in arrival order. */
  receive(code: number, body: ParsedBody, form: WireForm = "binary"): void {
    if (this.closed) return;
    this.lastInboundAt = Date.now();
    this.gateway.deps.metrics.frameIn(code);
    // liveness and confirmations are never refused; everything else is rate limited per connection
    if (this.bucket && code !== Code.HEARTBEAT && code !== Code.ACK && !this.bucket.take()) {
      const clientMsgId = body.ok && typeof body.value.clientMsgId === "string" ? body.value.clientMsgId : undefined;
      this.conn.useForm(form);
      this.sendError("rate_limited", "too many frames on this connection; slow down", clientMsgId);
      return;
    }
    this.inbox.push({ kind: "frame", code, body, form });
    this.pump();
  }

  /** Work that must run in order with the frames (a login completed at the WebSocket upgrade). */
  enqueue(run: () => Promise<void>): void {
    this.inbox.push({ kind: "task", run });
    this.pump();
  }

  /** The stream broke framing rules: it cannot be resynchronised, so say why once and close. */
  violation(reason: string): void {
    if (this.closed) return;
    this.sendError("bad_frame", reason);
    this.close();
  }

  send(code: number, body: object): void {
    this.write(new Frame(code, JSON.stringify(body)));
  }

  sendError(reason: ErrorReason, message: string, clientMsgId?: string): void {
    this.gateway.deps.metrics.refused.labels(reason).inc();
    this.send(Code.ERROR, errorBody(reason, message, clientMsgId));
  }

  /** `{appId, userId, data:"true"}`: the answer to LOGIN, LOGOUT and HEARTBEAT. */
  okBody(): { appId: number; userId: number; data: "true" } {
    const u = this.user!;
    return { appId: u.appId, userId: u.userId, data: "true" };
  }

  /** A live delivery (reliable or room). Held back while a login replay is running. */
  deliver(frame: OutFrame, roomSeq?: number): void {
    if (this.closed) return;
    if (this.held) this.held.push({ frame, roomSeq });
    else this.write(frame);
  }

  /** Write straight to the client, bypassing the hold (the replay itself). */
  write(frame: OutFrame): void {
    if (this.closed) return;
    this.gateway.deps.metrics.frameOut(frame.code);
    this.conn.write(frame);
  }

  /** Hold live deliveries until release(). */
  hold(): void {
    this.held ??= [];
  }

  /** Write what was held, dropping room messages with seq <= coveredRoomSeq (already replayed). */
  release(coveredRoomSeq = 0): void {
    const held = this.held ?? [];
    this.held = null;
    for (const h of held) {
      if (h.roomSeq !== undefined && h.roomSeq <= coveredRoomSeq) continue;
      this.write(h.frame);
    }
  }

  /** Close the connection (after flushing what was written). Cleanup runs when the transport reports the close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox = [];
    this.conn.close();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.inbox.length > 0 && !this.closed) {
        const item = this.inbox.shift()!;
        if (item.kind === "task") await this.guard(item.run, undefined);
        else await this.handleFrame(item.code, item.body, item.form);
      }
    } finally {
      this.pumping = false;
    }
  }

  private async handleFrame(code: number, parsed: ParsedBody, form: WireForm): Promise<void> {
    this.conn.useForm(form);
    const handler = handlerFor(code);
    const loggedIn = this.user !== null;
    if (!loggedIn) {
      // PROTOCOL.md section 4, "Before login"
      if (code === Code.HEARTBEAT) return;
      if (!handler) return this.refuseAndClose("unknown_code", `unknown code ${code}`);
      if (code !== Code.LOGIN) return this.refuseAndClose("not_logged_in", "log in first");
      if (!parsed.ok) return this.refuseAndClose("invalid_body", parsed.reason);
    } else {
      if (!handler) return this.sendError("unknown_code", `unknown code ${code}`);
      if (!parsed.ok) return this.sendError("invalid_body", parsed.reason);
      if (code === Code.LOGIN) return; // already logged in: ignored
    }
    const body = parsed.value;
    const clientMsgId = typeof body.clientMsgId === "string" ? body.clientMsgId : undefined;
    const checked = handler.schema.safeParse(body);
    if (!checked.success) {
      const message = checked.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      if (!loggedIn) return this.refuseAndClose("invalid_body", message);
      return this.sendError("invalid_body", message, clientMsgId);
    }
    await this.guard(() => handler.handle(this, checked.data, this.gateway), clientMsgId);
  }

  /** Run a handler; a refusal becomes an ERROR frame (and a close before login). */
  private async guard(run: () => Promise<void> | void, clientMsgId: string | undefined): Promise<void> {
    try {
      await run();
    } catch (err) {
      if (err instanceof ImError) {
        if (this.user) this.sendError(err.reason, err.message, clientMsgId);
        else this.refuseAndClose(err.reason, err.message);
        return;
      }
      this.gateway.log.error({ err, connId: this.id, userId: this.user?.userId }, "handler failed");
      this.sendError("internal", "internal error", clientMsgId);
      if (!this.user) this.close();
    }
  }

  private refuseAndClose(reason: ErrorReason, message: string): void {
    this.sendError(reason, message);
    this.close();
  }
}
