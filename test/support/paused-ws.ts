// A WebSocket client that stops reading (a browser tab on a stalled link): a raw upgrade over
// node:net, logged in by the URL's token, then nothing read; it may still send HEARTBEATs, so that
// only the server's bound for unsent bytes, not the idle sweep, can close it.
import net from "node:net";
import { Code } from "../../src/protocol/codes";
import { waitFor } from "./wait";

export class PausedWebSocket {
  closed = false;
  private keepAliveTimer: ReturnType<typeof setInterval> | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    });
  }

  /** Upgrade `ws` (ws://host:port/ws) with `query`; resolves once the 101 came, reading nothing after it. */
  static open(ws: string, query: string, timeoutMs = 5000): Promise<PausedWebSocket> {
    const url = new URL(ws);
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ host: url.hostname, port: Number(url.port) });
      const timer = setTimeout(() => (socket.destroy(), reject(new Error(`no 101 from ${ws} in ${timeoutMs} ms`))), timeoutMs);
      socket.once("error", reject);
      socket.once("connect", () => {
        const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
        socket.write(`GET ${url.pathname}?${query} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      socket.once("data", (chunk: Buffer) => {
        clearTimeout(timer);
        // the LOGIN answer may come in the same read: it is not looked at
        socket.pause();
        const status = chunk.toString("latin1", 0, 12);
        if (!status.startsWith("HTTP/1.1 101")) return reject(new Error(`upgrade answered ${JSON.stringify(status)}`));
        resolve(new PausedWebSocket(socket));
      });
    });
  }

  /** Send a text HEARTBEAT every intervalMs (masked, as a client must) until closed. */
  keepAlive(intervalMs: number): void {
    const payload = new TextEncoder().encode(JSON.stringify({ code: Code.HEARTBEAT, body: {} }));
    // FIN + text opcode, masked length < 126, a zero mask (the payload goes as is)
    const message = new Uint8Array([0x81, 0x80 | payload.length, 0, 0, 0, 0, ...payload]);
    this.keepAliveTimer = setInterval(() => this.closed || this.socket.write(message), intervalMs);
  }

  async closedWithin(timeoutMs: number, what = "the server to close the connection"): Promise<void> {
    await waitFor(() => this.closed, timeoutMs, what);
  }

  close(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.socket.destroy();
  }
}
