// Every BullMQ queue of live-im, named in one place.
export const QueueName = {
  /** Client business messages (BIZ) and backend pushes, processed by the biz handler registry. */
  biz: "im-biz",
  /** A session logged in (seed: ImOnlineDTO). */
  online: "im-online",
  /** A session ended: logout, close, kick (seed: ImOfflineDTO). */
  offline: "im-offline",
  /** Delayed checks of reliable deliveries: resend, or leave kept, unless ACKed. */
  ack: "im-ack",
} as const;

export type QueueName = (typeof QueueName)[keyof typeof QueueName];
