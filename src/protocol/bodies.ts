// zod schemas of the client→server bodies of PROTOCOL.md section 4. Unknown fields are ignored.
import { z } from "zod";
import { DEFAULT_APP_ID } from "./codes";

export const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** An appId: stored as a 32-bit signed INT (kept messages), so larger ones are refused, not clamped. */
export const appId = z.number().int().positive().max(2_147_483_647);
/** A bizCode: a 32-bit signed INT in MySQL too (kept messages). */
export const bizCode = z.number().int().positive().max(2_147_483_647);

export const LoginBody = z.object({
  appId: appId.default(DEFAULT_APP_ID),
  userId: id,
  token: z.string().min(1).max(512),
  roomId: id.optional(),
  roomSeq: z.number().int().nonnegative().optional(),
});
export type LoginBody = z.infer<typeof LoginBody>;

export const BizBody = z.object({
  bizCode,
  /** An object, or a JSON string of one (PROTOCOL.md section 4). */
  data: z.union([z.record(z.string(), z.unknown()), z.string()]),
  clientMsgId: z.string().min(1).max(128).optional(),
});
export type BizBody = z.infer<typeof BizBody>;

export const AckBody = z.object({ msgId: z.string().regex(/^[1-9][0-9]{0,18}$/) });
export type AckBody = z.infer<typeof AckBody>;

export const EmptyBody = z.object({});

const content = z.string().min(1).max(4000);

/** c→s `data` of the biz codes a client may send. */
export const RoomChatData = z.object({ roomId: id, content });
export type RoomChatData = z.infer<typeof RoomChatData>;

export const PrivateChatData = z.object({ objectId: id, content });
export type PrivateChatData = z.infer<typeof PrivateChatData>;
