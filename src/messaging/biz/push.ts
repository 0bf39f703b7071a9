// Backend pushes: any bizCode to a list of users (POST /api/im/push), delivered like 5556, or to
// everyone in a live room (POST /api/living/:roomId/push), delivered like 5555.
import type { BizMessage } from "../../queues/jobs";
import type { Route } from "./types";

export function routePush(m: BizMessage): Route {
  const data = JSON.stringify(m.data);
  return {
    kind: "reliable",
    messages: (m.userIds ?? []).map((userId) => ({ appId: m.appId, userId, msgId: m.msgId, bizCode: m.bizCode, data, ts: m.ts, senderId: 0 })),
  };
}

/**
 * A room push: the backend's data plus the fields every room message has. userId 0, a sender no
 * user is, so that no connection is left out (as the room-closed notice).
 */
export function routeRoomPush(m: BizMessage): Route {
  if (m.toRoom === undefined || m.seq === undefined) throw new Error(`room push ${m.msgId} has no room or seq`);
  const msg = { msgId: m.msgId, appId: m.appId, bizCode: m.bizCode, ts: m.ts, data: { ...m.data, userId: 0, roomId: m.toRoom, createTime: m.ts } };
  return { kind: "room", roomId: m.toRoom, seq: m.seq, msg };
}
