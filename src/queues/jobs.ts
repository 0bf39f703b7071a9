// The data carried by each queue's jobs.

/** im-biz: one accepted business message (client BIZ or backend push). */
export interface BizJob {
  msgId: string;
  appId: number;
  /** The sending user (0 for a backend push). */
  senderId: number;
  bizCode: number;
  /** The validated c→s data (parsed). */
  data: Record<string, unknown>;
  /** Recipients of a push; unused for client biz codes (the handler derives them). */
  userIds?: number[];
  ts: number;
  /** Shown with room messages (from the user's profile). */
  senderName?: string;
  senderAvatar?: string;
}

/** im-online / im-offline: seed ImOnlineDTO / ImOfflineDTO, plus the session that caused it. */
export interface PresenceEventJob {
  appId: number;
  userId: number;
  roomId?: number;
  sessionId: string;
  nodeId: string;
  time: number;
}

/** im-ack: check that one reliable delivery was ACKed. */
export interface AckCheckJob {
  appId: number;
  userId: number;
  msgId: string;
  bizCode: number;
  data: string;
  ts: number;
  /** Deliveries made so far (the first one is attempt 1). */
  attempt: number;
}
