// Raw TCP transport (Bun.listen): binary frames in, binary frames out.
//
// Frames written to a connection are buffered and leave in ONE socket write (PROTOCOL.md section 1:
// a read may hold several frames): at the end of the tick, or for room messages up to
// ROOM_BATCH_MS later. k room messages then cost each viewer one syscall instead of k; that
// syscall, and the receiving side of loopback TCP it runs, is most of a delivery's CPU.
import type { Socket, TCPSocketListener } from "bun";
import { keepAfterScan, parseBody, scanFrames, type PendingBytes } from "../protocol/frame";
import { RoomFlushClock, type Connection, type OutFrame } from "./connection";
import type { Gateway } from "./gateway";
import { parseProxyV1 } from "./proxy-protocol";
import type { Session } from "./session";

/** A client whose unsent bytes pass this bound is too slow to keep: it is closed. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** A closing connection that cannot flush in this time is cut. */
const CLOSE_FLUSH_MS = 3000;

/** Batches are copied into this before their one write; a bigger batch gets a buffer of its own. */
const scratch = new Uint8Array(256 * 1024);

/** Connections holding a frame that must go out at the end of this tick. */
let urgent: TcpConnection[] = [];
/** Connections holding room messages only: written by the room clock. */
let waiting: TcpConnection[] = [];

function sendUrgent(): void {
  const conns = urgent;
  urgent = [];
  for (const conn of conns) conn.sendBatch();
}

const roomClock = new RoomFlushClock(() => {
  const conns = waiting;
  waiting = [];
  for (const conn of conns) conn.sendBatch();
  return conns.length;
});

/** One client connection; it is also the socket's `data`, so a connection is a single object. */
class TcpConnection implements Connection {
  readonly transport = "tcp" as const;
  /** Null until the PROXY protocol line (when expected) has told who the client is. */
  session: Session | null = null;
  /**
   * Cuts a socket whose PROXY line has not come within the login timeout: without a Session, the
   * idle sweep, the login timeout and maxConnections do not see it. (Bun's socket.timeout() ticks
   * in 4 s steps, too coarse for short login timeouts.)
   */
  private proxyWait: ReturnType<typeof setTimeout> | null = null;
  /** Bytes of an incomplete frame, kept until the rest arrives. */
  private partial: PendingBytes | null = null;
  /** Bytes of an incomplete PROXY line. */
  private proxyPartial: Buffer | null = null;
  /** Frames written since the last flush, not yet given to the socket. */
  private batch: Uint8Array[] | null = null;
  /** The batch holds a frame that may not wait for the room clock (it is in `urgent`). */
  private urgent = false;
  /** Bytes Bun did not take yet (socket.write may take fewer than given); written on drain. */
  private queue: Uint8Array[] | null = null;
  private queuedBytes = 0;
  private closing = false;
  /** The socket is gone: nothing can be written any more. */
  private ended = false;

  constructor(
    private readonly socket: Socket<TcpConnection>,
    private readonly gateway: Gateway,
  ) {}

  write(frame: OutFrame, mayWait = false): void {
    if (this.closing) return;
    const first = this.batch === null;
    if (this.batch === null) this.batch = [frame.binary];
    else this.batch.push(frame.binary);
    if (!mayWait) {
      // the whole batch goes with it: the room messages before it must not arrive after it
      if (this.urgent) return;
      this.urgent = true;
      if (urgent.push(this) === 1) setImmediate(sendUrgent);
    } else if (first) {
      waiting.push(this);
      roomClock.request();
    }
  }

  useForm(): void {}

  unsentBytes(): number {
    let bytes = this.queuedBytes;
    for (const frame of this.batch ?? []) bytes += frame.length;
    return bytes;
  }

  subscribeRoom(): boolean {
    return false;
  }

  unsubscribeRoom(): void {}

  close(): void {
    if (this.closing) return;
    this.sendBatch();
    this.closing = true;
    if (this.ended) return;
    // end() only once everything is flushed: end(data) can drop the tail
    if (this.queue === null) this.socket.end();
    else setTimeout(() => this.socket.terminate(), CLOSE_FLUSH_MS).unref();
  }

  /** Bytes arrived from the client (after any PROXY line). */
  receive(chunk: Uint8Array): void {
    const session = this.session!;
    // a closed session reads nothing more (after a framing violation the stream is meaningless)
    if (session.closed) return;
    this.partial?.append(chunk);
    const buf = this.partial === null ? chunk : this.partial.bytes;
    const scan = scanFrames(buf, this.gateway.settings.maxBodyBytes);
    // each frame is parsed before we return, and the tail copied: Bun reuses `chunk` after this callback
    for (const f of scan.frames) session.receive(f.code, parseBody(f.body), "binary", f.body.length);
    this.partial = keepAfterScan(this.partial, buf, scan);
    if (scan.violation !== null) session.violation(scan.violation);
  }

  /** The stream must start with a PROXY line: wait for it, up to the login timeout. */
  awaitProxyLine(): void {
    this.proxyWait = setTimeout(() => {
      this.gone();
      this.socket.terminate();
    }, this.gateway.settings.loginTimeoutMs);
  }

  /** Behind fly's proxy_proto handler the stream starts with "PROXY TCP4 <client> ...\r\n". */
  receiveProxyLine(chunk: Uint8Array): void {
    const buf = this.proxyPartial === null ? Buffer.from(chunk) : Buffer.concat([this.proxyPartial, chunk]);
    const header = parseProxyV1(buf);
    if (header === "more") {
      this.proxyPartial = buf;
      return;
    }
    this.proxyPartial = null;
    this.stopProxyWait();
    if (header === "bad") {
      this.session = this.gateway.accept(this, this.socket.remoteAddress);
      return this.session.violation("expected a PROXY protocol v1 line");
    }
    this.session = this.gateway.accept(this, header.clientIp);
    if (header.length < buf.length) this.receive(buf.subarray(header.length));
  }

  /** Hand the buffered frames to the socket in one write, behind anything still queued. */
  sendBatch(): void {
    const frames = this.batch;
    if (frames === null) return;
    this.batch = null;
    this.urgent = false;
    if (this.ended) return;
    if (this.queue !== null) {
      // order: the new frames wait behind what the socket has not taken yet
      for (const f of frames) this.enqueue(f);
      return;
    }
    const bytes = frames.length === 1 ? frames[0] : join(frames);
    const n = Math.max(0, this.socket.write(bytes));
    // `bytes` may be the shared scratch: keep a copy of what is left
    if (n < bytes.length) this.enqueue(bytes.slice(n));
  }

  /** Write what was queued; called on drain. */
  flush(): void {
    while (this.queue !== null) {
      const head = this.queue[0];
      const n = Math.max(0, this.socket.write(head));
      this.queuedBytes -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
      if (this.queue.length === 0) this.queue = null;
    }
    if (this.closing) this.socket.end();
  }

  /** The socket is closed (reported by the transport) or being cut: nothing more is written. */
  gone(): void {
    this.stopProxyWait();
    this.ended = true;
    this.batch = null;
    this.queue = null;
  }

  private stopProxyWait(): void {
    if (this.proxyWait === null) return;
    clearTimeout(this.proxyWait);
    this.proxyWait = null;
  }

  private enqueue(bytes: Uint8Array): void {
    if (this.ended) return;
    (this.queue ??= []).push(bytes);
    this.queuedBytes += bytes.length;
    if (this.queuedBytes > MAX_QUEUED_BYTES) {
      this.gateway.slowClientClosed(this.session, "tcp", this.queuedBytes);
      this.closing = true;
      this.gone();
      this.socket.terminate();
    }
  }
}

/** The frames one after the other, in the scratch when they fit. */
function join(frames: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const f of frames) total += f.length;
  const out = total <= scratch.length ? scratch.subarray(0, total) : new Uint8Array(total);
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

export function listenTcp(gateway: Gateway, hostname: string, port: number): TCPSocketListener<TcpConnection> {
  const { proxyProtocol } = gateway.settings;
  return Bun.listen<TcpConnection>({
    hostname,
    port,
    // a client that sends its last frames and then a FIN still gets their answers (see end below)
    allowHalfOpen: true,
    socket: {
      open(socket) {
        const conn = new TcpConnection(socket, gateway);
        socket.data = conn;
        if (!proxyProtocol) conn.session = gateway.accept(conn, socket.remoteAddress);
        else conn.awaitProxyLine();
      },
      data(socket, chunk) {
        const conn = socket.data;
        if (conn.session !== null) conn.receive(chunk);
        else conn.receiveProxyLine(chunk);
      },
      drain(socket) {
        socket.data.flush();
      },
      end(socket) {
        // the client sends nothing more: answer what it sent, then close our side too
        const conn = socket.data;
        if (conn.session) conn.session.closeAfterAnswers();
        else socket.end();
      },
      close(socket) {
        const conn = socket.data;
        conn.gone();
        if (conn.session) gateway.closed(conn.session);
      },
      error(socket, err) {
        gateway.log.warn({ err, connId: socket.data?.session?.id }, "tcp socket error");
      },
    },
  });
}
