// Routing reliable deliveries: find each recipient's node in one round trip, then publish ONE
// message per node. Redis work grows with the number of nodes, not of recipients.
import type { Presence } from "../presence/presence";
import type { Broker } from "./broker";
import type { Delivery } from "./node-message";

export type DeliveriesByNode = Map<string, Delivery[]>;

export class Router {
  constructor(
    private readonly presence: Presence,
    private readonly broker: Broker,
  ) {}

  /** Group deliveries by the node of their online recipient; offline recipients are left out. */
  async locate(deliveries: Delivery[]): Promise<DeliveriesByNode> {
    const byNode: DeliveriesByNode = new Map();
    const byApp = new Map<number, Delivery[]>();
    for (const d of deliveries) {
      const list = byApp.get(d.appId);
      if (list) list.push(d);
      else byApp.set(d.appId, [d]);
    }
    for (const [appId, list] of byApp) {
      const nodes = await this.presence.nodesOf(appId, [...new Set(list.map((d) => d.userId))]);
      for (const d of list) {
        const node = nodes.get(d.userId);
        if (node === undefined) continue;
        const forNode = byNode.get(node);
        if (forNode) forNode.push(d);
        else byNode.set(node, [d]);
      }
    }
    return byNode;
  }

  /** Publish each node's deliveries as one message on its channel. */
  async publish(byNode: DeliveriesByNode): Promise<void> {
    await Promise.all([...byNode].map(([node, deliveries]) => this.broker.publishToNode(node, { t: "deliver", deliveries })));
  }
}
