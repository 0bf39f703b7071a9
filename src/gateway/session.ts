// One client connection above its transport: login state, the in-order handling of its frames,
// and what it is sent. A handler never knows whether the client came over TCP or WebSocket.
import { Code } from "../protocol/codes";
import { errorBody, type ErrorReason } from "../protocol/errors";
import type { ParsedBody } from "../protocol/frame";
import type { Sender } from "../messaging/biz/types";
import type { Connection, OutFrame, WireForm } from "./connection";
import { OutFrame as Frame } from "./connection";
import type { Gateway } from "./gateway";
import { handlerFor } from "./handlers/registry";
import { TokenBucket } from "./limits";
import { ReplayHold } from "./replay-hold";
import { refusalOf } from "../redis/outage";

type Inbound =
  /** `limited`: over the rate limit when it arrived, so refused in its turn. */
  | { kind: "frame"; code: number; body: ParsedBody; form: WireForm; limited: boolean; bytes: number }
  | { kind: "task"; run: () => Promise<void> };

/**
 * BIZ frames of one connection whose queueing may overlap (see Session.pipeline). Bounds what a
 * client can have in flight; the rate limit bounds how fast it refills.
 */
const MAX_PIPELINED = 64;
/**
 * Frames (and tasks) of one connection waiting to be handled. HEARTBEAT is never rate limited and
 * refused frames wait for their turn too, so without this bound one write of tiny frames could
 * queue hundreds of thousands of them in memory. Well above MAX_PIPELINED and the default
 * rate-limit burst (400): a client within its rate never meets it.
 */
const MAX_INBOX = 1000;
/**
 * The bytes (of their bodies) of the frames waiting: 1,000 frames of 64 KB each would be 64 MB per
 * connection, held for as long as the frame being handled takes (a login replay to a client that
 * does not read takes as long as the client wants).
 */
const MAX_INBOX_BYTES = 4 * 1024 * 1024;
/**
 * Unordered frames applied at once per second (and burst). A login replays kept messages at up to
 * about 8,000/s, ACKed as fast; beyond this rate they wait in line like other frames.
 */
const UNORDERED_PER_SEC = 10_000;
/**
 * Unordered frames (ACKs) of one connection being applied at once; past it the client is too fast.
 * A whole burst: a client that reads a long replay at once ACKs it at once, and the server reads
 * those ACKs at once (cutting the client would drop its ACKs, and the next login replay the
 * messages again). Their Redis and MySQL work is batched (PendingAcks, KeptStore) all the same.
 */
const MAX_UNORDERED = UNORDERED_PER_SEC;

const TOO_FAST = "too many frames on this connection; slow down";
/**
 * How long closeAfterAnswers() waits for the answers due before it closes anyway: a handler stuck on
 * an unreachable Redis must not keep a kicked or drained connection open.
 */
const ANSWERS_MAX_WAIT_MS = 5000;

let nextConn = 0;
const bootId = Math.random().toString(36).slice(2, 8);

export class Session {
  /** Numbers the connections of this node process; `id` is derived from it when asked. */
  private readonly seq = ++nextConn;
  readonly openedAt = Date.now();
  lastInboundAt = Date.now();
  /** When the presence binding was last refreshed (Gateway.bindingRefreshDue). */
  bindingRefreshedAt = 0;
  /** When the login's bind was sent (gateway/replay.ts, keepBound). */
  boundAt = 0;
  /** Set once logged in. */
  user: Sender | null = null;
  closed = false;
  /** Closing after the answers due (closeAfterAnswers): nothing more is read but ACKs. */
  private ending = false;
  /** Room messages reach this session through the transport's pub/sub instead of direct writes. */
  roomViaTransport = false;

  // Idle sessions are most of a node's memory: what only some sessions need is made when first needed.
  /** Frames and tasks waiting to be handled; null when none. */
  private inbox: Inbound[] | null = null;
  private inboxBytes = 0;
  private pumping = false;
  /** The unfinished rests of BIZ frames (see pipeline), oldest first; null when none. */
  private pipelined: Promise<void>[] | null = null;
  /** Settles once the last BIZ frame waiting for its intake checks took its place in line, or was refused (see inIntakeOrder). */
  private intakeTurn: Promise<void> | null = null;
  /** Set while a login replays what the client missed. */
  private replayHold: ReplayHold | null = null;
  /** Made at the first rate-limited frame (a new bucket is full, so making it late changes nothing). */
  private bucket: TokenBucket | null = null;
  /** Unordered frames being applied (see FrameHandler.unordered). */
  private unorderedInFlight = 0;
  /** Made at the first unordered frame, when rate limiting is on. */
  private unorderedBucket: TokenBucket | null = null;

  constructor(
    readonly conn: Connection,
    private readonly gateway: Gateway,
  ) {}

  /** Unique in the cluster and across restarts of this node. */
  get id(): string {
    return `${bootId}.${this.seq}`;
  }

  /**
   * A decoded inbound frame. Frames are handled one at a time, in arrival order; only an
   * unordered one (an ACK, which answers nothing) is applied at once.
   */
  receive(code: number, body: ParsedBody, form: WireForm = "binary", bytes = 0): void {
    if (this.closed) return;
    this.lastInboundAt = Date.now();
    this.gateway.deps.metrics.frameIn(code);
    if (this.user !== null && body.ok && this.applyNow(code, body.value, form)) return;
    // an ending session still takes ACKs (above): a message its client confirms is not sent again
    if (this.ending) return;
    const inbox = (this.inbox ??= []);
    // PROTOCOL.md section 3: a HEARTBEAT before login is tolerated, never a close; past the bound
    // it is ignored (the frames before it are answered in their turn)
    const full = inbox.length >= MAX_INBOX || this.inboxBytes + bytes > MAX_INBOX_BYTES;
    if (full && code === Code.HEARTBEAT && this.user === null) return;
    if (full) {
      // the client sends far faster than it is answered: refusing frame by frame would not bound
      // its memory, so it gets one ERROR (ahead of the answers still due) and is closed
      this.conn.useForm(form);
      this.sendError("rate_limited", `more than ${MAX_INBOX} frames or ${MAX_INBOX_BYTES} bytes waiting on this connection`);
      return this.close();
    }
    this.inboxBytes += bytes;
    // liveness and confirmations are never refused; everything else is rate limited per connection,
    // by arrival time, and refused in its turn (after the answers to the frames before it)
    const limited = code !== Code.HEARTBEAT && code !== Code.ACK && !this.takeToken();
    inbox.push({ kind: "frame", code, body, form, limited, bytes });
    this.pump();
  }

  /** Work that must run in order with the frames (a login completed at the WebSocket upgrade). */
  enqueue(run: () => Promise<void>): void {
    (this.inbox ??= []).push({ kind: "task", run });
    this.pump();
  }

  /**
   * The rest of a BIZ frame's work, left to finish while the next frames are handled: a handler
   * calls this once the message has its place in line (intake order is frame order), and `rest`
   * resolves to the frame's answer once the message is queued. So a client's consecutive BIZ frames
   * share intake batches instead of each waiting a whole batch for the one before. Answers still
   * go out in frame order: each waits for the one pipelined before it, a refusal in `rest` becomes
   * an ERROR with `clientMsgId` in its turn, and any frame other than BIZ is handled only once
   * every pipelined answer before it went out.
   */
  pipeline(rest: Promise<() => void>, clientMsgId: string | undefined): void {
    const before = this.lastPipelined();
    this.track(
      rest.then(
        (answer) => before.then(answer),
        (err) => before.then(() => this.refuse(err, clientMsgId)),
      ),
    );
  }

  /**
   * Submit a BIZ frame's message once `checked` (its intake checks: a room message asks Redis
   * whether its room is live) passed, and only once every BIZ frame before it took its place in
   * line or was refused: messages still take their places (msgIds, room seqs) in frame order, but a
   * frame's checks no longer wait for those of the frames before it (on a node far from Redis, a
   * round trip each). Resolves as `submit` does; rejects with the checks' refusal. Call it while
   * the frame is handled, in frame order.
   */
  inIntakeOrder<T>(checked: void | Promise<void>, submit: () => Promise<T>): Promise<T> {
    const before = this.intakeTurn;
    if (before === null && !(checked instanceof Promise)) return submit();
    let taken!: () => void;
    const turn = new Promise<void>((resolve) => (taken = resolve));
    this.intakeTurn = turn;
    const done = () => {
      if (this.intakeTurn === turn) this.intakeTurn = null;
      taken();
    };
    return (async () => {
      let refusal: { err: unknown } | null = null;
      try {
        await checked;
      } catch (err) {
        refusal = { err };
      }
      // never rejects; a refused frame too waits for the ones before it, or the one after it could
      // take its place before them
      await before;
      if (refusal) {
        done();
        throw refusal.err;
      }
      // the place is taken by the call itself (BizIntake.submit): the next frame may go once it is made
      const queued = submit();
      done();
      return queued;
    })();
  }

  /**
   * Read nothing more but ACKs, answer the frames received so far, in order (a BIZ among them may already be
   * queued: its ACK spares the client a resend), then send `last` (a final ERROR or LOGOUT, if any)
   * and close. Closes anyway after ANSWERS_MAX_WAIT_MS.
   */
  closeAfterAnswers(last?: () => void): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.enqueue(async () => {
      last?.();
      this.close();
    });
    setTimeout(() => this.close(), ANSWERS_MAX_WAIT_MS).unref();
  }

  /**
   * The stream broke framing rules: it cannot be resynchronised. One ERROR says why, after the
   * answers due, in the form of the message that broke them (PROTOCOL.md section 2: the form the
   * client last used).
   */
  violation(reason: string, form: WireForm = "binary"): void {
    this.closeAfterAnswers(() => {
      this.conn.useForm(form);
      this.sendError("bad_frame", reason);
    });
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

  /**
   * A live delivery (reliable, or room when `roomSeq` is given). Held back while a login replay is
   * running, up to ReplayHold's bound; past that a reliable delivery is dropped (its ACK check resends
   * it, or keeps it for the next login) and a room message closes the connection (the client gets
   * it back with roomSeq). False when it was dropped. Room messages may wait a few ms to share a
   * socket write (Connection.write).
   */
  deliver(frame: OutFrame, roomSeq?: number): boolean {
    if (this.closed) return false;
    if (!this.replayHold) {
      this.write(frame, roomSeq !== undefined);
      return true;
    }
    if (this.replayHold.add({ frame, roomSeq })) return true;
    if (roomSeq !== undefined) {
      this.gateway.log.warn({ connId: this.id, heldBytes: this.replayHold.heldBytes }, "too much held for a client that does not read its replay; closing");
      this.replayHold.take();
      this.close();
    }
    return false;
  }

  /** Write straight to the client, bypassing the hold (the replay itself). */
  write(frame: OutFrame, mayWait = false): void {
    if (this.closed) return;
    this.gateway.deps.metrics.frameOut(frame.code);
    this.conn.write(frame, mayWait);
  }

  /** Hold live deliveries until release(). */
  hold(): void {
    this.replayHold ??= new ReplayHold();
  }

  /** Write what was held, dropping the room messages `covered` says the client has (or got replayed). */
  release(covered: (roomSeq: number) => boolean): void {
    const held = this.replayHold?.take() ?? [];
    this.replayHold = null;
    for (const h of held) {
      if (h.roomSeq !== undefined && covered(h.roomSeq)) continue;
      this.write(h.frame, h.roomSeq !== undefined);
    }
  }

  /** Close the connection (after flushing what was written). Cleanup runs when the transport reports the close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox = null;
    this.inboxBytes = 0;
    this.conn.close();
  }

  /**
   * Apply an unordered frame now (see FrameHandler.unordered). Its failure is refused in turn, after
   * the frames that came before it (the LOGIN answer, say). False when the frame must take the
   * ordinary way: not unordered, a body its schema refuses, or over UNORDERED_PER_SEC.
   */
  private applyNow(code: number, value: Record<string, unknown>, form: WireForm): boolean {
    const handler = handlerFor(code);
    if (!handler?.unordered) return false;
    const checked = handler.schema.safeParse(value);
    if (!checked.success || !this.takeUnorderedToken()) return false;
    this.conn.useForm(form);
    if (this.unorderedInFlight >= MAX_UNORDERED) {
      this.sendError("rate_limited", `more than ${MAX_UNORDERED} confirmations waiting on this connection`);
      this.close();
      return true;
    }
    this.unorderedInFlight++;
    Promise.resolve()
      .then(() => handler.handle(this, checked.data, this.gateway))
      .catch((err: unknown) => this.enqueue(async () => this.refuse(err, undefined)))
      .finally(() => this.unorderedInFlight--);
    return true;
  }

  private takeUnorderedToken(): boolean {
    if (this.gateway.settings.msgRatePerSec <= 0) return true;
    this.unorderedBucket ??= new TokenBucket(UNORDERED_PER_SEC, UNORDERED_PER_SEC);
    return this.unorderedBucket.take();
  }

  /** False when the connection is over its frame rate (always true with rate limiting off). */
  private takeToken(): boolean {
    const { msgRatePerSec, msgRateBurst } = this.gateway.settings;
    if (msgRatePerSec <= 0) return true;
    this.bucket ??= new TokenBucket(msgRatePerSec, msgRateBurst);
    return this.bucket.take();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      for (let item = this.inbox?.shift(); item !== undefined && !this.closed; item = this.inbox?.shift()) {
        if (item.kind === "frame") this.inboxBytes -= item.bytes;
        if (item.kind === "frame" && item.code === Code.BIZ) {
          if (this.pipelined !== null && this.pipelined.length >= MAX_PIPELINED) await this.pipelined[0];
        } else if (this.pipelined !== null) {
          await Promise.all(this.pipelined);
        }
        // closed while waiting: a frame handled now could bind the user again after the close's cleanup
        if (this.closed) break;
        if (item.kind === "task") await this.guard(item.run, undefined);
        else await this.handleFrame(item);
      }
    } finally {
      this.pumping = false;
      if (this.inbox?.length === 0) this.inbox = null;
    }
  }

  private async handleFrame({ code, body: parsed, form, limited }: Extract<Inbound, { kind: "frame" }>): Promise<void> {
    this.conn.useForm(form);
    const handler = handlerFor(code);
    const loggedIn = this.user !== null;
    if (!loggedIn) {
      // PROTOCOL.md section 4, "Before login"
      if (code === Code.HEARTBEAT) return;
      if (!handler) return this.refuseAndClose("unknown_code", `unknown code ${code}`);
      if (code !== Code.LOGIN) return this.refuseAndClose("not_logged_in", "log in first");
      if (limited) return this.refuseAndClose("rate_limited", TOO_FAST);
      if (!parsed.ok) return this.refuseAndClose("invalid_body", parsed.reason);
    } else {
      // a refusal waits for the answers of the BIZ frames before it (see pipeline)
      if (limited) {
        const clientMsgId = parsed.ok && typeof parsed.value.clientMsgId === "string" ? parsed.value.clientMsgId : undefined;
        return this.inTurn(() => this.sendError("rate_limited", TOO_FAST, clientMsgId));
      }
      if (!handler) return this.inTurn(() => this.sendError("unknown_code", `unknown code ${code}`));
      if (!parsed.ok) return this.inTurn(() => this.sendError("invalid_body", parsed.reason));
      if (code === Code.LOGIN) return; // already logged in: ignored
    }
    const body = parsed.value;
    const clientMsgId = typeof body.clientMsgId === "string" ? body.clientMsgId : undefined;
    const checked = handler.schema.safeParse(body);
    if (!checked.success) {
      const message = checked.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      if (!loggedIn) return this.refuseAndClose("invalid_body", message);
      return this.inTurn(() => this.sendError("invalid_body", message, clientMsgId));
    }
    await this.guard(() => handler.handle(this, checked.data, this.gateway), clientMsgId);
  }

  /** Run a handler; a refusal becomes an ERROR frame (and a close before login), in its turn. */
  private async guard(run: () => Promise<void> | void, clientMsgId: string | undefined): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.inTurn(() => this.refuse(err, clientMsgId));
    }
  }

  private refuse(err: unknown, clientMsgId: string | undefined): void {
    const refusal = refusalOf(err);
    if (refusal) {
      // one that stands for a failure (MySQL or Redis unavailable) is worth a line: the client sees only its reason
      if (refusal.cause !== undefined) this.gateway.log.warn({ err, connId: this.id, userId: this.user?.userId }, "frame refused: a backing service failed");
      if (this.user) this.sendError(refusal.reason, refusal.message, clientMsgId);
      else this.refuseAndClose(refusal.reason, refusal.message);
      return;
    }
    this.gateway.log.error({ err, connId: this.id, userId: this.user?.userId }, "handler failed");
    this.sendError("internal", "internal error", clientMsgId);
    if (!this.user) this.close();
  }

  /** Send an answer now, or after the answers still pipelined (see pipeline). */
  private inTurn(answer: () => void): void {
    if (this.pipelined === null) answer();
    else this.track(this.lastPipelined().then(answer));
  }

  /** Settles once every answer pipelined so far went out; never rejects. */
  private lastPipelined(): Promise<void> {
    return this.pipelined?.[this.pipelined.length - 1] ?? Promise.resolve();
  }

  /** Keep an answer in line until it went out; its failure (a bug) is logged, not thrown. */
  private track(answered: Promise<void>): void {
    const done: Promise<void> = answered
      .catch((err) => this.gateway.log.error({ err, connId: this.id }, "pipelined answer failed"))
      .finally(() => {
        const list = this.pipelined;
        if (list === null) return;
        list.splice(list.indexOf(done), 1);
        if (list.length === 0) this.pipelined = null;
      });
    (this.pipelined ??= []).push(done);
  }

  private refuseAndClose(reason: ErrorReason, message: string): void {
    this.sendError(reason, message);
    this.close();
  }
}
