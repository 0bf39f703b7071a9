// One connection of an ImClient: opened, logged in, kept alive by heartbeats, its frames turned into
// calls on LinkHandlers until it ends. A reconnect is a new Link; what spans connections (reconnect,
// de-duplication, room seq) is ImClient's.
import { Code } from "../protocol/codes";
import type { ParsedBody } from "../protocol/frame";
import { readDelivery, type Delivery } from "./deliveries";
import { ImClientError } from "./errors";
import { Heartbeat } from "./heartbeat";
import { heartbeatPeriod, loginBody, type LoginRequest } from "./login";
import { PendingSends, type SendResult } from "./pending-sends";
import type { ConnectOptions, Connector, Endpoint, Transport } from "./transport";
import { Waiter } from "./waiter";

export interface LinkSettings extends ConnectOptions {
  heartbeatMs: number;
  maxPendingSends: number;
}

export interface LinkHandlers {
  /** The LOGIN answer, handled as it arrives: before any frame that follows it. */
  loggedIn(answer: Record<string, unknown>): void;
  /** A delivery; a reliable one was ACKed already. */
  delivery(d: Delivery): void;
  /** ERROR "kicked": the link closes right after. */
  kicked(message: string): void;
  /** A server ERROR no send awaited, or a frame that could not be read. */
  error(err: ImClientError): void;
  /** The link ended after it had logged in (by either side). Once. */
  dropped(reason: string): void;
}

export class Link {
  private transport: Transport | null = null;
  private readonly pending: PendingSends;
  private login: Waiter<void> | null = null;
  private logoutWait: Waiter<void> | null = null;
  private heartbeat: Heartbeat | null = null;
  private up = false;
  private ended = false;
  /** Ends start()'s wait for the connector (close() while connecting). */
  private abortConnect: ((err: ImClientError) => void) | null = null;

  constructor(
    private readonly s: LinkSettings,
    private readonly h: LinkHandlers,
  ) {
    this.pending = new PendingSends(s.maxPendingSends, s.timeoutMs);
  }

  /**
   * Connect and LOGIN with `request`. Resolves once logged in (after handlers.loggedIn); rejects
   * with an ImClientError (fatal for "unauthorized") on refusal, drop, close() or timeout, and the
   * connection is closed then.
   */
  async start(connector: Connector, endpoint: Endpoint, request: LoginRequest): Promise<void> {
    const connecting = connector(endpoint, { frame: (c, b) => this.onFrame(c, b), closed: (r) => this.end(r, "connection_lost") }, this.s);
    // close() settles start() at once, not when the connector gives up (a connect that hangs)
    const closedMeanwhile = new Promise<never>((_, reject) => (this.abortConnect = reject));
    let transport: Transport;
    try {
      transport = await Promise.race([connecting, closedMeanwhile]);
    } catch (err) {
      // a connection made after all is closed as soon as it is
      if (this.ended) connecting.then((t) => t.close("the client was closed while connecting"), () => {});
      throw err;
    } finally {
      this.abortConnect = null;
    }
    if (this.ended) {
      transport.close("the client was closed while connecting");
      throw new ImClientError("closed", "the client was closed while connecting");
    }
    this.transport = transport;
    const wait = (this.login = new Waiter<void>(this.s.timeoutMs, "LOGIN answer"));
    transport.send(Code.LOGIN, loginBody(request));
    try {
      await wait.promise;
    } catch (err) {
      this.close(`login failed: ${(err as Error).message}`);
      throw err;
    }
  }

  /** One BIZ; see ImClient.send for what the promise guarantees. */
  submit(bizCode: number, data: Record<string, unknown> | string): Promise<SendResult> {
    if (this.ended || !this.up || !this.transport) return Promise.reject(new ImClientError("not_connected", "not logged in"));
    let opened: ReturnType<PendingSends["open"]>;
    try {
      opened = this.pending.open();
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.transport.send(Code.BIZ, { bizCode, data, clientMsgId: opened.clientMsgId })) {
      this.pending.refused(opened.clientMsgId, new ImClientError("connection_lost", "the connection closed"));
    }
    return opened.result;
  }

  /** Send LOGOUT and wait (at most timeoutMs) for its answer or the close. Never rejects. */
  async logout(): Promise<void> {
    if (this.ended || !this.transport) return;
    this.heartbeat?.stop();
    const wait = (this.logoutWait = new Waiter<void>(this.s.timeoutMs, "LOGOUT answer"));
    this.transport.send(Code.LOGOUT, {});
    await wait.promise.catch(() => {});
  }

  /** Close now. Every wait settles at once (sends reject with `errReason`); dropped follows if it was up. */
  close(reason: string, errReason = "connection_lost"): void {
    this.transport?.close(reason);
    this.end(reason, errReason);
  }

  private end(reason: string, errReason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.abortConnect?.(new ImClientError("closed", "the client was closed while connecting"));
    this.heartbeat?.stop();
    const err = new ImClientError(errReason, reason);
    this.pending.failAll(err);
    this.login?.reject(err);
    this.logoutWait?.resolve();
    if (this.up) this.h.dropped(reason);
  }

  private onFrame(code: number, parsed: ParsedBody): void {
    if (this.ended) return;
    this.heartbeat?.heard();
    if (!parsed.ok) return this.h.error(new ImClientError("bad_server_frame", `frame ${code}: ${parsed.reason}`));
    const body = parsed.value;
    if (this.login) return this.onHandshake(this.login, code, body);
    switch (code) {
      case Code.BIZ: {
        const d = readDelivery(body);
        // ACK every reliable delivery, repeats too: a repeat means the server did not get our ACK
        if (d.reliable && d.msgId !== undefined) this.transport?.send(Code.ACK, { msgId: d.msgId });
        return this.h.delivery(d);
      }
      case Code.ACK:
        if (typeof body.clientMsgId === "string" && typeof body.msgId === "string") this.pending.accepted(body.clientMsgId, body.msgId);
        return;
      case Code.ERROR:
        return this.onError(serverError(body), body.clientMsgId);
      case Code.LOGOUT:
        if (this.logoutWait) return this.logoutWait.resolve();
        // the node is stopping (reason "draining"): drop now, so that the client reconnects elsewhere.
        // The server answers every frame it read before it sends this LOGOUT and reads nothing after:
        // a send still unanswered was never taken, so it rejects as not_connected (send it again),
        // not connection_lost (which leaves the app to choose between a loss and a repeat)
        return this.close(`logged out by the server (${String(body.reason ?? "no reason given")})`, "not_connected");
      // a HEARTBEAT answer only proves the server alive: heard() above
    }
  }

  private onHandshake(login: Waiter<void>, code: number, body: Record<string, unknown>): void {
    if (code === Code.ERROR) return login.reject(serverError(body));
    if (code !== Code.LOGIN) return;
    this.login = null;
    this.up = true;
    this.heartbeat = new Heartbeat(
      heartbeatPeriod(this.s.heartbeatMs, body),
      () => this.transport?.send(Code.HEARTBEAT, {}),
      (silentMs) => this.close(`nothing from the server for ${silentMs} ms`),
    );
    this.h.loggedIn(body);
    login.resolve();
  }

  private onError(err: ImClientError, clientMsgId: unknown): void {
    if (typeof clientMsgId === "string" && this.pending.refused(clientMsgId, err)) return;
    if (err.reason === "kicked") {
      this.h.kicked(err.message);
      return this.close(`kicked: ${err.message}`);
    }
    this.h.error(err);
  }
}

/** An ERROR body as an ImClientError; "unauthorized" is fatal (the same token will not do better). */
function serverError(body: Record<string, unknown>): ImClientError {
  const reason = typeof body.error === "string" ? body.error : "unknown";
  return new ImClientError(reason, typeof body.message === "string" ? body.message : reason, reason === "unauthorized");
}
