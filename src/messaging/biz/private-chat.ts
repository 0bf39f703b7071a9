// 5556 private chat: reliable, ACK-tracked, kept offline until delivered.
import { BizCode } from "../../protocol/codes";
import { PrivateChatData } from "../../protocol/bodies";
import type { z } from "zod";
import type { BizHandler } from "./types";

export const privateChat: BizHandler<typeof PrivateChatData> = {
  bizCode: BizCode.PRIVATE_CHAT,
  schema: PrivateChatData,
  accept() {},
  roomOf: () => undefined,
  extraFields: () => ({}),
  route(m) {
    // validated at intake; the job comes from our own queue
    const data = m.data as z.infer<typeof PrivateChatData>;
    const delivered = JSON.stringify({ userId: m.senderId, objectId: data.objectId, content: data.content, createTime: m.ts });
    return {
      kind: "reliable",
      messages: [{ appId: m.appId, userId: data.objectId, msgId: m.msgId, bizCode: m.bizCode, data: delivered, ts: m.ts, senderId: m.senderId }],
    };
  },
};
