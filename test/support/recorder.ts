// Everything an ImClient emits, kept in arrays per event, for assertions.
import type { ImClient, ImClientEvents } from "../../src/client";

export type Recorded = { [K in keyof ImClientEvents]: ImClientEvents[K][] };

const EVENTS = ["login", "room", "private", "push", "kicked", "error", "reconnecting", "closed"] as const;

export function record(client: ImClient): Recorded {
  const out = Object.fromEntries(EVENTS.map((e) => [e, []])) as unknown as Recorded;
  for (const e of EVENTS) client.on(e, (payload) => (out[e] as unknown[]).push(payload));
  return out;
}
