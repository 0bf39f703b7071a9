// The shape every frame handler of handlers/ has; registry.ts maps frame codes to them.
import type { z } from "zod";
import type { Gateway } from "../gateway";
import type { Session } from "../session";

/** One frame code's handler: its body schema and what it does. The session validates first. */
export interface FrameHandler<S extends z.ZodType = z.ZodType> {
  code: number;
  schema: S;
  /**
   * Applied as soon as it arrives instead of after the frames before it (a logged-in session and a
   * valid body only; anything else takes the ordinary way and is refused in its turn). For a frame
   * that answers nothing when it succeeds and whose effect does not depend on that order.
   */
  unordered?: true;
  /**
   * Called with a body `schema` accepted, in the frame's turn (unordered: at once), never before
   * the session's login except for LOGIN itself. Sends its own answer. A throw (ImError or its
   * cause) is answered for it: ERROR with that reason (internal for anything else), and before login
   * the close.
   */
  handle(session: Session, body: z.infer<S>, gateway: Gateway): Promise<void> | void;
}
