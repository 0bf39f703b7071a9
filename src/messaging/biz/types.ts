// A business-message handler: validated at intake by the gateway, routed by the im-biz worker.
import type { z } from "zod";
import type { BizMessage, ReliableMessage } from "../../queues/jobs";
import type { RoomMessage } from "../../router/node-message";

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
  /** Whether the room is live (a Redis cache, up to 10 minutes old); rejects if Redis fails, or MySQL on a cache miss (as `unavailable`). */
  isRoomLive(roomId: number): Promise<boolean>;
}

/** Where the worker sends one message: reliably to users, or to a room's live fan-out. */
export type Route =
  | { kind: "reliable"; messages: ReliableMessage[] }
  | { kind: "room"; roomId: number; seq: number; msg: RoomMessage };

export interface BizHandler<S extends z.ZodType = z.ZodType> {
  bizCode: number;
  /** Schema of the c→s `data`. */
  schema: S;
  /** Checks at intake that need the sender (throw ImError to refuse). Runs before queueing. */
  accept(data: z.infer<S>, sender: Sender, ctx: IntakeContext): void | Promise<void>;
  /** The room this message goes to, if it is a room message (it gets the room's next seq). */
  roomOf(data: z.infer<S>): number | undefined;
  /** The message fields this handler carries beyond the common ones. */
  extraFields(data: z.infer<S>, sender: Sender): Partial<BizMessage>;
  /** In the im-biz worker: where one accepted message goes. Pure. */
  route(message: BizMessage): Route;
}
