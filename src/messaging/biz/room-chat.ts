// 5555 room chat: live fan-out to every connection in the room but the sender's, with a per-room seq.
import { BizCode } from "../../protocol/codes";
import { RoomChatData } from "../../protocol/bodies";
import { ImError } from "../../protocol/errors";
import type { z } from "zod";
import type { BizHandler } from "./types";

export const roomChat: BizHandler<typeof RoomChatData> = {
  bizCode: BizCode.ROOM_CHAT,
  schema: RoomChatData,
  async accept(data, sender, ctx) {
    if (!(await ctx.isRoomLive(data.roomId))) throw new ImError("room_not_live", `room ${data.roomId} is not live`);
    if (sender.roomId !== data.roomId) throw new ImError("not_in_room", `this connection is not in room ${data.roomId}`);
  },
  roomOf: (data) => data.roomId,
  extraFields: (_data, sender) => ({ senderName: sender.nickName, senderAvatar: sender.avatar }),
  route(m) {
    // validated at intake; the job comes from our own queue
    const data = m.data as z.infer<typeof RoomChatData>;
    if (m.seq === undefined) throw new Error(`room message ${m.msgId} has no seq`);
    const msg = {
      msgId: m.msgId,
      appId: m.appId,
      bizCode: m.bizCode,
      ts: m.ts,
      data: {
        userId: m.senderId,
        roomId: data.roomId,
        content: data.content,
        ...(m.senderName ? { senderName: m.senderName } : {}),
        ...(m.senderAvatar ? { senderAvatar: m.senderAvatar } : {}),
        createTime: m.ts,
      },
    };
    return { kind: "room", roomId: data.roomId, seq: m.seq, msg };
  },
};
