// The data carried by each queue's jobs.
import type { Delivery } from "../router/node-message";

/** One accepted business message (client BIZ or backend push). */
export interface BizMessage {
  /** Given at intake (messaging/sequencer.ts), before the job is queued. */
  msgId: string;
  appId: number;
  /** The sending user (0 for a backend push). */
  senderId: number;
  bizCode: number;
  /** The validated c→s data (parsed). */
  data: Record<string, unknown>;
  /** Recipients of a push; unused for client biz codes (the handler derives them). */
  userIds?: number[];
  /** The live room of a backend's room push (POST /api/living/:roomId/push). */
  toRoom?: number;
  /** The room's seq, given at intake with the msgId, for a message to a room. */
  seq?: number;
  ts: number;
  /** Shown with room messages (from the user's profile). */
  senderName?: string;
  senderAvatar?: string;
}

/** im-biz: one intake batch of one node (the messages it accepted within INTAKE_LINGER_MS), in msgId order. */
export interface BizBatchJob {
  messages: BizMessage[];
}

/** Seed ImOnlineDTO / ImOfflineDTO, plus the session that caused it. */
export interface PresenceEvent {
  appId: number;
  userId: number;
  roomId?: number;
  sessionId: string;
  nodeId: string;
  time: number;
}

/** im-online / im-offline: the logins (or logouts and disconnects) of one node within 10 ms (gateway.ts, PRESENCE_LINGER_MS). */
export interface PresenceEventsJob {
  events: PresenceEvent[];
}

/** A reliable delivery with what keeping it in MySQL needs. */
export interface ReliableMessage extends Delivery {
  senderId: number;
}

/** im-ack: check, once the ACK timeout has passed, that these deliveries (attempt n) were ACKed. */
export interface AckCheckJob {
  /** Deliveries made so far of each message (the first one is attempt 1). */
  attempt: number;
  messages: ReliableMessage[];
  /**
   * The session (connId) each message's delivery n went to, in the order of `messages`; "" where
   * unknown. Absent in jobs queued before it was added.
   */
  sessions?: string[];
}
