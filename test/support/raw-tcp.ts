// A raw TCP connection for tests that must misbehave (bad magic, partial frames, no ACK): it writes
// whatever bytes it is given and records every frame the server sends back.
import net from "node:net";
import { Code, DEFAULT_APP_ID, MAGIC } from "../../src/protocol/codes";
import { encodeFrame, FrameDecoder, parseBody } from "../../src/protocol/frame";
import { waitFor } from "./wait";

export interface ServerFrame {
  code: number;
  body: any;
  taken: boolean;
}

export function frame(code: number, body: object = {}): Uint8Array {
  return encodeFrame(code, JSON.stringify(body));
}

/** A frame header alone, with any magic and length (for framing violations). */
export function header(code: number, len: number, magic: number = MAGIC): Uint8Array {
  const b = new Uint8Array(10);
  const v = new DataView(b.buffer);
  v.setUint16(0, magic);
  v.setInt32(2, code);
  v.setInt32(6, len);
  return b;
}

export class RawTcp {
  readonly frames: ServerFrame[] = [];
  closed = false;
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;
  private readonly decoder = new FrameDecoder(16 * 1024 * 1024);

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        const parsed = parseBody(f.body);
        this.frames.push({ code: f.code, body: parsed.ok ? parsed.value : { unparsable: parsed.reason }, taken: false });
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    });
  }

  static connect(address: string, timeoutMs = 5000): Promise<RawTcp> {
    const at = address.lastIndexOf(":");
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
      const timer = setTimeout(() => reject(new Error(`tcp connect to ${address} timed out`)), timeoutMs);
      socket.once("error", reject);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new RawTcp(socket));
      });
    });
  }

  /** Connect and LOGIN (into `roomId`, if given); resolves once the LOGIN answer came (taken). */
  static async loggedIn(address: string, userId: number, token: string, roomId?: number): Promise<RawTcp> {
    const conn = await RawTcp.connect(address);
    conn.send(Code.LOGIN, { appId: DEFAULT_APP_ID, userId, token, roomId });
    await conn.next((f) => f.code === Code.LOGIN, 5000, "LOGIN answer");
    return conn;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  send(code: number, body: object = {}): void {
    this.write(frame(code, body));
  }

  /** Send a HEARTBEAT every intervalMs until closed, so the server does not reap it while a test watches. */
  keepAlive(intervalMs: number): void {
    this.keepAliveTimer = setInterval(() => this.send(Code.HEARTBEAT), intervalMs);
  }

  /** Stop reading: what the server sends piles up in the kernel's buffers, then in the server's queue. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** The first frame not taken yet that matches; marks it taken. Fails after timeoutMs with the transcript. */
  async next(match: (f: ServerFrame) => boolean, timeoutMs: number, what: string): Promise<ServerFrame> {
    try {
      return await waitFor(() => this.take(match), timeoutMs, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; received: ${this.transcript()}; closed: ${this.closed}`);
    }
  }

  /** Resolves once the server closed the connection; fails after timeoutMs. */
  async closedWithin(timeoutMs: number, what = "the server to close the connection"): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, `${what}; received: ${this.transcript()}`);
  }

  transcript(): string {
    return JSON.stringify(this.frames.map((f) => [f.code, f.body]));
  }

  /** Half-close: our FIN goes out, what the server still sends is read. */
  end(): void {
    this.socket.end();
  }

  close(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.socket.destroy();
  }

  /** Close abruptly (TCP RST): the server gets no FIN to answer, only the connection's end. */
  reset(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.socket.resetAndDestroy();
  }

  private take(match: (f: ServerFrame) => boolean): ServerFrame | undefined {
    const f = this.frames.find((x) => !x.taken && match(x));
    if (f) f.taken = true;
    return f;
  }
}

/** The HTTP status of a WebSocket upgrade request (101 when upgraded): the WebSocket API hides it. */
export async function upgradeStatus(http: string, pathAndQuery: string, timeoutMs = 5000): Promise<number> {
  const host = new URL(http).host;
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const request = `GET ${pathAndQuery} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const status = await rawHttpStatus(http, request, timeoutMs);
  if (status === null) throw new Error(`upgrade ${pathAndQuery}: connection closed without a status line`);
  return status;
}

/**
 * Write `request` to an HTTP port exactly as given (requests fetch() will not send: lying lengths,
 * bad request lines, partial upgrades) and resolve with the status of the answer's status line, or
 * null when the connection ends without one. `halfClose` ends our side once the request is written.
 * Fails when neither happens within timeoutMs.
 */
export function rawHttpStatus(http: string, request: string, timeoutMs = 5000, halfClose = false): Promise<number | null> {
  const url = new URL(http);
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: url.hostname, port: Number(url.port) });
    const settle = (status: number | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`${JSON.stringify(request.slice(0, 80))}: no status line in ${timeoutMs} ms`))), timeoutMs);
    let head = "";
    socket.on("connect", () => (halfClose ? socket.end(request) : socket.write(request)));
    socket.on("data", (chunk) => {
      head += chunk.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (m) settle(Number(m[1]));
    });
    socket.on("error", () => settle(null));
    socket.on("close", () => settle(null));
  });
}
