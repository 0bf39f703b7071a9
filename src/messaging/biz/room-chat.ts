// 5555 room chat: live fan-out to every connection in the room but the sender's, with a per-room seq.
import { BizCode } from "../../protocol/codes";
import { RoomChatData } from "../../protocol/bodies";
import { ImError } from "../../protocol/errors";
import type { BizHandler } from "./types";

export const roomChat: BizHandler<typeof RoomChatData> = {
  bizCode: BizCode.ROOM_CHAT,
  schema: RoomChatData,
  async accept(data, sender, ctx) {
    if (!(await ctx.isRoomLive(data.roomId))) throw new ImError("room_not_live", `room ${data.roomId} is not live`);
    if (sender.roomId !== data.roomId) throw new ImError("not_in_room", `this connection is not in room ${data.roomId}`);
  },
  toJob: (_data, sender) => ({ senderName: sender.nickName, senderAvatar: sender.avatar }),
  async process(job, deps) {
    const data = RoomChatData.parse(job.data);
    // the room may have closed between intake and now: nobody is left to receive it
    if (!(await deps.isRoomLive(data.roomId))) return;
    await deps.broker.publishToRoom(data.roomId, {
      msgId: job.msgId,
      appId: job.appId,
      bizCode: job.bizCode,
      ts: job.ts,
      data: {
        userId: job.senderId,
        roomId: data.roomId,
        content: data.content,
        ...(job.senderName ? { senderName: job.senderName } : {}),
        ...(job.senderAvatar ? { senderAvatar: job.senderAvatar } : {}),
        createTime: job.ts,
      },
    });
  },
};
