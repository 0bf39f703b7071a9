// Bun 1.4's diagnostics_channel TracingChannel lacks Node's `hasSubscribers` getter. ioredis 6 asks
// it before every command ("trace unless hasSubscribers === false"), so under Bun it traced every
// command with nobody listening: sanitized copies of the arguments and a wrapped promise each time.
// This adds the getter as Node defines it (any of the five sub-channels has a subscriber), so a
// command is traced only when someone listens: 2.6 → 2.0 µs of client CPU per command here
// (bench/redis-commands.ts; bench/RESULTS.md, "ioredis tracing, review fixes").
import dc from "node:diagnostics_channel";

const SUB_CHANNELS = ["start", "end", "asyncStart", "asyncEnd", "error"] as const;

type SubChannels = Partial<Record<(typeof SUB_CHANNELS)[number], { hasSubscribers?: boolean }>>;

/** Idempotent; does nothing where TracingChannel already has the getter (Node). */
export function addTracingChannelHasSubscribers(): void {
  if (typeof dc.tracingChannel !== "function") return;
  const proto = Object.getPrototypeOf(dc.tracingChannel("live-im:probe")) as object;
  if ("hasSubscribers" in proto) return;
  Object.defineProperty(proto, "hasSubscribers", {
    configurable: true,
    get(this: SubChannels): boolean {
      return SUB_CHANNELS.some((name) => this[name]?.hasSubscribers === true);
    },
  });
}
