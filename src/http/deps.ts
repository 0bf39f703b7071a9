import type { Config } from "../config";
import type { Logger } from "../log";
import type { MsgIds } from "../messaging/msg-ids";
import type { NodeRegistry, NodeInfo } from "../presence/node-registry";
import type { Presence } from "../presence/presence";
import type { ImTokens } from "../presence/tokens";
import type { Queues } from "../queues/queues";

/** What the HTTP routes need from the node. */
export interface HttpDeps {
  settings: Config["http"];
  nodeId: string;
  log: Logger;
  tokens: ImTokens;
  presence: Presence;
  registry: NodeRegistry;
  msgIds: MsgIds;
  queues: Queues;
  /** This node's own registry entry (im/config prefers it while it accepts clients). */
  self(): Omit<NodeInfo, "updatedAt">;
}
