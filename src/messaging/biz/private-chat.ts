// 5556 private chat: reliable, ACK-tracked, kept offline until delivered.
import { BizCode } from "../../protocol/codes";
import { PrivateChatData } from "../../protocol/bodies";
import type { BizHandler } from "./types";

export const privateChat: BizHandler<typeof PrivateChatData> = {
  bizCode: BizCode.PRIVATE_CHAT,
  schema: PrivateChatData,
  accept() {},
  toJob: () => ({}),
  async process(job, deps) {
    const data = PrivateChatData.parse(job.data);
    const delivered = JSON.stringify({ userId: job.senderId, objectId: data.objectId, content: data.content, createTime: job.ts });
    await deps.reliable.send([
      { appId: job.appId, userId: data.objectId, msgId: job.msgId, bizCode: job.bizCode, data: delivered, ts: job.ts, senderId: job.senderId },
    ]);
  },
};
