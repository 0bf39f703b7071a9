// bizCode → handler. A bizCode clients may send is listed here; anything else from a client is
// refused at intake, and a backend may push any other bizCode (push.ts). processor.ts runs the
// im-biz jobs with the routes these give.
import type { BizMessage } from "../../queues/jobs";
import { privateChat } from "./private-chat";
import { routePush, routeRoomPush } from "./push";
import { roomChat } from "./room-chat";
import type { BizHandler, Route } from "./types";

const handlers = new Map<number, BizHandler>([
  [roomChat.bizCode, roomChat as BizHandler],
  [privateChat.bizCode, privateChat as BizHandler],
]);

export function clientBizHandler(bizCode: number): BizHandler | undefined {
  return handlers.get(bizCode);
}

/** Where a message of an im-biz job goes; throws for a bizCode no handler routes. */
export function routeOf(m: BizMessage): Route {
  if (m.userIds !== undefined) return routePush(m);
  if (m.toRoom !== undefined) return routeRoomPush(m);
  const handler = handlers.get(m.bizCode);
  if (!handler) throw new Error(`no handler for bizCode ${m.bizCode}`);
  return handler.route(m);
}
