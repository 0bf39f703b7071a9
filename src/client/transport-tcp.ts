// TCP transport (node:net, so it runs on Bun and Node): binary frames of PROTOCOL.md section 1.
import net from "node:net";
import { encodeFrame, FrameDecoder, parseBody } from "../protocol/frame";
import { ImClientError } from "./errors";
import { MAX_UNSENT_BYTES, type Connector, type Transport, type TransportEvents } from "./transport";

/** After end(), a peer that does not finish the close in this time is cut. */
const END_GRACE_MS = 1000;

class TcpTransport implements Transport {
  private readonly decoder: FrameDecoder;
  private reason: string | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly events: TransportEvents,
    maxBodyBytes: number,
  ) {
    this.decoder = new FrameDecoder(maxBodyBytes);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    // an error is always followed by "close"; keep its message as the reason
    socket.on("error", (err) => (this.reason ??= `tcp error: ${err.message}`));
    socket.on("close", () => events.closed(this.reason ?? "closed by server"));
  }

  send(code: number, body: object): boolean {
    if (this.reason !== null || this.socket.destroyed) return false;
    if (this.socket.writableLength > MAX_UNSENT_BYTES) {
      this.close(`more than ${MAX_UNSENT_BYTES} bytes unsent: the server stopped reading`);
      return false;
    }
    this.socket.write(encodeFrame(code, JSON.stringify(body)));
    return true;
  }

  close(reason = "closed by client"): void {
    if (this.reason !== null) return;
    this.reason = reason;
    // end() flushes what was written (an ACK, a LOGOUT) before the FIN
    this.socket.end();
    setTimeout(() => this.socket.destroy(), END_GRACE_MS).unref();
  }

  private onData(chunk: Buffer): void {
    // parseBody reads each frame before the next push, as FrameDecoder requires
    for (const f of this.decoder.push(chunk)) {
      if (this.reason !== null) return;
      this.events.frame(f.code, parseBody(f.body));
    }
    if (this.decoder.violation !== null) {
      this.reason ??= `undecodable stream from the server: ${this.decoder.violation}`;
      this.socket.destroy();
    }
  }
}

function parseAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  const port = Number(address.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0) throw new ImClientError("connect_failed", `bad tcp address ${address}`, true);
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ""), port };
}

export const connectTcp: Connector = (endpoint, events, opts) =>
  new Promise((resolve, reject) => {
    const { host, port } = parseAddress(endpoint.tcpAddress);
    const socket = net.createConnection({ host, port });
    const fail = (err: ImClientError) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new ImClientError("timeout", `tcp connect to ${endpoint.tcpAddress}: no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    socket.once("error", (err) => fail(new ImClientError("connect_failed", `tcp connect to ${endpoint.tcpAddress}: ${err.message}`)));
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(new TcpTransport(socket, events, opts.maxBodyBytes));
    });
  });
