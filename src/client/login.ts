// The LOGIN exchange of PROTOCOL.md section 4, as data: what ImClient sends and what it reads back.
import type { LoginInfo } from "./events";

export interface LoginRequest {
  appId: number;
  userId: number;
  token: string;
  roomId?: number;
  /** Set to ask the server to replay the room messages after it. */
  roomSeq?: number;
}

/** The LOGIN c→s body: roomSeq only goes with a roomId. */
export function loginBody(r: LoginRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { appId: r.appId, userId: r.userId, token: r.token };
  if (r.roomId !== undefined) {
    body.roomId = r.roomId;
    if (r.roomSeq !== undefined) body.roomSeq = r.roomSeq;
  }
  return body;
}

/** The LOGIN s→c answer as a LoginInfo (missing fields fall back to what was asked). */
export function readLoginAnswer(body: Record<string, unknown>, asked: LoginRequest, nodeId: string | undefined, reconnected: boolean): LoginInfo {
  const info: LoginInfo = {
    appId: typeof body.appId === "number" ? body.appId : asked.appId,
    userId: typeof body.userId === "number" ? body.userId : asked.userId,
    nodeId: typeof body.nodeId === "string" ? body.nodeId : (nodeId ?? ""),
    reconnected,
  };
  if (asked.roomId !== undefined) info.roomId = asked.roomId;
  if (typeof body.roomSeq === "number") info.roomSeq = body.roomSeq;
  if (typeof body.recovered === "boolean") info.recovered = body.recovered;
  return info;
}

/**
 * How often to beat: the client's own period, or the server's interval (heartbeatSeconds of its
 * LOGIN answer) when that is shorter, since the server closes a connection silent for 2 of them.
 */
export function heartbeatPeriod(ownMs: number, answer: Record<string, unknown>): number {
  const serverSeconds = answer.heartbeatSeconds;
  if (typeof serverSeconds !== "number" || !(serverSeconds > 0)) return ownMs;
  // a server's word never makes the client beat more than 10 times a second
  return Math.min(ownMs, Math.max(MIN_HEARTBEAT_MS, serverSeconds * 1000));
}

const MIN_HEARTBEAT_MS = 100;
