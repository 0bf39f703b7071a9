// A business-message handler: validated at intake by the gateway, processed by the im-biz worker.
import type { z } from "zod";
import type { BizJob } from "../../queues/jobs";
import type { Broker } from "../../router/broker";
import type { ReliableDelivery } from "../reliable-delivery";

/** Who sent a BIZ: always the session's user, never a field of the body. */
export interface Sender {
  appId: number;
  userId: number;
  /** The live room the connection is in, if any. */
  roomId?: number;
  nickName?: string;
  avatar?: string;
}

/** What intake checks may ask (the gateway provides it). */
export interface IntakeContext {
  isRoomLive(roomId: number): Promise<boolean>;
}

export interface BizDeps {
  broker: Broker;
  reliable: ReliableDelivery;
  /** True when the room is live (rooms/); a room message to a closed room is dropped. */
  isRoomLive(roomId: number): Promise<boolean>;
}

export interface BizHandler<S extends z.ZodType = z.ZodType> {
  bizCode: number;
  /** Schema of the c→s `data`. */
  schema: S;
  /** Checks at intake that need the sender (throw ImError to refuse). Runs before queueing. */
  accept(data: z.infer<S>, sender: Sender, ctx: IntakeContext): void | Promise<void>;
  /** The job fields this message carries beyond the common ones. */
  toJob(data: z.infer<S>, sender: Sender): Partial<BizJob>;
  /** Process one accepted message in the im-biz worker. */
  process(job: BizJob, deps: BizDeps): Promise<void>;
}
