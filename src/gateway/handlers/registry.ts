// Frame code → handler.
import { ack } from "./ack";
import { biz } from "./biz";
import { heartbeat } from "./heartbeat";
import { login } from "./login";
import { logout } from "./logout";
import type { FrameHandler } from "./types";

const handlers = new Map<number, FrameHandler>(
  [login, logout, biz, heartbeat, ack].map((h) => [h.code, h as unknown as FrameHandler]),
);

export function handlerFor(code: number): FrameHandler | undefined {
  return handlers.get(code);
}
