// ImClient's options and their defaults.
import { DEFAULT_APP_ID } from "../protocol/codes";
import { DEFAULT_BACKOFF, type BackoffSettings } from "./backoff";
import type { Connector, Endpoint, TransportKind, WsForm } from "./transport";
import { connectWs } from "./transport-ws";

export interface ImClientOptions {
  userId: number;
  /** Where to connect and with which IM token: fixed, or asked for before every (re)connect. */
  endpoint: Endpoint | (() => Promise<Endpoint>);
  appId?: number;
  /** Default "ws". "tcp" needs the TCP connector (index.ts), which a browser build leaves out. */
  transport?: TransportKind;
  /** WebSocket only: text envelopes (default) or binary frames. */
  wsForm?: WsForm;
  /** The live room this connection watches (one per connection). */
  roomId?: number;
  /** The last room seq an earlier client saw: the first login already asks for what came after. */
  roomSeq?: number;
  /** HEARTBEAT period. Default 30 000 (PROTOCOL.md section 4); the server's interval when that is shorter. */
  heartbeatMs?: number;
  /** Bound of every wait: endpoint, connect, login, a send's answer, logout. Default 10 000. */
  timeoutMs?: number;
  /** Reconnect backoff; false: never reconnect. Default 0.5 s doubling to 30 s, no attempt limit. */
  reconnect?: Partial<BackoffSettings> | false;
  /** How many recent msgIds are remembered to drop repeats. Default 10 000. */
  dedupCapacity?: number;
  /** Sends waiting for the server's answer, at most. Default 1 000. */
  maxPendingSends?: number;
  /** Largest frame body accepted from the server. Default 65 536 (PROTOCOL.md section 7). */
  maxBodyBytes?: number;
  /** How to open each transport. Default: WebSocket only. */
  connectors?: Partial<Record<TransportKind, Connector>>;
}

export type Settings = Required<Omit<ImClientOptions, "roomId" | "roomSeq" | "reconnect" | "connectors">> & {
  roomId: number | undefined;
  roomSeq: number | undefined;
  backoff: BackoffSettings | null;
  connectors: Partial<Record<TransportKind, Connector>>;
};

export const DEFAULT_TIMEOUT_MS = 10_000;

export function resolveOptions(o: ImClientOptions): Settings {
  return {
    userId: o.userId,
    endpoint: o.endpoint,
    appId: o.appId ?? DEFAULT_APP_ID,
    transport: o.transport ?? "ws",
    wsForm: o.wsForm ?? "text",
    roomId: o.roomId,
    roomSeq: o.roomSeq,
    heartbeatMs: o.heartbeatMs ?? 30_000,
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    backoff: o.reconnect === false ? null : { ...DEFAULT_BACKOFF, ...o.reconnect },
    dedupCapacity: o.dedupCapacity ?? 10_000,
    maxPendingSends: o.maxPendingSends ?? 1000,
    maxBodyBytes: o.maxBodyBytes ?? 65_536,
    connectors: o.connectors ?? { ws: connectWs },
  };
}
