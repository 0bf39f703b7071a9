// The one interface between ImClient and a wire. transport-ws.ts works everywhere; transport-tcp.ts
// needs node:net and is imported only by the Bun/Node entry (index.ts), never by browser.ts.
import type { ParsedBody } from "../protocol/frame";

export type TransportKind = "tcp" | "ws";
/** How a WebSocket talks (PROTOCOL.md section 2): JSON text envelopes or binary frames. */
export type WsForm = "text" | "binary";

/** Where a client connects and with which IM token (what POST /api/im/config answers). */
export interface Endpoint {
  token: string;
  wsUrl: string;
  /** "host:port" */
  tcpAddress: string;
  nodeId?: string;
}

export interface TransportEvents {
  /** One frame from the server, its body parsed (or why it could not be). */
  frame(code: number, body: ParsedBody): void;
  /** The connection is gone; called once, and only for a transport whose connect resolved. */
  closed(reason: string): void;
}

export interface Transport {
  /**
   * Write one frame, in order. False when the connection is closed, or when it was closed now
   * because the bytes the OS has not taken yet passed the transport's bound (a stalled peer).
   */
  send(code: number, body: object): boolean;
  /** Close the connection; `closed` follows with this reason. Idempotent. */
  close(reason?: string): void;
}

export interface ConnectOptions {
  timeoutMs: number;
  wsForm: WsForm;
  /** Largest frame body accepted from the server; a longer one is a framing violation. */
  maxBodyBytes: number;
}

/** Open a connection; rejects with an ImClientError ("connect_failed" or "timeout") within timeoutMs. */
export type Connector = (endpoint: Endpoint, events: TransportEvents, opts: ConnectOptions) => Promise<Transport>;

/** Unsent bytes past this mean the peer stopped reading: the connection is dropped, not buffered. */
export const MAX_UNSENT_BYTES = 1024 * 1024;
