// Lean clients for the load generator: raw frames over Bun.connect (TCP) and Bun's built-in
// WebSocket. No JSON on the hot path: a client hands each frame's bytes to its `onFrame`, which the
// benchmark swaps as the client moves from logging in to receiving traffic.
import type { Socket } from "bun";
import { FrameScanner, type FrameHandler } from "./frames";

export type Kind = "tcp" | "ws";

export interface LeanClient {
  readonly kind: Kind;
  readonly userId: number;
  /** Name of the node it is connected to (A, B). */
  readonly node: string;
  closed: boolean;
  onFrame: FrameHandler;
  onClose: () => void;
  /** Write whole frames (encodeFrame output). */
  send(frames: Uint8Array): void;
  close(): void;
}

const noFrame: FrameHandler = () => {};

export class TcpClient implements LeanClient {
  readonly kind = "tcp" as const;
  closed = false;
  onFrame: FrameHandler = noFrame;
  onClose: () => void = () => {};
  private socket: Socket<TcpClient> | null = null;
  /** Bytes the kernel did not take yet; written on drain (rare on loopback, but must not be lost). */
  private queue: Uint8Array[] = [];
  readonly scanner = new FrameScanner((code, buf, start, end) => this.onFrame(code, buf, start, end));

  private constructor(
    readonly userId: number,
    readonly node: string,
  ) {}

  static async connect(host: string, port: number, userId: number, node: string): Promise<TcpClient> {
    const client = new TcpClient(userId, node);
    client.socket = await Bun.connect<TcpClient>({ hostname: host, port, data: client, socket: TCP_HANDLERS });
    return client;
  }

  send(frames: Uint8Array): void {
    if (this.closed || !this.socket) return;
    if (this.queue.length > 0) {
      this.queue.push(frames);
      return;
    }
    const n = Math.max(0, this.socket.write(frames));
    if (n < frames.length) this.queue.push(frames.subarray(n));
  }

  flush(): void {
    while (this.queue.length > 0 && this.socket) {
      const head = this.queue[0];
      const n = Math.max(0, this.socket.write(head));
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }

  close(): void {
    if (!this.closed) this.socket?.end();
  }
}

// one handler object for every socket, as Bun recommends; the client travels in socket.data
const TCP_HANDLERS = {
  data(socket: Socket<TcpClient>, chunk: Uint8Array) {
    socket.data.scanner.push(chunk);
  },
  drain(socket: Socket<TcpClient>) {
    socket.data.flush();
  },
  close(socket: Socket<TcpClient>) {
    socket.data.closed = true;
    socket.data.onClose();
  },
  error(socket: Socket<TcpClient>) {
    socket.data.closed = true;
  },
};

const encoder = new TextEncoder();
/** Scratch space for text messages: the handler reads it synchronously, so one buffer serves all. */
let scratch = new Uint8Array(64 * 1024);

export class WsClient implements LeanClient {
  readonly kind = "ws" as const;
  closed = false;
  opened = false;
  onFrame: FrameHandler = noFrame;
  onClose: () => void = () => {};
  readonly ws: WebSocket;
  private readonly scanner = new FrameScanner((code, buf, start, end) => this.onFrame(code, buf, start, end));

  /** Starts connecting at once; set onFrame before yielding to the event loop. */
  constructor(
    url: string,
    readonly userId: number,
    readonly node: string,
  ) {
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      this.opened = true;
    };
    this.ws.onmessage = (ev: MessageEvent) => this.message(ev.data as string | ArrayBuffer);
    this.ws.onclose = () => {
      this.closed = true;
      this.onClose();
    };
    this.ws.onerror = () => {};
  }

  private message(data: string | ArrayBuffer): void {
    if (typeof data !== "string") {
      // a binary message holds whole frames only
      this.scanner.push(new Uint8Array(data));
      return;
    }
    // text envelope {"code":1003,"body":{...}}: the code's digits start at 8, the body after ,"body":
    if (scratch.length < data.length * 3) scratch = new Uint8Array(data.length * 3);
    const n = encoder.encodeInto(data, scratch).written;
    let i = 8;
    let code = 0;
    for (; i < n; i++) {
      const c = scratch[i];
      if (c < 48 || c > 57) break;
      code = code * 10 + (c - 48);
    }
    this.onFrame(code, scratch, i + 8, n - 1);
  }

  send(frames: Uint8Array): void {
    // encodeFrame output is always backed by a plain ArrayBuffer
    if (!this.closed) this.ws.send(frames as Uint8Array<ArrayBuffer>);
  }

  close(): void {
    if (!this.closed) this.ws.close();
  }
}
