// What an ImClient tells its user: the event names and payloads.
import type { ImClientError } from "./errors";

export interface LoginInfo {
  appId: number;
  userId: number;
  nodeId: string;
  roomId?: number;
  /** The room's latest seq when the login was answered. */
  roomSeq?: number;
  /** Only when the login asked to recover missed room messages: false when some were lost. */
  recovered?: boolean;
  /** True for a login made by an automatic reconnect. */
  reconnected: boolean;
}

/** One delivered message: `data` is the parsed `data` string of PROTOCOL.md section 4. */
export interface Delivered<D> {
  msgId: string;
  bizCode: number;
  /** Server time of acceptance, ms. */
  ts: number;
  data: D;
}

/** `data` of a room delivery (5555, and other room-wide bizCodes): `userId` is the sender. */
export interface RoomData {
  userId: number;
  roomId: number;
  seq: number;
  content?: string;
  senderName?: string;
  senderAvatar?: string;
  createTime?: number;
  [field: string]: unknown;
}

/** `data` of a private message (5556): `userId` is the sender, `objectId` the recipient. */
export interface PrivateData {
  userId: number;
  objectId: number;
  content: string;
  createTime: number;
}

export interface ImClientEvents extends Record<string, unknown> {
  login: LoginInfo;
  room: Delivered<RoomData>;
  private: Delivered<PrivateData>;
  /** A backend push (any bizCode but 5555/5556). */
  push: Delivered<Record<string, unknown>>;
  /** A newer login of this user elsewhere closed this session; the client does not reconnect. */
  kicked: { message: string };
  /** A problem not tied to a call: a server ERROR nobody awaited, a bad frame, a failed reconnect. */
  error: ImClientError;
  /** The connection dropped or a reconnect attempt failed; the next attempt starts after delayMs. */
  reconnecting: { attempt: number; delayMs: number; reason: string };
  /** The client stopped for good (logout, close, kick, fatal error or retries exhausted). Once. */
  closed: { reason: string };
}
