// What the IM routes (routes/dev.ts, im.ts, push.ts) need from the node (node.ts builds it); the
// other groups of routes declare their own (app.ts mounts them all).
import type { Config } from "../config";
import type { Logger } from "../log";
import type { BizIntake } from "../messaging/intake";
import type { PushOnce } from "../messaging/push-once";
import type { NodeRegistry, NodeInfo } from "../presence/node-registry";
import type { Presence } from "../presence/presence";
import type { ImTokens } from "../presence/tokens";

/** What the IM routes need from the node. */
export interface HttpDeps {
  settings: Config["http"];
  log: Logger;
  tokens: ImTokens;
  presence: Presence;
  registry: NodeRegistry;
  intake: BizIntake;
  pushOnce: PushOnce;
  /** Whether a room is live (cached; rejects when Redis, or MySQL on a miss, fails). */
  isRoomLive(roomId: number): Promise<boolean>;
  /** This node's own registry entry (im/config prefers it while it accepts clients). */
  self(): Omit<NodeInfo, "updatedAt">;
}
