// Backend pushes (POST /api/im/push): any bizCode, to a list of users, delivered like 5556.
import type { BizMessage } from "../../queues/jobs";
import type { Route } from "./types";

export function routePush(m: BizMessage): Route {
  const data = JSON.stringify(m.data);
  return {
    kind: "reliable",
    messages: (m.userIds ?? []).map((userId) => ({ appId: m.appId, userId, msgId: m.msgId, bizCode: m.bizCode, data, ts: m.ts, senderId: 0 })),
  };
}
