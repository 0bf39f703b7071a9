// Lean clients for the load generator: raw frames over Bun.connect, for TCP and for WebSocket (a
// minimal RFC 6455 client). No JSON on the hot path: a client hands each frame's bytes to its
// `onFrame`, which the benchmark swaps as the client moves from logging in to receiving traffic.
import type { Socket } from "bun";
import { concatBytes, FrameScanner, markArrival, type FrameHandler } from "./frames";

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

/** Write behind anything queued; keep what the kernel did not take (rare on loopback, never lost). */
function writeOrQueue(socket: Socket<unknown>, queue: Uint8Array[], bytes: Uint8Array): void {
  if (queue.length > 0) {
    queue.push(bytes);
    return;
  }
  const n = Math.max(0, socket.write(bytes));
  if (n < bytes.length) queue.push(bytes.subarray(n));
}

/** On drain: write what was queued, in order, until the kernel takes no more. */
function flushQueue(socket: Socket<unknown>, queue: Uint8Array[]): void {
  while (queue.length > 0) {
    const head = queue[0];
    const n = Math.max(0, socket.write(head));
    if (n < head.length) {
      queue[0] = head.subarray(n);
      return;
    }
    queue.shift();
  }
}

export class TcpClient implements LeanClient {
  readonly kind = "tcp" as const;
  closed = false;
  onFrame: FrameHandler = noFrame;
  onClose: () => void = () => {};
  private socket: Socket<TcpClient> | null = null;
  /** Bytes the kernel did not take yet; written on drain. */
  private readonly queue: Uint8Array[] = [];
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
    if (!this.closed && this.socket) writeOrQueue(this.socket, this.queue, frames);
  }

  flush(): void {
    if (this.socket) flushQueue(this.socket, this.queue);
  }

  close(): void {
    if (!this.closed) this.socket?.end();
  }
}

// one handler object for every socket, as Bun recommends; the client travels in socket.data
const TCP_HANDLERS = {
  data(socket: Socket<TcpClient>, chunk: Uint8Array) {
    markArrival();
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

/**
 * A minimal WebSocket client over Bun.connect (RFC 6455: the upgrade, unmasked frames in, masked
 * frames out, ping, close). Bun's built-in WebSocket dispatches one MessageEvent per message, which
 * cost the generator more than the whole server's fan-out did; this one scans every WS frame of a
 * socket read in one call, as the TCP client does.
 */
export class WsClient implements LeanClient {
  readonly kind = "ws" as const;
  closed = false;
  onFrame: FrameHandler = noFrame;
  onClose: () => void = () => {};
  private socket: Socket<WsClient> | null = null;
  /** Until the server's 101 answer has been read, bytes of the HTTP response so far. */
  private upgrading: Uint8Array | null = new Uint8Array(0);
  /** Bytes of an incomplete WebSocket frame (copied: Bun reuses read buffers). */
  private pending: Uint8Array | null = null;
  /** Payloads of a fragmented message so far, and its opcode. */
  private fragments: Uint8Array[] | null = null;
  private fragmentsOpcode = 0;
  /** Bytes the kernel did not take yet; written on drain. */
  private readonly queue: Uint8Array[] = [];
  private readonly scanner = new FrameScanner((code, buf, start, end) => this.onFrame(code, buf, start, end));

  /** Starts connecting at once; set onFrame before yielding to the event loop. */
  constructor(
    url: string,
    readonly userId: number,
    readonly node: string,
  ) {
    const u = new URL(url);
    const request =
      `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    Bun.connect<WsClient>({ hostname: u.hostname, port: Number(u.port), data: this, socket: WS_HANDLERS }).then(
      (socket) => {
        this.socket = socket;
        this.write(encoder.encode(request));
      },
      () => this.gone(),
    );
  }

  /** Write whole frames (encodeFrame output) as one binary WebSocket message. */
  send(frames: Uint8Array): void {
    if (this.upgrading !== null) throw new Error("bench ws client: send before the upgrade");
    this.write(wsFrame(OP_BINARY, frames));
  }

  close(): void {
    if (this.closed || !this.socket) return;
    if (this.upgrading === null) this.write(wsFrame(OP_CLOSE, new Uint8Array([0x03, 0xe8]))); // 1000: normal
    this.socket.end();
  }

  /** A socket read: the HTTP answer first, then WebSocket frames. */
  receive(chunk: Uint8Array): void {
    if (this.upgrading !== null) {
      // the 101 answer may share a read with the first frames: split at the header's end, in bytes
      const head = this.upgrading.length === 0 ? chunk : concatBytes(this.upgrading, chunk);
      const end = headerEnd(head);
      if (end < 0) {
        this.upgrading = head.slice();
        return;
      }
      if (decoder.decode(head.subarray(0, 12)) !== "HTTP/1.1 101") {
        this.socket?.end();
        return;
      }
      this.upgrading = null;
      if (end < head.length) this.receive(head.subarray(end));
      return;
    }
    const buf = this.pending === null ? chunk : concatBytes(this.pending, chunk);
    this.pending = null;
    let at = 0;
    while (buf.length - at >= 2) {
      const fin = (buf[at] & 0x80) !== 0;
      const opcode = buf[at] & 0x0f;
      if (buf[at + 1] & 0x80) throw new Error("bench ws client: a masked frame from the server");
      let len = buf[at + 1] & 0x7f;
      let head = 2;
      if (len === 126) {
        if (buf.length - at < 4) break;
        len = (buf[at + 2] << 8) | buf[at + 3];
        head = 4;
      } else if (len === 127) {
        if (buf.length - at < 10) break;
        len = Number(new DataView(buf.buffer, buf.byteOffset + at + 2, 8).getBigUint64(0));
        head = 10;
      }
      if (buf.length - at - head < len) break;
      this.frame(fin, opcode, buf.subarray(at + head, at + head + len));
      at += head + len;
    }
    if (at < buf.length) this.pending = buf.slice(at);
  }

  flush(): void {
    if (this.socket) flushQueue(this.socket, this.queue);
  }

  gone(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  private frame(fin: boolean, opcode: number, payload: Uint8Array): void {
    if (opcode === OP_PING) return this.write(wsFrame(OP_PONG, payload));
    if (opcode === OP_CLOSE) return this.close();
    if (opcode === OP_PONG) return;
    if (!fin || opcode === OP_CONTINUATION) {
      // a fragmented message: keep copies of the parts until the last one
      if (opcode !== OP_CONTINUATION) this.fragmentsOpcode = opcode;
      (this.fragments ??= []).push(payload.slice());
      if (!fin) return;
      const parts = this.fragments;
      this.fragments = null;
      payload = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        payload.set(p, o);
        o += p.length;
      }
      opcode = this.fragmentsOpcode;
    }
    if (opcode === OP_BINARY) this.scanner.push(payload);
    else if (opcode === OP_TEXT) this.text(payload);
  }

  /** A text envelope {"code":1003,"body":{...}}: the code's digits start at 8, the body after ,"body":. */
  private text(bytes: Uint8Array): void {
    let i = 8;
    let code = 0;
    for (; i < bytes.length; i++) {
      const c = bytes[i];
      if (c < 48 || c > 57) break;
      code = code * 10 + (c - 48);
    }
    this.onFrame(code, bytes, i + 8, bytes.length - 1);
  }

  private write(bytes: Uint8Array): void {
    if (!this.closed && this.socket) writeOrQueue(this.socket, this.queue, bytes);
  }
}

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The index just past the "\r\n\r\n" that ends an HTTP header (-1: not there yet). */
function headerEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) return i + 1;
  }
  return -1;
}

/**
 * A client frame: FIN, the opcode, the masked length, and an all-zero masking key, which leaves the
 * payload as it is (RFC 6455 wants an unpredictable key against proxy cache poisoning; on loopback
 * with our own server there is no proxy, and XOR-ing every byte would only load the generator).
 */
function wsFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(payload, head + 4);
  return out;
}

const WS_HANDLERS = {
  data(socket: Socket<WsClient>, chunk: Uint8Array) {
    markArrival();
    socket.data.receive(chunk);
  },
  drain(socket: Socket<WsClient>) {
    socket.data.flush();
  },
  close(socket: Socket<WsClient>) {
    socket.data.gone();
  },
  error(socket: Socket<WsClient>) {
    socket.data.gone();
  },
};
