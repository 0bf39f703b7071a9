// ImClient: one user's session with live-im over TCP or WebSocket, across connections: connect and
// log in, reconnect with backoff and re-login (recovering missed room messages), de-duplicate
// deliveries, typed events, send() settled by the server's answer. Each connection is a Link.
// Imports only the pure codec of src/protocol; browser.ts uses it with the WebSocket connector alone.
import { BizCode, DEFAULT_APP_ID } from "../protocol/codes";
import type { Delivery } from "./deliveries";
import { Emitter } from "./emitter";
import { ImClientError } from "./errors";
import type { ImClientEvents, LoginInfo } from "./events";
import { jwtSubject, primedConfigSource } from "./im-config";
import { Link } from "./link";
import { readLoginAnswer, type LoginRequest } from "./login";
import { DEFAULT_TIMEOUT_MS, resolveOptions, type ImClientOptions, type Settings } from "./options";
import type { SendResult } from "./pending-sends";
import { RecentIds } from "./recent-ids";
import { ReconnectSchedule } from "./reconnect-schedule";
import type { Endpoint } from "./transport";
import { Waiter } from "./waiter";

export type ClientState = "idle" | "connecting" | "online" | "waiting" | "leaving" | "closed";
export type FromConfigOptions = Omit<ImClientOptions, "endpoint" | "userId"> & { userId?: number };

export class ImClient extends Emitter<ImClientEvents> {
  private readonly s: Settings;
  private readonly seen: RecentIds;
  private readonly retry: ReconnectSchedule;
  private state: ClientState = "idle";
  private link: Link | null = null;
  private connecting: Promise<LoginInfo> | null = null;
  private lastRoomSeq: number | undefined;
  /** The msgId of the room message lastRoomSeq was taken from (0: none yet). */
  private lastRoomMsgId = 0;
  /** Ends the endpoint wait of a connect in progress (close() while it waits). */
  private abortEndpointWait: ((reason: string) => void) | null = null;

  constructor(options: ImClientOptions) {
    super();
    this.s = resolveOptions(options);
    this.seen = new RecentIds(this.s.dedupCapacity);
    this.retry = new ReconnectSchedule(this.s.backoff);
    this.lastRoomSeq = this.s.roomSeq;
  }

  /**
   * A client that gets its endpoint and IM token from POST /api/im/config with the user's JWT: now
   * (rejects if that fails) and again before every reconnect, so it may land on another node.
   * `httpBase` may list several bases to fail over between. The userId is the JWT's `sub` unless given.
   */
  static async fromConfig(httpBase: string | readonly string[], userJwt: string, opts: FromConfigOptions = {}): Promise<ImClient> {
    const bases = typeof httpBase === "string" ? [httpBase] : httpBase;
    const endpoint = await primedConfigSource(bases, userJwt, opts.appId ?? DEFAULT_APP_ID, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    return new ImClient({ ...opts, userId: opts.userId ?? jwtSubject(userJwt), endpoint });
  }

  get status(): ClientState {
    return this.state;
  }

  /** The seq of the newest room message seen (or the room's seq at login): a reconnect recovers what came after it. */
  get roomSeq(): number | undefined {
    return this.lastRoomSeq;
  }

  /**
   * Connect and log in; resolves with the login answer (after the "login" event). Rejects with an
   * ImClientError if that fails or takes too long; nothing is retried then, and connect() may be
   * called again. Once logged in, a dropped connection is re-established automatically until
   * logout(), close(), a kick or a fatal error. While connecting or connected it returns the same
   * promise; while reconnecting, one that settles with the reconnect's login (or the client's end).
   */
  connect(): Promise<LoginInfo> {
    if (this.state === "closed") return Promise.reject(new ImClientError("closed", "the client is closed"));
    this.connecting ??= this.open(false).catch((err: unknown) => {
      this.connecting = null;
      if (this.state === "connecting") this.state = "idle";
      throw err;
    });
    return this.connecting;
  }

  /**
   * Submit one BIZ. Resolves with {clientMsgId, msgId} once the server accepted it; rejects with the
   * server's refusal (reason = its `error`), "not_connected" (not taken, safe to send again: nothing
   * is queued while offline, and a draining server's LOGOUT comes after the answers to all it read),
   * "connection_lost" (the answer never came: it may or may not have been taken), "closed" or "timeout".
   */
  send(bizCode: number, data: Record<string, unknown> | string): Promise<SendResult> {
    if (this.state !== "online" || !this.link) return Promise.reject(new ImClientError("not_connected", `cannot send while ${this.state}`));
    return this.link.submit(bizCode, data);
  }

  /** A 5555 message to this client's room (see send()); rejects with "no_room" without a roomId. */
  sendRoom(content: string): Promise<SendResult> {
    if (this.s.roomId === undefined) return Promise.reject(new ImClientError("no_room", "this client was created without a roomId"));
    return this.send(BizCode.ROOM_CHAT, { roomId: this.s.roomId, content });
  }

  /** A 5556 private message (see send()). */
  sendPrivate(toUserId: number, content: string): Promise<SendResult> {
    return this.send(BizCode.PRIVATE_CHAT, { objectId: toUserId, content });
  }

  /** Send LOGOUT and wait (at most timeoutMs) for the answer or the server's close; then closed for good. Never rejects. */
  async logout(): Promise<void> {
    const link = this.link;
    if (this.state === "online" && link) {
      this.state = "leaving";
      await link.logout();
    }
    this.finish("logged out");
  }

  /** Close now, without LOGOUT, and never reconnect. Pending sends reject with "closed". */
  close(): void {
    this.finish("closed by client");
  }

  private async open(reconnected: boolean): Promise<LoginInfo> {
    this.state = "connecting";
    const endpoint = await this.endpoint();
    const connector = this.s.connectors[this.s.transport];
    if (!connector) throw new ImClientError("no_transport", `no ${this.s.transport} connector in this build`, true);
    if (this.state !== "connecting") throw new ImClientError("closed", "the client was closed while connecting");
    const { appId, userId, roomId } = this.s;
    const asked: LoginRequest = { appId, userId, token: endpoint.token, roomId, roomSeq: roomId === undefined ? undefined : this.lastRoomSeq };
    let info: LoginInfo | undefined;
    const link: Link = new Link(this.s, {
      loggedIn: (answer) => (info = this.onLogin(readLoginAnswer(answer, asked, endpoint.nodeId, reconnected), asked)),
      delivery: (d) => link === this.link && this.onDelivery(d),
      kicked: (message) => link === this.link && this.onKicked(message),
      error: (err) => link === this.link && this.emit("error", err),
      dropped: (reason) => link === this.link && this.onDropped(reason),
    });
    this.link = link;
    try {
      await link.start(connector, endpoint, asked);
    } catch (err) {
      if (this.link === link) this.link = null;
      throw err;
    }
    return info!;
  }

  /** The endpoint to connect to: asked of the endpoint source within timeoutMs, or until close(). */
  private async endpoint(): Promise<Endpoint> {
    const source = this.s.endpoint;
    if (typeof source !== "function") return source;
    const wait = new Waiter<Endpoint>(this.s.timeoutMs, "endpoint");
    this.abortEndpointWait = (reason) => wait.reject(new ImClientError("closed", reason));
    source().then(
      (e) => wait.resolve(e),
      (err: unknown) => wait.reject(err instanceof Error ? err : new ImClientError("connect_failed", String(err))),
    );
    try {
      return await wait.promise;
    } finally {
      this.abortEndpointWait = null;
    }
  }

  /**
   * The newest room message, by msgId, sets the seq a reconnect recovers from. msgIds and a room's
   * seqs are handed out together, so within one Redis this is the highest seq (a gap's late message
   * does not step it back); when Redis lost its data the seqs start over but msgIds go on rising,
   * so a connected client follows the new seqs instead of keeping the old, higher one, which would
   * skip the new messages up to it at the next recovery.
   */
  private noteRoomSeq(seq: number, msgId: number): void {
    if (msgId <= this.lastRoomMsgId) return;
    this.lastRoomMsgId = msgId;
    this.lastRoomSeq = seq;
  }

  private onLogin(info: LoginInfo, asked: LoginRequest): LoginInfo {
    // without recovery the client is live from the room's latest seq; with it, the replay advances
    // it. An answer behind the seq asked for is the server's to trust: the room's seq started over
    // (Redis lost its data) and the replay starts at its new beginning. (A node behind a gap may
    // answer so too: the next recovery then repeats a few messages, dropped by msgId.)
    if (info.roomSeq !== undefined && (asked.roomSeq === undefined || info.roomSeq < asked.roomSeq)) this.lastRoomSeq = info.roomSeq;
    this.state = "online";
    this.retry.reset();
    this.emit("login", info);
    return info;
  }

  private onDelivery(d: Delivery): void {
    if (!d.ok) return this.emit("error", new ImClientError("bad_server_frame", d.reason));
    if (!this.seen.add(d.msgId)) return;
    if (d.kind === "room") {
      if (d.event.data.roomId === this.s.roomId) this.noteRoomSeq(d.event.data.seq, Number(d.msgId));
      this.emit("room", d.event);
    } else if (d.kind === "private") this.emit("private", d.event);
    else this.emit("push", d.event);
  }

  private onKicked(message: string): void {
    // a reconnect would kick the newer session in turn, and that one us: this session ends here
    this.emit("kicked", { message });
    this.finish(`kicked: ${message}`);
  }

  private onDropped(reason: string): void {
    this.link = null;
    if (this.state !== "online") return;
    // connect() from now on answers with the reconnect's login, not the first one's
    this.connecting = this.nextLogin();
    this.scheduleReconnect(reason);
  }

  /** Resolves with the next "login", rejects with "closed" if the client ends first. */
  private nextLogin(): Promise<LoginInfo> {
    const next = new Promise<LoginInfo>((resolve, reject) => {
      const offLogin = this.on("login", (info) => {
        offLogin();
        offClosed();
        resolve(info);
      });
      const offClosed = this.on("closed", ({ reason }) => {
        offLogin();
        offClosed();
        reject(new ImClientError("closed", reason));
      });
    });
    // nobody may be waiting for it: its rejection is for connect()'s callers only
    next.catch(() => {});
    return next;
  }

  private scheduleReconnect(reason: string): void {
    const next = this.retry.schedule(() =>
      this.open(true).catch((err: unknown) => {
        if (this.state !== "connecting") return;
        const e = err instanceof ImClientError ? err : new ImClientError("connect_failed", String(err));
        this.emit("error", e);
        if (e.fatal) this.finish(e.message);
        else this.scheduleReconnect(e.message);
      }),
    );
    if (!next) return this.finish(this.s.backoff ? `gave up reconnecting: ${reason}` : `connection lost: ${reason}`);
    this.state = "waiting";
    this.emit("reconnecting", { ...next, reason });
  }

  /** The end: timers stop, the connection closes (its waits settle), "closed" is emitted once. */
  private finish(reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.retry.cancel();
    this.abortEndpointWait?.(reason);
    const link = this.link;
    this.link = null;
    link?.close(reason, "closed");
    this.emit("closed", { reason });
  }
}
