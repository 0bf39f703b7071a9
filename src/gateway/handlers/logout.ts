// LOGOUT: answer, then close; the close cleans up presence and membership.
import { Code } from "../../protocol/codes";
import { EmptyBody } from "../../protocol/bodies";
import type { FrameHandler } from "./types";

export const logout: FrameHandler<typeof EmptyBody> = {
  code: Code.LOGOUT,
  schema: EmptyBody,
  handle(session) {
    session.send(Code.LOGOUT, session.okBody());
    session.close();
  },
};
