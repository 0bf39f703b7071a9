// Raw TCP transport (Bun.listen): binary frames in, binary frames out.
import type { Socket, TCPSocketListener } from "bun";
import { FrameDecoder, parseBody } from "../protocol/frame";
import type { Connection, OutFrame } from "./connection";
import type { Gateway } from "./gateway";
import { parseProxyV1 } from "./limits";
import type { Session } from "./session";

/** A client whose unsent bytes pass this bound is too slow to keep: it is closed. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** A closing connection that cannot flush in this time is cut. */
const CLOSE_FLUSH_MS = 3000;

interface TcpState {
  conn: TcpConnection;
  /** Null until the PROXY protocol line (when expected) has told who the client is. */
  session: Session | null;
  decoder: FrameDecoder;
  /** Bytes of an incomplete PROXY protocol line. */
  proxyLine: Uint8Array | null;
}

class TcpConnection implements Connection {
  readonly transport = "tcp" as const;
  /** Bytes Bun did not take yet (socket.write may take fewer than given); written on drain. */
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private closing = false;

  constructor(private readonly socket: Socket<TcpState>) {}

  get remoteAddress(): string {
    return this.socket.remoteAddress;
  }

  write(frame: OutFrame): void {
    if (this.closing) return;
    this.push(frame.binary);
  }

  useForm(): void {}

  subscribeRoom(): boolean {
    return false;
  }

  unsubscribeRoom(): void {}

  close(): void {
    if (this.closing) return;
    this.closing = true;
    // end() only once everything is flushed: end(data) can drop the tail
    if (this.queue.length === 0) this.socket.end();
    else setTimeout(() => this.socket.terminate(), CLOSE_FLUSH_MS).unref();
  }

  /** Write what was queued; called on drain. */
  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const n = Math.max(0, this.socket.write(head));
      this.queuedBytes -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
    if (this.closing) this.socket.end();
  }

  private push(bytes: Uint8Array): void {
    if (this.queue.length === 0) {
      const n = Math.max(0, this.socket.write(bytes));
      if (n === bytes.length) return;
      bytes = bytes.subarray(n);
    }
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    if (this.queuedBytes > MAX_QUEUED_BYTES) {
      this.queue = [];
      this.closing = true;
      this.socket.terminate();
    }
  }
}

export function listenTcp(gateway: Gateway, hostname: string, port: number): TCPSocketListener<TcpState> {
  const { maxBodyBytes, proxyProtocol } = gateway.settings;

  function frames(state: TcpState, chunk: Uint8Array): void {
    const session = state.session!;
    // the decoder copies any partial frame; each whole frame is parsed before we return
    for (const f of state.decoder.push(chunk)) session.receive(f.code, parseBody(f.body));
    if (state.decoder.violation !== null) session.violation(state.decoder.violation);
  }

  return Bun.listen<TcpState>({
    hostname,
    port,
    socket: {
      open(socket) {
        const conn = new TcpConnection(socket);
        socket.data = { conn, session: null, decoder: new FrameDecoder(maxBodyBytes), proxyLine: null };
        if (!proxyProtocol) socket.data.session = gateway.accept(conn, socket.remoteAddress);
      },
      data(socket, chunk) {
        const state = socket.data;
        if (state.session !== null) return frames(state, chunk);
        // behind fly's proxy_proto handler the stream starts with "PROXY TCP4 <client> ...\r\n"
        const buf = state.proxyLine ? Buffer.concat([state.proxyLine, chunk]) : Buffer.from(chunk);
        const header = parseProxyV1(buf);
        if (header === "more") {
          state.proxyLine = buf;
          return;
        }
        state.proxyLine = null;
        if (header === "bad") {
          state.session = gateway.accept(state.conn, socket.remoteAddress);
          return state.session.violation("expected a PROXY protocol v1 line");
        }
        state.session = gateway.accept(state.conn, header.clientIp);
        if (header.length < buf.length) frames(state, buf.subarray(header.length));
      },
      drain(socket) {
        socket.data.conn.flush();
      },
      close(socket) {
        if (socket.data.session) gateway.closed(socket.data.session);
      },
      error(socket, err) {
        gateway.log.warn({ err, connId: socket.data?.session?.id }, "tcp socket error");
      },
    },
  });
}
