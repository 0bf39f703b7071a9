// WebSocket transport (the global WebSocket of browsers and Bun): text envelopes or binary frames.
import { encodeEnvelope, parseEnvelope } from "../protocol/envelope";
import { encodeFrame, FrameDecoder, parseBody } from "../protocol/frame";
import { ImClientError } from "./errors";
import { MAX_UNSENT_BYTES, type Connector, type ConnectOptions, type Transport, type TransportEvents } from "./transport";

class WsTransport implements Transport {
  private reason: string | null = null;

  constructor(
    private readonly ws: WebSocket,
    private readonly events: TransportEvents,
    private readonly opts: ConnectOptions,
  ) {
    ws.addEventListener("message", (ev) => this.onMessage(ev.data));
    ws.addEventListener("close", (ev) => events.closed(this.reason ?? `closed by server (${ev.code}${ev.reason ? ` ${ev.reason}` : ""})`));
  }

  send(code: number, body: object): boolean {
    if (this.reason !== null || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.ws.bufferedAmount > MAX_UNSENT_BYTES) {
      this.close(`more than ${MAX_UNSENT_BYTES} bytes unsent: the server stopped reading`);
      return false;
    }
    const json = JSON.stringify(body);
    this.ws.send(this.opts.wsForm === "binary" ? encodeFrame(code, json) : encodeEnvelope(code, json));
    return true;
  }

  close(reason = "closed by client"): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.ws.close(1000);
  }

  private onMessage(data: unknown): void {
    if (this.reason !== null) return;
    if (typeof data === "string") {
      const env = parseEnvelope(data);
      if (env.ok) this.events.frame(env.code, { ok: true, value: env.body });
      else if (env.fatal || env.code === undefined) this.close(`undecodable text message from the server: ${env.reason}`);
      else this.events.frame(env.code, { ok: false, reason: env.reason });
      return;
    }
    if (!(data instanceof ArrayBuffer)) return this.close("unexpected WebSocket message type");
    // a binary message holds whole frames only (PROTOCOL.md section 2)
    const decoder = new FrameDecoder(this.opts.maxBodyBytes);
    for (const f of decoder.push(new Uint8Array(data))) {
      if (this.reason !== null) return;
      this.events.frame(f.code, parseBody(f.body));
    }
    if (decoder.violation !== null || decoder.hasPartial) {
      this.close(`undecodable binary message from the server: ${decoder.violation ?? "ends inside a frame"}`);
    }
  }
}

export const connectWs: Connector = (endpoint, events, opts) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(endpoint.wsUrl);
    ws.binaryType = "arraybuffer";
    const fail = (err: ImClientError) => {
      clearTimeout(timer);
      ws.removeEventListener("close", onEarlyClose);
      ws.close();
      reject(err);
    };
    // browsers hide why an upgrade failed (a 401 looks like any other failure)
    const onEarlyClose = () => fail(new ImClientError("connect_failed", `WebSocket ${endpoint.wsUrl} closed before it opened`));
    const timer = setTimeout(() => fail(new ImClientError("timeout", `WebSocket ${endpoint.wsUrl}: not open within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    ws.addEventListener("close", onEarlyClose);
    ws.addEventListener("open", () => {
      clearTimeout(timer);
      ws.removeEventListener("close", onEarlyClose);
      resolve(new WsTransport(ws, events, opts));
    });
  });
