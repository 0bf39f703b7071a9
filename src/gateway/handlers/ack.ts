// ACK c→s: the client confirms one reliable delivery. Only counts for the session's own user.
import { Code } from "../../protocol/codes";
import { AckBody } from "../../protocol/bodies";
import type { FrameHandler } from "./types";

export const ack: FrameHandler<typeof AckBody> = {
  code: Code.ACK,
  schema: AckBody,
  async handle(session, body, gateway) {
    const { appId, userId } = session.user!;
    await gateway.deps.reliable.ack(appId, userId, body.msgId);
  },
};
