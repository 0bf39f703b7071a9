// HEARTBEAT: answer it and extend the user's presence binding (or make it again, if it lapsed).
import { Code } from "../../protocol/codes";
import { EmptyBody } from "../../protocol/bodies";
import { kick } from "../local-sessions";
import { replayKept } from "../replay";
import type { FrameHandler } from "./types";

export const heartbeat: FrameHandler<typeof EmptyBody> = {
  code: Code.HEARTBEAT,
  schema: EmptyBody,
  async handle(session, _body, gateway) {
    session.send(Code.HEARTBEAT, session.okBody());
    // liveness is never rate limited, but a client beating much faster than the interval costs
    // Redis nothing more
    if (!gateway.bindingRefreshDue(session)) return;
    const { appId, userId } = session.user!;
    // a binding made again routes new messages here at once: they wait until the kept ones are out
    session.hold();
    try {
      const binding = await gateway.deps.presence.refresh(appId, userId, session.id);
      // the client went while we awaited: its close's cleanup may have run before the binding was
      // made again, so run it again
      if (session.closed) return binding === "recreated" ? gateway.closed(session) : undefined;
      if (binding === "recreated") {
        // the binding had expired (this node or Redis stalled): messages sent meanwhile were kept
        // for the next login, so replay them now, before new ones, as a login does; room
        // membership may be gone too, so join again
        await replayKept(gateway, session);
        await gateway.presenceEvent("online", session);
      }
      // a newer login took the binding and its kick did not reach us (e.g. we were briefly unsubscribed)
      if (binding === "taken") kick(session);
    } finally {
      session.release(() => false);
    }
  },
};
