// Routing reliable deliveries: find each recipient's node in one round trip, then publish ONE
// message per node. Redis work grows with the number of nodes, not of recipients.
import type { Logger } from "../log";
import { splitByWeight } from "../batching/tick-batcher";
import type { Presence } from "../presence/presence";
import type { Broker } from "./broker";
import type { Delivery } from "./node-message";

export type DeliveriesByNode<D extends Delivery = Delivery> = Map<string, D[]>;

export interface Located<D extends Delivery> {
  byNode: DeliveriesByNode<D>;
  /** The session (connId) each located delivery's recipient is logged in with. */
  sessionOf: Map<D, string>;
}

export class Router {
  constructor(
    private readonly presence: Presence,
    private readonly broker: Broker,
    private readonly log: Logger,
  ) {}

  /** Group deliveries by the node of their online recipient; offline recipients are left out. */
  async locate<D extends Delivery>(deliveries: D[]): Promise<Located<D>> {
    const byNode: DeliveriesByNode<D> = new Map();
    const sessionOf = new Map<D, string>();
    const byApp = new Map<number, D[]>();
    for (const d of deliveries) {
      const list = byApp.get(d.appId);
      if (list) list.push(d);
      else byApp.set(d.appId, [d]);
    }
    for (const [appId, list] of byApp) {
      const bindings = await this.presence.bindingsOf(appId, [...new Set(list.map((d) => d.userId))]);
      for (const d of list) {
        const binding = bindings.get(d.userId);
        if (binding === undefined) continue;
        sessionOf.set(d, binding.connId);
        const forNode = byNode.get(binding.nodeId);
        if (forNode) forNode.push(d);
        else byNode.set(binding.nodeId, [d]);
      }
    }
    return { byNode, sessionOf };
  }

  /**
   * Publish each node's deliveries on its channel: one message, or several of at most about
   * MAX_MESSAGE_BYTES each, in order. Redis disconnects a subscriber that falls 32 MB behind
   * (client-output-buffer-limit pubsub), and a batch of large pushes could exceed that in one message.
   */
  async publish(byNode: DeliveriesByNode): Promise<void> {
    if (this.log.isLevelEnabled("debug")) {
      for (const [node, deliveries] of byNode) this.log.debug({ node, msgIds: deliveries.map((d) => d.msgId) }, "routed");
    }
    await Promise.all(
      [...byNode].map(async ([node, deliveries]) => {
        const parts = splitByWeight(deliveries, MAX_MESSAGE_BYTES, (d) => d.data.length + DELIVERY_OVERHEAD_BYTES);
        for (const part of parts) await this.broker.publishToNode(node, { t: "deliver", deliveries: part });
      }),
    );
  }
}

/** A node message of deliveries holds about this many bytes of their data at most (or one delivery). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** What a delivery adds to a message besides its data (ids, code, time, JSON punctuation). */
const DELIVERY_OVERHEAD_BYTES = 120;
