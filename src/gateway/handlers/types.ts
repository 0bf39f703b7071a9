import type { z } from "zod";
import type { Gateway } from "../gateway";
import type { Session } from "../session";

/** One frame code's handler: its body schema and what it does. The session validates first. */
export interface FrameHandler<S extends z.ZodType = z.ZodType> {
  code: number;
  schema: S;
  handle(session: Session, body: z.infer<S>, gateway: Gateway): Promise<void> | void;
}
