// ACK c→s: the client confirms one reliable delivery. Only counts for the session's own user.
// Unordered: a login replaying thousands of kept messages gets their ACKs while it still runs (in
// line behind it they would pile up until the connection is cut, and the replay start over).
import { Code } from "../../protocol/codes";
import { AckBody } from "../../protocol/bodies";
import type { FrameHandler } from "./types";

export const ack: FrameHandler<typeof AckBody> = {
  code: Code.ACK,
  schema: AckBody,
  unordered: true,
  async handle(session, body, gateway) {
    const { appId, userId } = session.user!;
    await gateway.deps.reliable.ack(appId, userId, body.msgId);
    gateway.log.debug({ msgId: body.msgId, userId }, "acked");
  },
};
